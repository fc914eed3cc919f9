//! Reaching a relay through a SOCKS5 proxy (as through Tor): a minimal SOCKS5 server in
//! the test forwards the connection, and counts it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sotto_client::app::{Client, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A SOCKS5 server (RFC 1928, no authentication, CONNECT only).
async fn socks5_proxy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = handshake(stream, &c).await {
                    let _ = upstream.shutdown().await;
                }
            });
        }
    });
    (addr, count)
}

async fn handshake(mut s: TcpStream, count: &AtomicUsize) -> std::io::Result<TcpStream> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods).await?;
    assert_eq!(head[0], 5);
    s.write_all(&[5, 0]).await?;
    let mut req = [0u8; 4];
    s.read_exact(&mut req).await?;
    assert_eq!(&req[..3], &[5, 1, 0], "CONNECT");
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            s.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let len = s.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            s.read_exact(&mut name).await?;
            String::from_utf8(name).unwrap()
        }
        other => panic!("address type {other}"),
    };
    let port = s.read_u16().await?;
    let mut upstream = TcpStream::connect((host.as_str(), port)).await?;
    s.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    count.fetch_add(1, Ordering::SeqCst);
    tokio::io::copy_bidirectional(&mut s, &mut upstream).await?;
    Ok(upstream)
}

#[tokio::test]
async fn a_client_behind_a_socks5_proxy_talks_to_one_without() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let relay = TestRelay::start().await;
            let (proxy, used) = socks5_proxy().await;
            let tmp = tempfile::tempdir().unwrap();
            let via_proxy = ConnectOptions { proxy: Some(proxy), ..ConnectOptions::default() };
            let mut alice =
                Client::init(&tmp.path().join("a"), PASS, &relay.address, KdfParams::insecure_for_tests(), via_proxy)
                    .unwrap();
            let mut bob = new_client(&tmp.path().join("b"), &relay.address, "Bob");
            let link = alice.create_invite(Some("Bob"), None).await.unwrap();
            assert!(used.load(Ordering::SeqCst) >= 1, "the invite's mailbox was made through the proxy");
            bob.accept_invite(&link, "Alice").await.unwrap();
            alice.subscribe_all().await.unwrap();
            until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
            bob.subscribe_all().await.unwrap();
            until(&mut bob, |n| matches!(n, Notice::Ready { .. })).await;
            alice.send_text("Bob", "through the proxy").await.unwrap();
            let (n, _) = until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;
            assert_eq!(texts(&[n]), ["through the proxy"]);
            relay.stop().await;
        })
        .await;
}
