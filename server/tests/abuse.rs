//! Abuse: floods past a mailbox's quota, floods of malformed cells, handshakes never
//! finished, and idle connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;
use sotto_client::relay::{Event, RelayLink};
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{ClientFrame, ErrorCode, Push, RelayAddress, Request, Response};
use sotto_server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `count` envelopes into `mb` all at once (pipelined on one link); returns the
/// tags that got `Ok`, after checking every other answer is a typed `QueueFull`.
async fn flood(link: &RelayLink, mb: &Mailbox, count: u8) -> HashSet<u8> {
    let sends = (0..count).map(|tag| async move { (tag, send(link, mb.send_id, tag).await) });
    let mut accepted = HashSet::new();
    for (tag, response) in join_all(sends).await {
        match response {
            Response::Ok => {
                accepted.insert(tag);
            }
            Response::Error(ErrorCode::QueueFull) => {}
            other => panic!("send {tag} got {other:?}"),
        }
    }
    accepted
}

/// Every envelope queued in `mb`, by tag, acknowledging each; then checks the queue is
/// empty.
async fn delivered_tags(relay_link: &mut RelayLink, mb: &Mailbox) -> Vec<u8> {
    assert_eq!(subscribe(relay_link, mb).await, Response::Ok);
    let mut tags = Vec::new();
    while let Ok(event) = tokio::time::timeout(Duration::from_millis(500), relay_link.next_event()).await {
        match event {
            Some(Event::Push(Push::Deliver { recv_id, seq, envelope })) => {
                assert_eq!(recv_id, mb.recv_id);
                let tag = envelope.as_bytes()[0];
                assert_eq!(envelope, common::envelope(tag));
                tags.push(tag);
                assert_eq!(ack(relay_link, mb, seq).await, Response::Ok);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    tags
}

#[tokio::test]
async fn a_mailbox_flooded_past_its_quota_refuses_with_queue_full_and_the_owners_other_mailbox_works() {
    const QUOTA: u32 = 5;
    let limits = Limits { max_queue_len: QUOTA, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let mut owner = relay.link().await;
    let flooder = relay.link().await;
    let friend = relay.link().await;
    let flooded = create_mailbox(&owner).await;
    let other = create_mailbox(&owner).await;

    // Fifty sends in flight at once: exactly the quota is taken, the rest refused, typed.
    let accepted = flood(&flooder, &flooded, 50).await;
    assert_eq!(accepted.len(), QUOTA as usize, "accepted {accepted:?}");
    // Still full for anyone, from any connection.
    assert_eq!(send(&friend, flooded.send_id, 200).await, Response::Error(ErrorCode::QueueFull));

    // The same owner's other mailbox accepts and delivers.
    for tag in [101, 102, 103] {
        assert_eq!(send(&friend, other.send_id, tag).await, Response::Ok);
    }
    assert_eq!(delivered_tags(&mut owner, &other).await, vec![101, 102, 103]);

    // The flooded mailbox holds exactly what was accepted, nothing refused.
    let mut owner2 = relay.link().await;
    let got = delivered_tags(&mut owner2, &flooded).await;
    assert_eq!(got.iter().copied().collect::<HashSet<u8>>(), accepted);
    assert_eq!(got.len(), accepted.len());
    // Emptied by the acks: it takes envelopes again.
    assert_eq!(send(&flooder, flooded.send_id, 7).await, Response::Ok);
    relay.stop().await;
}

#[tokio::test]
async fn the_byte_quota_refuses_with_queue_full_too() {
    let limits = Limits { max_queue_len: 1_000, max_queue_bytes: 3 * ENVELOPE_SIZE as u64, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let owner = relay.link().await;
    let sender = relay.link().await;
    let flooded = create_mailbox(&owner).await;
    let other = create_mailbox(&owner).await;
    assert_eq!(flood(&sender, &flooded, 20).await.len(), 3);
    assert_eq!(send(&sender, other.send_id, 1).await, Response::Ok);
    relay.stop().await;
}

/// A well-sized cell whose frame is cut short (the request tag is missing): the relay
/// answers `Malformed` with the cell's correlation id.
fn malformed_cell(corr: u32) -> Vec<u8> {
    let mut cell = ClientFrame { corr, request: Request::Ping }.to_cell();
    cell[2] = 4; // body length 4: only the correlation id
    cell[7] = 0; // the tag, now padding, zeroed
    cell
}

/// The next `n` unmatched responses on `link`, as (corr, code).
async fn errors(link: &mut RelayLink, n: usize) -> Vec<(u32, ErrorCode)> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), link.next_event()).await {
            Ok(Some(Event::Unmatched { corr, response: Response::Error(code) })) => out.push((corr, code)),
            other => panic!("expected an error response, got {other:?} after {out:?}"),
        }
    }
    out
}

#[tokio::test]
async fn a_flood_of_malformed_cells_is_rate_limited_like_any_other() {
    let limits = Limits { frames_per_second: 1, frame_burst: 4, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let mut bad = relay.link().await;
    let t0 = Instant::now();
    for corr in 1000..1024 {
        bad.send_raw(malformed_cell(corr)).await.unwrap();
    }
    let answers = errors(&mut bad, 24).await;
    let elapsed = t0.elapsed();
    // One answer per cell, in order, each naming its cell.
    assert_eq!(answers.iter().map(|(c, _)| *c).collect::<Vec<_>>(), (1000..1024).collect::<Vec<_>>());
    let malformed = answers.iter().filter(|(_, c)| *c == ErrorCode::Malformed).count();
    let limited = answers.iter().filter(|(_, c)| *c == ErrorCode::RateLimited).count();
    assert_eq!(malformed + limited, 24, "{answers:?}");
    // The burst, plus what one frame a second refilled meanwhile.
    let allowed = 4 + elapsed.as_secs() as usize + 1;
    assert!(malformed <= allowed, "{malformed} malformed cells were parsed in {elapsed:?}: {answers:?}");
    assert!(relay.metrics.rate_limited.load(Ordering::Relaxed) >= limited as u64);
    // Another connection has its own budget.
    assert_eq!(relay.link().await.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

#[tokio::test]
async fn eight_malformed_cells_in_a_row_close_the_connection_and_a_good_one_resets_the_count() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut bad = relay.link().await;
    let bystander = relay.link().await;

    // Seven in a row, then a good frame: the count starts again.
    for round in 0..2u32 {
        for i in 0..7 {
            bad.send_raw(malformed_cell(round * 100 + i)).await.unwrap();
        }
        let answers = errors(&mut bad, 7).await;
        assert!(answers.iter().all(|(_, c)| *c == ErrorCode::Malformed), "{answers:?}");
        assert_eq!(bad.request(Request::Ping).await.unwrap(), Response::Pong);
    }

    // Eight in a row: eight answers, then the relay closes the connection.
    for i in 0..8 {
        bad.send_raw(malformed_cell(500 + i)).await.unwrap();
    }
    let answers = errors(&mut bad, 8).await;
    assert_eq!(answers, (500..508).map(|c| (c, ErrorCode::Malformed)).collect::<Vec<_>>());
    assert_eq!(tokio::time::timeout(Duration::from_secs(5), bad.next_event()).await.unwrap(), None);
    assert!(bad.request(Request::Ping).await.is_err());
    assert_eq!(bystander.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

/// Reads until the peer closes; returns how long that took from `since`, or `None` if
/// it did not close within `limit`.
async fn time_to_close<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    let deadline = since + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// The first bytes of a TLS ClientHello: a record header announcing 512 bytes, the
/// handshake header, the version and part of the random. The rest never comes.
async fn tls_to(address: &RelayAddress) -> tokio_rustls::client::TlsStream<TcpStream> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tcp = TcpStream::connect(("127.0.0.1", address.port)).await.unwrap();
    let config = sotto_client::relay::tls::client_config(address.pin).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_never_finished_are_closed_after_the_handshake_timeout() {
    const TIMEOUT: Duration = Duration::from_millis(1_000);
    let limits = Limits { handshake_timeout: TIMEOUT, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let port = relay.address.port;
    let limit = TIMEOUT + Duration::from_secs(3);

    let mut stalls = Vec::new();
    // Plain TCP that sends nothing.
    for _ in 0..40 {
        stalls.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            ("silent tcp", time_to_close(&mut tcp, t, limit).await)
        }));
    }
    // Part of a ClientHello.
    for _ in 0..40 {
        stalls.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            tcp.write_all(support::PARTIAL_CLIENT_HELLO).await.unwrap();
            ("partial client hello", time_to_close(&mut tcp, t, limit).await)
        }));
    }
    // TLS finished, the HTTP upgrade never sent, or sent only in part.
    for partial in [false, true] {
        for _ in 0..10 {
            let address = relay.address.clone();
            stalls.push(tokio::spawn(async move {
                let t = Instant::now();
                let mut tls = tls_to(&address).await;
                if partial {
                    tls.write_all(b"GET /v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n").await.unwrap();
                    tls.flush().await.unwrap();
                }
                let what = if partial { "partial upgrade" } else { "tls, no upgrade" };
                (what, time_to_close(&mut tls, t, limit).await)
            }));
        }
    }
    // Meanwhile the relay serves others.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let link = relay.link().await;
    assert_eq!(link.request(Request::Ping).await.unwrap(), Response::Pong);

    let count = stalls.len();
    for stall in stalls {
        let (what, closed) = stall.await.unwrap();
        let closed = closed.unwrap_or_else(|| panic!("a {what} connection was still open after {limit:?}"));
        // Closed by the time-out, not before it (a little slack for timer granularity).
        assert!(closed >= TIMEOUT - Duration::from_millis(50), "a {what} connection closed after only {closed:?}");
    }
    // The relay counts a failed handshake just after closing it, so a peer can see the
    // close a moment before the count moves.
    let counted = Instant::now();
    while relay.metrics.handshakes_failed.load(Ordering::Relaxed) < count as u64 && counted.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(relay.metrics.handshakes_failed.load(Ordering::Relaxed), count as u64);
    assert_eq!(link.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

#[tokio::test]
async fn idle_websocket_connections_are_closed_after_the_idle_timeout_and_activity_keeps_them_open() {
    const IDLE: Duration = Duration::from_millis(800);
    let limits = Limits { idle_timeout: IDLE, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;

    // Busy for three idle time-outs: never closed.
    let mut busy = relay.link().await;
    let t = Instant::now();
    let last = loop {
        assert_eq!(busy.request(Request::Ping).await.unwrap(), Response::Pong);
        let last = Instant::now();
        if t.elapsed() >= 3 * IDLE {
            break last;
        }
        tokio::time::sleep(IDLE / 4).await;
    };
    // Then quiet: closed one idle time-out after the last frame.
    assert_eq!(tokio::time::timeout(IDLE * 4, busy.next_event()).await.unwrap(), None);
    let quiet = last.elapsed();
    assert!(quiet >= IDLE - Duration::from_millis(50), "closed after only {quiet:?} of quiet");

    // Several connections that never send a frame after the hello, one subscribed.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(relay.link().await);
    }
    let mb = create_mailbox(&idle[0]).await;
    assert_eq!(subscribe(&idle[0], &mb).await, Response::Ok);
    for link in &mut idle {
        assert_eq!(tokio::time::timeout(IDLE * 4, link.next_event()).await.unwrap(), None);
    }
    // The closed subscription does not stop the mailbox: a new one gets what is sent.
    let sender = relay.link().await;
    assert_eq!(send(&sender, mb.send_id, 9).await, Response::Ok);
    let mut again = relay.link().await;
    assert_eq!(subscribe(&again, &mb).await, Response::Ok);
    assert_eq!(next_delivery(&mut again).await.2, envelope(9));
    relay.stop().await;
}
