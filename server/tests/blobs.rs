//! Blobs on a real relay over TLS: declared bytes count against the relay's blob quota,
//! and an expired blob is deleted with every chunk it held, giving its quota back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
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
        let put = Request::BlobPut { write_id, offset: (i * BLOB_CHUNK_SIZE) as u64, data };
        assert!(matches!(link.request(put).await.unwrap(), Response::BlobStatus { .. }));
    }
    assert!(matches!(link.request(Request::BlobGet { read_id, offset: 0 }).await.unwrap(), Response::BlobData { .. }));
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
        link.request(Request::BlobGet { read_id, offset: 0 }).await.unwrap(),
        Response::Error(ErrorCode::NoBlob)
    );
    // The quota is free again: a blob of the full size fits.
    assert!(matches!(link.request(Request::BlobCreate { size }).await.unwrap(), Response::BlobCreated { .. }));
    relay.stop().await;
}
