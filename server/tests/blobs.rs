//! Blobs on a real relay over TLS: declared bytes count against the relay's blob quota,
//! an expired blob is deleted with every chunk it held, giving its quota back, puts are
//! answered only when asked (or at the end, or when refused), and ranged reads answer
//! chunk by chunk, each chunk costing a frame of the rate limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use sotto_client::relay::Event;
use sotto_proto::limits::BLOB_CHUNK_SIZE;
use sotto_proto::{Chunk, ErrorCode, Request, Response};
use sotto_server::Limits;
use sotto_server::store::Store;
use sotto_server::store::kv::Kv;

const CHUNKS: usize = 3;

#[tokio::test]
async fn blob_bytes_count_against_the_quota_and_expiry_deletes_every_chunk() {
    let size = (CHUNKS * BLOB_CHUNK_SIZE) as u64;
    // Room for one such blob and a little more, not two.
    let limits = Limits { max_blob_size: size, blob_quota_bytes: size + 1000, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let link = relay.link().await;
    let Response::BlobCreated { write_id, read_id } = link.request(Request::BlobCreate { size }).await.unwrap() else {
        panic!("create")
    };
    // Declared bytes count at creation, before any chunk arrives.
    assert_eq!(link.request(Request::BlobCreate { size: 2000 }).await.unwrap(), Response::Error(ErrorCode::TooLarge));
    assert!(matches!(link.request(Request::BlobCreate { size: 900 }).await.unwrap(), Response::BlobCreated { .. }));
    for i in 0..CHUNKS {
        let data = Chunk::new(vec![i as u8 + 1; BLOB_CHUNK_SIZE]).unwrap();
        let put = Request::BlobPut { write_id, offset: (i * BLOB_CHUNK_SIZE) as u64, answer: true, data };
        assert!(matches!(link.request(put).await.unwrap(), Response::BlobStatus { .. }));
    }
    assert!(matches!(
        link.request(Request::BlobGet { read_id, offset: 0, count: 1 }).await.unwrap(),
        Response::BlobData { .. }
    ));
    let chunk_keys = |relay: &TestRelay<sotto_server::store::MemoryStore>| {
        relay.store.kv().scan(b"C", b"D", usize::MAX).unwrap().len()
    };
    assert_eq!(chunk_keys(&relay), CHUNKS);

    // 48 hours are two whole days after the day of creation; the sweep after them
    // deletes the blob, its records and every chunk.
    relay.clock.advance(3);
    let today = {
        use sotto_server::clock::Clock;
        relay.clock.today()
    };
    let swept = relay.store.sweep(today).await.unwrap();
    assert_eq!(swept.blobs, 2);
    assert_eq!(chunk_keys(&relay), 0);
    for table in [b"B", b"R"] {
        let end = [table[0] + 1];
        assert!(relay.store.kv().scan(table, &end, usize::MAX).unwrap().is_empty());
    }
    assert_eq!(
        link.request(Request::BlobGet { read_id, offset: 0, count: 1 }).await.unwrap(),
        Response::Error(ErrorCode::NoBlob)
    );
    // The quota is free again: a blob of the full size fits.
    assert!(matches!(link.request(Request::BlobCreate { size }).await.unwrap(), Response::BlobCreated { .. }));
    relay.stop().await;
}

/// Creates a blob of `chunks` full chunks, chunk `i` filled with byte `i + 1`.
async fn new_blob(
    link: &sotto_client::relay::RelayLink,
    chunks: usize,
) -> (sotto_proto::BlobWriteId, sotto_proto::BlobReadId, u64) {
    let size = (chunks * BLOB_CHUNK_SIZE) as u64;
    let Response::BlobCreated { write_id, read_id } = link.request(Request::BlobCreate { size }).await.unwrap() else {
        panic!("create")
    };
    (write_id, read_id, size)
}

fn chunk(i: usize) -> Chunk {
    Chunk::new(vec![i as u8 + 1; BLOB_CHUNK_SIZE]).unwrap()
}

#[tokio::test]
async fn puts_are_answered_when_asked_at_the_end_and_when_refused() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut link = relay.link().await;
    let (write_id, _, size) = new_blob(&link, 4).await;
    let put = |i: usize, answer: bool| Request::BlobPut {
        write_id,
        offset: (i * BLOB_CHUNK_SIZE) as u64,
        answer,
        data: chunk(i),
    };
    // Two puts not asking: no answer at all, not even later.
    link.send_unanswered(put(0, false)).await.unwrap();
    link.send_unanswered(put(1, false)).await.unwrap();
    // The third asks, and its answer covers the three.
    assert_eq!(
        link.request(put(2, true)).await.unwrap(),
        Response::BlobStatus { received: 3 * BLOB_CHUNK_SIZE as u64, size }
    );
    assert!(quiet_for(&mut link, 200).await, "an unasked put was answered");
    // A refused put is answered even unasked (here: a chunk sent twice), and the upload
    // stays where it was.
    link.send_unanswered(put(1, false)).await.unwrap();
    match link.next_event().await {
        Some(Event::Unmatched { response: Response::Error(ErrorCode::BadOffset), .. }) => {}
        other => panic!("expected the refusal, got {other:?}"),
    }
    // The put that completes the blob is answered even unasked, once it is durable.
    assert_eq!(link.request(put(3, false)).await.unwrap(), Response::BlobStatus { received: size, size });
    relay.stop().await;
}

