//! Any bytes a client sends after the upgrade: the relay's WebSocket framing reads messages
//! or stops with a typed error, never panics, and never returns a binary message longer than
//! its limit or a control payload longer than 125 bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sotto_server::ws::{Incoming, MAX_PAYLOAD, WsConn};
use tokio::io::AsyncWriteExt;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let (server, mut client) = tokio::io::duplex(data.len() + 1);
        client.write_all(data).await.unwrap();
        drop(client);
        let mut ws = WsConn::new(server);
        // Each message consumes at least a 6-byte masked header: this bounds the loop.
        for _ in 0..=data.len() / 6 {
            match ws.next().await {
                Ok(Incoming::Binary(b)) => assert!(b.len() <= MAX_PAYLOAD),
                Ok(Incoming::Ping(p)) => assert!(p.len() <= 125),
                Ok(_) => {}
                Err(_) => return,
            }
        }
        panic!("more messages than the input can hold");
    });
});
