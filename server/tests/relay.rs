//! The relay over real TLS on loopback: every operation and every refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sotto_client::relay::{ConnectOptions, Event, LinkError, RelayLink};
use sotto_proto::limits::{BLOB_CHUNK_SIZE, CELL_SIZE};
use sotto_proto::{Chunk, ErrorCode, Push, Request, Response};
use sotto_server::Limits;

#[tokio::test]
async fn create_send_subscribe_ack_round_trip() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;

    // Queued before anyone subscribes.
    assert_eq!(send(&sender, mb.send_id, 1).await, Response::Ok);
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    let (rid, seq1, env) = next_delivery(&mut owner).await;
    assert_eq!((rid, env), (mb.recv_id, envelope(1)));

    // Pushed while subscribed, without asking.
    assert_eq!(send(&sender, mb.send_id, 2).await, Response::Ok);
    let (_, seq2, env) = next_delivery(&mut owner).await;
    assert_eq!(env, envelope(2));
    assert!(seq2 > seq1);

    assert_eq!(ack(&owner, &mb, seq1).await, Response::Ok);
    assert_eq!(ack(&owner, &mb, seq2).await, Response::Ok);
    assert_eq!(ack(&owner, &mb, seq2).await, Response::Error(ErrorCode::NoMessage));

    // A new connection gets nothing again: acknowledged envelopes are gone.
    drop(owner);
    let mut again = relay.link().await;
    assert_eq!(subscribe(&again, &mb).await, Response::Ok);
    assert!(quiet_for(&mut again, 300).await);
    relay.stop().await;
}

#[tokio::test]
async fn unacknowledged_envelopes_are_delivered_again() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let sender = relay.link().await;
    let mut owner = relay.link().await;
    let mb = create_mailbox(&owner).await;
    for i in 0..3 {
        assert_eq!(send(&sender, mb.send_id, i).await, Response::Ok);
    }
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    let first = next_delivery(&mut owner).await;
    assert_eq!(ack(&owner, &mb, first.1).await, Response::Ok);
    drop(owner);
    let mut owner = relay.link().await;
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    let a = next_delivery(&mut owner).await;
    let b = next_delivery(&mut owner).await;
    assert_eq!((a.2, b.2), (envelope(1), envelope(2)));
    relay.stop().await;
}

#[tokio::test]
async fn wrong_and_replayed_signatures_are_refused() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let a = relay.link().await;
    let b = relay.link().await;
    let mb = create_mailbox(&a).await;

    // Signed by another key.
    let stranger = new_key();
    let req = signed(&a, &stranger, Request::Subscribe { recv_id: mb.recv_id, signature: NO_SIG });
    assert_eq!(a.request(req).await.unwrap(), Response::Error(ErrorCode::Auth));

    // Signed correctly for connection A, replayed on connection B.
    let req = signed(&a, &mb.owner, Request::Subscribe { recv_id: mb.recv_id, signature: NO_SIG });
    assert_eq!(b.request(req.clone()).await.unwrap(), Response::Error(ErrorCode::Auth));
    assert_eq!(a.request(req).await.unwrap(), Response::Ok);

    // A create whose signature does not match the key it registers.
    let owner = new_key();
    let mut req = Request::CreateMailbox { owner_key: public(&owner), signature: NO_SIG };
    sotto_client::relay::sign_request(&stranger, &a.nonce(), &mut req);
    assert_eq!(a.request(req).await.unwrap(), Response::Error(ErrorCode::Auth));

    // Delete by a stranger fails; by the owner succeeds, then the mailbox is gone.
    let req = signed(&a, &stranger, Request::DeleteMailbox { recv_id: mb.recv_id, signature: NO_SIG });
    assert_eq!(a.request(req).await.unwrap(), Response::Error(ErrorCode::Auth));
    let req = signed(&a, &mb.owner, Request::DeleteMailbox { recv_id: mb.recv_id, signature: NO_SIG });
    assert_eq!(a.request(req).await.unwrap(), Response::Ok);
    assert_eq!(send(&b, mb.send_id, 1).await, Response::Error(ErrorCode::NoMailbox));
    relay.stop().await;
}

