//! A recording TCP proxy between clients and the relay: it forwards bytes unchanged and logs
//! every complete TLS record's direction, content type and length.

use std::sync::{Arc, Mutex};

use sotto_proto::limits::CELL_SIZE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// TLS record content type of application data.
pub const APPLICATION_DATA: u8 = 23;
/// A TLS 1.3 record's AEAD tag and inner content-type byte.
pub const TLS13_OVERHEAD: usize = 16 + 1;
/// At most this many records open a connection before its first cell: the TLS
/// handshake's encrypted flight and the HTTP upgrade.
pub const MAX_OPENING_RECORDS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ToRelay,
    ToClient,
}

/// (connection, direction, content type, length) of every record seen.
pub type Log = Arc<Mutex<Vec<(usize, Dir, u8, usize)>>>;

/// Starts the proxy in front of the relay on `upstream_port`; returns its port and its log.
pub async fn recording_proxy(upstream_port: u16) -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((client, _)) = listener.accept().await {
            let relay = TcpStream::connect(("127.0.0.1", upstream_port)).await.unwrap();
            let (cr, cw) = client.into_split();
            let (rr, rw) = relay.into_split();
            tokio::spawn(pipe(cr, rw, conn, Dir::ToRelay, l.clone()));
            tokio::spawn(pipe(rr, cw, conn, Dir::ToClient, l.clone()));
            conn += 1;
        }
    });
    (port, log)
}

/// Copies bytes and logs every complete TLS record's type and length.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: usize,
    dir: Dir,
    log: Log,
) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        while pending.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([pending[3], pending[4]]));
            if pending.len() < 5 + len {
                break;
            }
            log.lock().unwrap().push((conn, dir, pending[0], len));
            pending.drain(..5 + len);
        }
    }
}

/// The length of a record carrying one cell in a WebSocket binary frame (126-style length;
/// masked towards the relay).
pub fn cell_record_len(dir: Dir) -> usize {
    match dir {
        Dir::ToRelay => CELL_SIZE + 8 + TLS13_OVERHEAD,
        Dir::ToClient => CELL_SIZE + 4 + TLS13_OVERHEAD,
    }
}

/// Asserts that on every connection, after at most [`MAX_OPENING_RECORDS`], every
/// application-data record is one cell long; returns the number of cells each way.
pub fn assert_one_length_per_direction(records: &[(usize, Dir, u8, usize)]) -> (usize, usize) {
    let conns: std::collections::BTreeSet<usize> = records.iter().map(|r| r.0).collect();
    let (mut up, mut down) = (0, 0);
    for conn in conns {
        for dir in [Dir::ToRelay, Dir::ToClient] {
            let lens: Vec<usize> =
                records.iter().filter(|r| r.0 == conn && r.1 == dir && r.2 == APPLICATION_DATA).map(|r| r.3).collect();
            let Some(first_cell) = lens.iter().position(|&l| l == cell_record_len(dir)) else {
                // A connection that never carried a cell carried nothing else either.
                assert!(lens.len() <= MAX_OPENING_RECORDS, "connection {conn} {dir:?}: {lens:?}");
                continue;
            };
            assert!(first_cell <= MAX_OPENING_RECORDS, "connection {conn} {dir:?}: {lens:?}");
            let after = &lens[first_cell..];
            assert!(after.iter().all(|&l| l == cell_record_len(dir)), "connection {conn} {dir:?}: lengths {after:?}");
            match dir {
                Dir::ToRelay => up += after.len(),
                Dir::ToClient => down += after.len(),
            }
        }
    }
    (up, down)
}
