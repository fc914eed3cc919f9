//! Abuse: 10,000 connections opened and abandoned (TLS + WebSocket links, half-sent
//! ClientHellos, silent TCP) must leave the relay's memory near its baseline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use sotto_client::relay::{ConnectOptions, RelayLink};
use sotto_proto::{Request, Response};
use support::RelayProcess;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_abandoned_connections_leave_relay_memory_near_its_baseline() {
    const CONNECTIONS: usize = 10_000;
    const WAVE: usize = 1_000;
    /// Of each wave: full TLS + WebSocket links, and TCP connections that stop after part
    /// of a ClientHello; the rest are TCP connections that send nothing.
    const LINKS_PER_WAVE: usize = 250;
    const PARTIAL_PER_WAVE: usize = 250;
    /// How far above its baseline the relay may stay once they are all gone.
    const SLACK_KIB: u64 = 10 * 1024;
    /// jemalloc purges freed pages after its decay time (10 s by default): allow for it.
    const RETURN_WITHIN: Duration = Duration::from_secs(40);
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("relay.toml");
    std::fs::write(&config, "handshake_timeout_secs = 2\nidle_timeout_secs = 3\n").unwrap();
    let log = tmp.path().join("relay.log");
    let port = support::free_port();
    let relay = RelayProcess::start(tmp.path(), port, &["--ephemeral", "--config", config.to_str().unwrap()], &log);
    let pid = relay.pid();
    let address = relay.address.clone();
    let fds_at_start = support::fd_count(pid);

    // The test holds every connection it opens: keep well inside its own fd limit.
    let fd_limit = support::open_files_limit();
    let hold = CONNECTIONS.min(fd_limit.saturating_sub(1_000) as usize);
    assert!(hold >= WAVE, "open-files limit {fd_limit} is too low for this test");

    // Warm-up: a few hundred complete connections, and some that stall, all gone again.
    let opts = ConnectOptions::default();
    for _ in 0..6 {
        let batch: Vec<_> = (0..50).map(|_| RelayLink::connect(&address, &opts)).collect();
        for link in join_all(batch).await {
            assert_eq!(link.unwrap().request(Request::Ping).await.unwrap(), Response::Pong);
        }
    }
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        tcp.write_all(support::PARTIAL_CLIENT_HELLO).await.unwrap();
    }
    let settle = |what: &'static str, want: usize, within: Duration| async move {
        let deadline = Instant::now() + within;
        loop {
            let n = support::fd_count(pid);
            if n <= want {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: the relay still has {n} fds open (at start {want})");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    settle("after the warm-up", fds_at_start + 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = support::vm_rss_kib(pid);

    let mut held: Vec<Held> = Vec::new();
    let mut peak = baseline;
    let mut peak_fds = 0;
    let mut opened = 0;
    while opened < CONNECTIONS {
        // Free the oldest connections' descriptors (on our side) when at the cap.
        if held.len() + WAVE > hold {
            held.drain(..WAVE);
        }
        let mut links = FuturesUnordered::new();
        for _ in 0..LINKS_PER_WAVE {
            links.push(RelayLink::connect(&address, &opts));
        }
        for i in 0..WAVE - LINKS_PER_WAVE {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            if i < PARTIAL_PER_WAVE {
                tcp.write_all(support::PARTIAL_CLIENT_HELLO).await.unwrap();
            }
            held.push(Held::Tcp(tcp));
        }
        while let Some(link) = links.next().await {
            held.push(Held::Link(link.unwrap()));
        }
        opened += WAVE;
        peak = peak.max(support::vm_rss_kib(pid));
        peak_fds = peak_fds.max(support::fd_count(pid));
    }
    let opened_after = t0.elapsed();

    // Abandoned: nothing more is sent; the relay's time-outs must close them all.
    settle("after the time-outs", fds_at_start + 2, Duration::from_secs(15)).await;
    peak = peak.max(support::vm_rss_kib(pid));
    // The relay closed every one of them: links see their end, TCP reads see EOF.
    let mut links = 0;
    for h in &held {
        match h {
            Held::Link(link) => {
                links += 1;
                let deadline = Instant::now() + Duration::from_secs(5);
                while !link.is_closed() {
                    assert!(Instant::now() < deadline, "the relay never closed an idle link");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Held::Tcp(tcp) => match tokio::time::timeout(Duration::from_secs(2), tcp.readable())
                .await
                .map(|_| tcp.try_read(&mut [0u8; 64]))
            {
                Ok(Ok(0)) => {}
                Ok(Err(e)) if e.kind() != std::io::ErrorKind::WouldBlock => {}
                other => panic!("a stalled TCP connection was not closed by the relay: {other:?}"),
            },
        }
    }
    drop(held);
    // Memory back near the baseline (allocators return freed memory lazily: poll).
    let gone = Instant::now();
    let deadline = gone + RETURN_WITHIN;
    let mut after = support::vm_rss_kib(pid);
    while after > baseline + SLACK_KIB && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = support::vm_rss_kib(pid);
    }
    let returned_after = gone.elapsed();
    // Still serving.
    let link = RelayLink::connect(&address, &opts).await.unwrap();
    assert_eq!(link.request(Request::Ping).await.unwrap(), Response::Pong);
    drop(link);
    relay.terminate();
    eprintln!(
        "{opened} connections ({links} links still held at the end); relay RSS baseline {} KiB, peak {} KiB, \
         after {} KiB ({returned_after:.1?} after the last had gone); relay fds at start {fds_at_start}, peak {peak_fds}; opened after {opened_after:.1?}, \
         test took {:.1?}",
        baseline,
        peak,
        after,
        t0.elapsed()
    );
    assert!(peak_fds > fds_at_start + 1_000, "the connections never reached the relay at once: {peak_fds} fds");
    assert!(
        after <= baseline + SLACK_KIB,
        "relay RSS stayed at {after} KiB after the connections were gone (baseline {baseline} KiB, peak {peak} KiB)"
    );
}

/// One abandoned connection, held open until the end of the test.
enum Held {
    Link(RelayLink),
    Tcp(TcpStream),
}