#[tokio::test]
async fn secured_mailbox_takes_only_its_sender() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;
    let sender_key = new_key();
    let req = signed(
        &owner,
        &mb.owner,
        Request::Secure { recv_id: mb.recv_id, sender_key: public(&sender_key), signature: NO_SIG },
    );
    assert_eq!(owner.request(req.clone()).await.unwrap(), Response::Ok);
    let req = signed(
        &owner,
        &mb.owner,
        Request::Secure { recv_id: mb.recv_id, sender_key: public(&new_key()), signature: NO_SIG },
    );
    assert_eq!(owner.request(req).await.unwrap(), Response::Error(ErrorCode::AlreadySecured));

    // A small-order key would lock the mailbox for good: refused.
    let mut weak = [0u8; 32];
    weak[0] = 1; // the identity point
    let other = create_mailbox(&owner).await;
    let req = signed(
        &owner,
        &other.owner,
        Request::Secure { recv_id: other.recv_id, sender_key: sotto_proto::PublicKey(weak), signature: NO_SIG },
    );
    assert_eq!(owner.request(req).await.unwrap(), Response::Error(ErrorCode::Auth));

    assert_eq!(send(&sender, mb.send_id, 1).await, Response::Error(ErrorCode::Auth));
    let send_req =
        |key| signed(&sender, key, Request::Send { send_id: mb.send_id, envelope: envelope(1), signature: None });
    let wrong_key = new_key();
    assert_eq!(sender.request(send_req(&wrong_key)).await.unwrap(), Response::Error(ErrorCode::Auth));
    assert_eq!(sender.request(send_req(&sender_key)).await.unwrap(), Response::Ok);
    relay.stop().await;
}

#[tokio::test]
async fn unknown_mailbox_is_a_typed_error() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let link = relay.link().await;
    let ghost =
        Mailbox { recv_id: sotto_proto::RecvId([7; 24]), send_id: sotto_proto::SendId([8; 24]), owner: new_key() };
    assert_eq!(send(&link, ghost.send_id, 1).await, Response::Error(ErrorCode::NoMailbox));
    assert_eq!(subscribe(&link, &ghost).await, Response::Error(ErrorCode::NoMailbox));
    assert_eq!(ack(&link, &ghost, 0).await, Response::Error(ErrorCode::NoMailbox));
    relay.stop().await;
}