#[tokio::test]
async fn a_ranged_get_answers_every_chunk_in_order_or_stops_with_an_error() {
    let relay = TestRelay::start(memory_store(), identity(), Limits::default()).await;
    let mut link = relay.link().await;
    let chunks = 5;
    let (write_id, read_id, size) = new_blob(&link, chunks).await;
    for i in 0..chunks {
        let put = Request::BlobPut { write_id, offset: (i * BLOB_CHUNK_SIZE) as u64, answer: false, data: chunk(i) };
        link.send_unanswered(put).await.unwrap();
    }
    // The put that completed the blob is answered although it did not ask.
    match link.next_event().await {
        Some(Event::Unmatched { response: Response::BlobStatus { received, size: s }, .. }) => {
            assert_eq!((received, s), (size, size));
        }
        other => panic!("expected the last put's answer, got {other:?}"),
    }

    // Chunks 1 to 4 in one read, each in its own answer, in order.
    let get = |offset: usize, count: u16| Request::BlobGet { read_id, offset: offset as u64, count };
    let mut replies = link.request_many(get(BLOB_CHUNK_SIZE, 4), 4).await.unwrap();
    for i in 1..chunks {
        match replies.next().await.unwrap() {
            Response::BlobData { offset, size: s, data } => {
                assert_eq!((offset, s), ((i * BLOB_CHUNK_SIZE) as u64, size));
                assert_eq!(data.as_bytes(), chunk(i).as_bytes());
            }
            other => panic!("chunk {i}: {other:?}"),
        }
    }
    // A read running past the end: the chunks inside, then the error that stopped it.
    let mut replies = link.request_many(get(3 * BLOB_CHUNK_SIZE, 4), 4).await.unwrap();
    for i in 3..chunks {
        assert!(
            matches!(replies.next().await.unwrap(), Response::BlobData { offset, .. } if offset == (i * BLOB_CHUNK_SIZE) as u64)
        );
    }
    assert_eq!(replies.next().await.unwrap(), Response::Error(ErrorCode::BadOffset));
    // Nothing more comes for it: the error was the last answer.
    assert!(matches!(replies.next().await, Err(sotto_client::relay::LinkError::Closed)));

    // A count of 0 or over the maximum does not parse.
    for count in [0u16, sotto_proto::limits::BLOB_GET_MAX_CHUNKS + 1] {
        let frame = sotto_proto::ClientFrame { corr: 7, request: get(0, 1) };
        // The count is the body's last two bytes; the body follows the 3-byte cell header.
        let end = sotto_proto::limits::CELL_HEADER_LEN + frame.encode_body().len();
        let mut cell = frame.to_cell();
        cell[end - 2..end].copy_from_slice(&count.to_be_bytes());
        link.send_raw(cell).await.unwrap();
        match link.next_event().await {
            Some(Event::Unmatched { corr: 7, response: Response::Error(ErrorCode::Malformed) }) => {}
            other => panic!("count {count}: {other:?}"),
        }
    }
    relay.stop().await;
}

#[tokio::test]
async fn every_chunk_of_a_ranged_get_costs_a_frame_of_the_rate_limit() {
    // A bucket of 70 frames, refilled at one a second: one read of 64 chunks fits
    // (with the frames spent setting up), a second one does not.
    let limits = Limits { frames_per_second: 1, frame_burst: 70, ..Limits::default() };
    let relay = TestRelay::start(memory_store(), identity(), limits).await;
    let link = relay.link().await;
    let chunks = sotto_proto::limits::BLOB_GET_MAX_CHUNKS;
    let (write_id, read_id, size) = new_blob(&link, 2).await;
    for i in 0..2 {
        let put = Request::BlobPut { write_id, offset: (i * BLOB_CHUNK_SIZE) as u64, answer: true, data: chunk(i) };
        assert!(matches!(link.request(put).await.unwrap(), Response::BlobStatus { .. }));
    }
    // 3 frames spent; a read of 64 chunks (past the end: 2 chunks, then BadOffset)
    // takes 64 more.
    let mut replies =
        link.request_many(Request::BlobGet { read_id, offset: 0, count: chunks }, usize::from(chunks)).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(replies.next().await.unwrap(), Response::BlobData { size: s, .. } if s == size));
    }
    assert_eq!(replies.next().await.unwrap(), Response::Error(ErrorCode::BadOffset));
    // 3 left (and one more each second): a read of 16 is refused as a whole, taking
    // only its own frame, and a read of 2 is served.
    let get = |count: u16| Request::BlobGet { read_id, offset: 0, count };
    assert_eq!(link.request(get(16)).await.unwrap(), Response::Error(ErrorCode::RateLimited));
    let mut replies = link.request_many(get(2), 2).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(replies.next().await.unwrap(), Response::BlobData { .. }));
    }
    relay.stop().await;
}