#[tokio::test]
async fn queue_quota_refuses_then_frees_after_ack() {
    let limits = Limits { max_queue_len: 3, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;
    let other = create_mailbox(&owner).await;
    for i in 0..3 {
        assert_eq!(send(&sender, mb.send_id, i).await, Response::Ok);
    }
    assert_eq!(send(&sender, mb.send_id, 9).await, Response::Error(ErrorCode::QueueFull));
    // The owner's other mailbox is unaffected.
    assert_eq!(send(&sender, other.send_id, 1).await, Response::Ok);
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    let (_, seq, _) = next_delivery(&mut owner).await;
    assert_eq!(ack(&owner, &mb, seq).await, Response::Ok);
    assert_eq!(send(&sender, mb.send_id, 10).await, Response::Ok);
    relay.stop().await;
}

#[tokio::test]
async fn frame_floods_hit_the_rate_limit() {
    let limits = Limits { frames_per_second: 5, frame_burst: 10, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let link = relay.link().await;
    let mut limited = 0;
    for _ in 0..40 {
        match link.request(Request::Ping).await.unwrap() {
            Response::Pong => {}
            Response::Error(ErrorCode::RateLimited) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited >= 25, "only {limited} of 40 pings were limited");
    // Another connection has its own budget.
    assert_eq!(relay.link().await.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

#[tokio::test]
async fn oversize_and_malformed_input_get_errors_and_others_are_served() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut bad = relay.link().await;
    let good = relay.link().await;

    // Wrong cell sizes: a typed error each.
    bad.send_raw(vec![0u8; CELL_SIZE + 100]).await.unwrap();
    bad.send_raw(vec![1u8; 10]).await.unwrap();
    for _ in 0..2 {
        match bad.next_event().await {
            Some(Event::Unmatched { response: Response::Error(ErrorCode::CellSize), .. }) => {}
            other => panic!("expected a cell-size error, got {other:?}"),
        }
    }
    // A truncated frame in a well-formed cell keeps its correlation id.
    let mut cell = sotto_proto::ClientFrame { corr: 77, request: Request::Ping }.to_cell();
    cell[2] = 4; // body length 4: the tag now sits in the padding
    cell[7] = 0;
    bad.send_raw(cell).await.unwrap();
    match bad.next_event().await {
        Some(Event::Unmatched { corr: 77, response: Response::Error(ErrorCode::Malformed) }) => {}
        other => panic!("expected malformed, got {other:?}"),
    }
    assert_eq!(good.request(Request::Ping).await.unwrap(), Response::Pong);

    // A blob larger than the relay takes.
    let big = Limits::default().max_blob_size + 1;
    assert_eq!(good.request(Request::BlobCreate { size: big }).await.unwrap(), Response::Error(ErrorCode::TooLarge));

    // Garbage until the relay gives up on the connection; the other is still served.
    let mut closed = false;
    for i in 0..64u32 {
        let mut junk = vec![0u8; CELL_SIZE];
        for (j, b) in junk.iter_mut().enumerate() {
            *b = (i as usize * 31 + j * 7) as u8;
        }
        if bad.send_raw(junk).await.is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), bad.next_event()).await {
                Ok(Some(Event::Unmatched { response: Response::Error(_), .. })) => continue,
                Ok(None) => break,
                other => panic!("expected errors then close, got {other:?}"),
            }
        }
    }
    // A message far past the cell size closes the connection outright.
    let victim = relay.link().await;
    let _ = victim.send_raw(vec![0u8; 4 * CELL_SIZE]).await;
    let mut victim = victim;
    assert_eq!(tokio::time::timeout(std::time::Duration::from_secs(5), victim.next_event()).await.unwrap(), None);

    assert_eq!(good.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

#[tokio::test]
async fn a_new_subscription_takes_over_and_the_old_is_told() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut first = relay.link().await;
    let mut second = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&first).await;
    assert_eq!(subscribe(&first, &mb).await, Response::Ok);
    assert_eq!(subscribe(&second, &mb).await, Response::Ok);
    match first.next_event().await {
        Some(Event::Push(Push::Unsubscribed { recv_id })) => assert_eq!(recv_id, mb.recv_id),
        other => panic!("expected unsubscribed, got {other:?}"),
    }
    assert_eq!(send(&sender, mb.send_id, 5).await, Response::Ok);
    assert_eq!(next_delivery(&mut second).await.2, envelope(5));
    assert!(quiet_for(&mut first, 200).await);
    relay.stop().await;
}

#[tokio::test]
async fn blobs_upload_resume_and_download() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let link = relay.link().await;
    let size = (2 * BLOB_CHUNK_SIZE + 100) as u64;
    let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let Response::BlobCreated { write_id, read_id } = link.request(Request::BlobCreate { size }).await.unwrap() else {
        panic!()
    };

    let put = |offset: usize, len: usize| Request::BlobPut {
        write_id,
        offset: offset as u64,
        answer: true,
        data: Chunk::new(data[offset..offset + len].to_vec()).unwrap(),
    };
    assert_eq!(
        link.request(put(0, BLOB_CHUNK_SIZE)).await.unwrap(),
        Response::BlobStatus { received: BLOB_CHUNK_SIZE as u64, size }
    );
    // Not complete yet: no download.
    assert_eq!(
        link.request(Request::BlobGet { read_id, offset: 0, count: 1 }).await.unwrap(),
        Response::Error(ErrorCode::BlobIncomplete)
    );
    // Out of order, or short before the end: refused.
    assert_eq!(link.request(put(0, BLOB_CHUNK_SIZE)).await.unwrap(), Response::Error(ErrorCode::BadOffset));
    assert_eq!(link.request(put(BLOB_CHUNK_SIZE, 10)).await.unwrap(), Response::Error(ErrorCode::BadOffset));

    // Resume from another connection, as after a dropped link.
    drop(link);
    let link = relay.link().await;
    let Response::BlobStatus { received, .. } = link.request(Request::BlobStatus { write_id }).await.unwrap() else {
        panic!()
    };
    let mut offset = received as usize;
    while offset < size as usize {
        let len = BLOB_CHUNK_SIZE.min(size as usize - offset);
        assert!(matches!(link.request(put(offset, len)).await.unwrap(), Response::BlobStatus { .. }));
        offset += len;
    }
    let mut got = Vec::new();
    while got.len() < size as usize {
        match link.request(Request::BlobGet { read_id, offset: got.len() as u64, count: 1 }).await.unwrap() {
            Response::BlobData { size: s, data, .. } => {
                assert_eq!(s, size);
                got.extend_from_slice(data.as_bytes());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, data);
    assert_eq!(
        link.request(Request::BlobGet { read_id, offset: 5, count: 1 }).await.unwrap(),
        Response::Error(ErrorCode::BadOffset)
    );
    assert_eq!(
        link.request(Request::BlobGet { read_id: sotto_proto::BlobReadId([1; 24]), offset: 0, count: 1 })
            .await
            .unwrap(),
        Response::Error(ErrorCode::NoBlob)
    );
    relay.stop().await;
}

fn today<S>(relay: &TestRelay<S>) -> u32 {
    use sotto_server::clock::Clock;
    relay.clock.today()
}

#[tokio::test]
async fn expired_envelopes_mailboxes_and_blobs_are_swept() {
    use sotto_server::store::Store;
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;
    assert_eq!(send(&sender, mb.send_id, 1).await, Response::Ok);
    let Response::BlobCreated { read_id, write_id } = sender.request(Request::BlobCreate { size: 3 }).await.unwrap()
    else {
        panic!()
    };
    let chunk = Chunk::new(vec![1, 2, 3]).unwrap();
    assert!(matches!(
        sender.request(Request::BlobPut { write_id, offset: 0, answer: true, data: chunk }).await.unwrap(),
        Response::BlobStatus { .. }
    ));

    // Two days on: the blob (48 h) and the envelope (21 days) are both still there.
    relay.clock.advance(2);
    let c = relay.store.sweep(today(&relay)).await.unwrap();
    assert_eq!((c.envelopes, c.blobs), (0, 0));
    // A third day: the blob is gone.
    relay.clock.advance(1);
    let c = relay.store.sweep(today(&relay)).await.unwrap();
    assert_eq!(c.blobs, 1);
    assert_eq!(
        sender.request(Request::BlobGet { read_id, offset: 0, count: 1 }).await.unwrap(),
        Response::Error(ErrorCode::NoBlob)
    );
    // Day 22: the undelivered envelope is gone, the mailbox stays.
    relay.clock.advance(19);
    let c = relay.store.sweep(today(&relay)).await.unwrap();
    assert_eq!((c.envelopes, c.mailboxes), (1, 0));
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    assert!(quiet_for(&mut owner, 300).await);
    // The subscription moved the mailbox's expiry on; 91 days of silence end it.
    relay.clock.advance(91);
    let c = relay.store.sweep(today(&relay)).await.unwrap();
    assert_eq!(c.mailboxes, 1);
    assert_eq!(send(&sender, mb.send_id, 2).await, Response::Error(ErrorCode::NoMailbox));
    relay.stop().await;
}

#[tokio::test]
async fn a_wrong_pin_is_refused() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut address = relay.address.clone();
    address.pin = Some(identity().pin());
    let err = RelayLink::connect(&address, &ConnectOptions::default()).await.err();
    assert!(matches!(err, Some(LinkError::WrongPin)), "{err:?}");
    relay.stop().await;
}

#[tokio::test]
async fn unfinished_handshakes_and_idle_connections_time_out() {
    let limits = Limits {
        handshake_timeout: std::time::Duration::from_millis(500),
        idle_timeout: std::time::Duration::from_millis(800),
        ..Limits::default()
    };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    // A TCP connection that never starts TLS is closed by the relay.
    let port = relay.address.port;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(std::time::Duration::from_secs(3), tokio::io::AsyncReadExt::read(&mut tcp, &mut buf))
        .await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
    // An open link that sends nothing is closed after the idle time-out.
    let mut link = relay.link().await;
    assert_eq!(tokio::time::timeout(std::time::Duration::from_secs(3), link.next_event()).await.unwrap(), None);
    relay.stop().await;
}

/// Sends `request` over TLS to the relay and returns everything it answers.
async fn http_exchange(relay: &TestRelay<sotto_server::store::MemoryStore>, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = sotto_client::relay::tls::client_config(relay.address.pin).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", relay.address.port)).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_prober_sees_an_ordinary_404() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    for request in [
        "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
        "GET /v1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
        "GET /other HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "POST /v1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    ] {
        let answer = http_exchange(&relay, request).await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{request:?} got {answer:?}");
        assert!(answer.contains("Content-Length: 22\r\n") && answer.ends_with("<h1>404 Not Found</h1>"), "{answer:?}");
    }
    // The real endpoint still works.
    assert_eq!(relay.link().await.request(Request::Ping).await.unwrap(), Response::Pong);
    relay.stop().await;
}

#[tokio::test]
async fn a_subscriber_is_told_when_its_mailbox_expires() {
    let limits = Limits { sweep_interval: std::time::Duration::from_millis(200), ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let mut owner = relay.link().await;
    let mb = create_mailbox(&owner).await;
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    relay.clock.advance(sotto_server::config::DEFAULT_MAILBOX_TTL_DAYS + 1);
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), owner.next_event()).await.unwrap();
    assert_eq!(event, Some(Event::Push(Push::Unsubscribed { recv_id: mb.recv_id })));
    relay.stop().await;
}
