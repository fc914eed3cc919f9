//! One suite, every engine: the sled store, the in-memory store and the Redis Cluster
//! store must behave alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use sotto_proto::limits::{BLOB_CHUNK_SIZE, ENVELOPE_SIZE};
use sotto_proto::{BlobReadId, BlobWriteId, Chunk, Envelope, PublicKey, RecvId, SendId};
use sotto_server::store::{MemoryKv, MemoryStore, Quotas, SledKv, SledStore, Store, StoreError};

const DAY: u32 = 100;

fn quotas() -> Quotas {
    Quotas {
        max_queue_len: 5,
        max_queue_bytes: 4 * ENVELOPE_SIZE as u64,
        max_blob_size: 1 << 20,
        blob_quota_bytes: 3 << 20,
    }
}

fn env(tag: u8) -> Envelope {
    Envelope::from_slice(&vec![tag; ENVELOPE_SIZE]).unwrap()
}

fn ids(n: u8) -> (RecvId, SendId) {
    (RecvId([n; 24]), SendId([n.wrapping_add(100); 24]))
}

async fn suite<S: Store>(s: &S) {
    let (r1, s1) = ids(1);
    let key = PublicKey([5; 32]);
    s.create_mailbox(r1, s1, key, DAY + 10).await.unwrap();
    assert!(matches!(s.create_mailbox(r1, SendId([9; 24]), key, DAY).await, Err(StoreError::Duplicate)));
    assert!(matches!(s.create_mailbox(RecvId([9; 24]), s1, key, DAY).await, Err(StoreError::Duplicate)));
    let t = s.send_target(s1).await.unwrap().unwrap();
    assert_eq!((t.recv_id, t.sender_key), (r1, None));
    assert!(s.send_target(SendId([0; 24])).await.unwrap().is_none());

    // Sequence numbers rise; pending reads from a cursor.
    let mut seqs = Vec::new();
    for i in 0..4 {
        seqs.push(s.enqueue(r1, env(i), DAY + 21, quotas()).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // The byte quota (4 envelopes) bites before the length quota (5).
    assert!(matches!(s.enqueue(r1, env(9), DAY, quotas()).await, Err(StoreError::QueueFull)));
    let all = s.pending(r1, None, 10).await.unwrap();
    assert_eq!(all.iter().map(|(q, _)| *q).collect::<Vec<_>>(), seqs);
    assert_eq!(all[2].1, env(2));
    let after = s.pending(r1, Some(seqs[1]), 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].0, seqs[2]);

    s.ack(r1, seqs[0]).await.unwrap();
    assert!(matches!(s.ack(r1, seqs[0]).await, Err(StoreError::NoMessage)));
    assert_eq!(s.mailbox(r1).await.unwrap().unwrap().queued, 3);
    s.enqueue(r1, env(7), DAY + 21, quotas()).await.unwrap();

    // Secure once.
    s.secure(r1, PublicKey([6; 32])).await.unwrap();
    assert!(matches!(s.secure(r1, PublicKey([7; 32])).await, Err(StoreError::AlreadySecured)));
    assert_eq!(s.send_target(s1).await.unwrap().unwrap().sender_key, Some(PublicKey([6; 32])));

    // Delete takes the queue with it.
    s.delete_mailbox(r1).await.unwrap();
    assert!(s.mailbox(r1).await.unwrap().is_none());
    assert!(s.send_target(s1).await.unwrap().is_none());
    assert!(s.pending(r1, None, 10).await.unwrap().is_empty());
    assert!(matches!(s.enqueue(r1, env(1), DAY, quotas()).await, Err(StoreError::NoMailbox)));

    // Blobs: in order, last chunk short, quota counted.
    let (w, r) = (BlobWriteId([3; 24]), BlobReadId([4; 24]));
    let size = (BLOB_CHUNK_SIZE + 10) as u64;
    s.blob_create(w, r, size, DAY + 2, quotas()).await.unwrap();
    assert!(matches!(
        s.blob_create(BlobWriteId([8; 24]), BlobReadId([8; 24]), 2 << 20, DAY, quotas()).await,
        Err(StoreError::TooLarge)
    ));
    assert!(matches!(s.blob_get(r, 0).await, Err(StoreError::BlobIncomplete)));
    let first = Chunk::new(vec![1; BLOB_CHUNK_SIZE]).unwrap();
    assert_eq!(s.blob_put(w, 0, first.clone()).await.unwrap().received, BLOB_CHUNK_SIZE as u64);
    assert!(matches!(s.blob_put(w, 0, first).await, Err(StoreError::BadOffset)));
    let last = Chunk::new(vec![2; 10]).unwrap();
    assert_eq!(s.blob_put(w, BLOB_CHUNK_SIZE as u64, last).await.unwrap().received, size);
    assert_eq!(s.blob_status(w).await.unwrap().received, size);
    let (sz, c) = s.blob_get(r, BLOB_CHUNK_SIZE as u64).await.unwrap();
    assert_eq!((sz, c.as_bytes()), (size, &[2u8; 10][..]));

    // Sweep: nothing before expiry, everything after.
    let (r2, s2) = ids(2);
    s.create_mailbox(r2, s2, key, DAY + 90).await.unwrap();
    s.enqueue(r2, env(1), DAY + 1, quotas()).await.unwrap();
    s.enqueue(r2, env(2), DAY + 5, quotas()).await.unwrap();
    assert_eq!(s.sweep(DAY).await.unwrap().envelopes, 0);
    let c = s.sweep(DAY + 3).await.unwrap();
    assert_eq!((c.envelopes, c.blobs, c.mailboxes), (1, 1, 0));
    assert_eq!(s.pending(r2, None, 10).await.unwrap().len(), 1);
    assert_eq!(s.mailbox(r2).await.unwrap().unwrap().queued, 1);
    assert!(matches!(s.blob_get(r, 0).await, Err(StoreError::NoBlob)));
    let c = s.sweep(DAY + 91).await.unwrap();
    assert_eq!((c.envelopes, c.mailboxes), (1, 1));
    // The blob quota was given back by the sweep.
    s.blob_create(
        BlobWriteId([5; 24]),
        BlobReadId([6; 24]),
        3 << 20,
        DAY,
        Quotas { max_blob_size: 3 << 20, ..quotas() },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn memory_store_passes_the_suite() {
    suite(&MemoryStore::new(MemoryKv::new())).await;
}

#[tokio::test]
async fn sled_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&SledStore::new(SledKv::open(dir.path()).unwrap())).await;
}

#[tokio::test]
async fn sled_store_with_blob_files_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    suite(&SledStore::with_blob_files(SledKv::open(&dir.path().join("db")).unwrap(), &blobs).unwrap()).await;
    // The suite's blobs expired or were never created: no file stays behind.
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
}

fn chunk(tag: u8) -> Chunk {
    Chunk::new(vec![tag; BLOB_CHUNK_SIZE]).unwrap()
}

/// A crash can keep a blob's record but lose unsynced chunk writes: the relay reports
/// only what its file holds, the upload resumes from there, and the blob reads back whole.
#[tokio::test]
async fn blob_files_resume_from_what_the_file_kept_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (db, blobs) = (dir.path().join("db"), dir.path().join("blobs"));
    let (w, r) = (BlobWriteId([4; 24]), BlobReadId([5; 24]));
    let size = 3 * BLOB_CHUNK_SIZE as u64 + 10;
    {
        let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
        store.blob_create(w, r, size, DAY + 2, quotas()).await.unwrap();
        for i in 0..3u8 {
            store.blob_put(w, u64::from(i) * BLOB_CHUNK_SIZE as u64, chunk(i)).await.unwrap();
        }
        store.flush().await.unwrap();
    }
    // The third chunk and half the second never reached the disk.
    let file = std::fs::read_dir(&blobs).unwrap().next().unwrap().unwrap().path();
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(BLOB_CHUNK_SIZE as u64 * 3 / 2).unwrap();

    let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
    assert_eq!(store.blob_status(w).await.unwrap().received, BLOB_CHUNK_SIZE as u64);
    assert!(matches!(store.blob_put(w, 3 * BLOB_CHUNK_SIZE as u64, chunk(3)).await, Err(StoreError::BadOffset)));
    for i in 1..3u8 {
        store.blob_put(w, u64::from(i) * BLOB_CHUNK_SIZE as u64, chunk(i)).await.unwrap();
    }
    let last = Chunk::new(vec![9; 10]).unwrap();
    assert_eq!(store.blob_put(w, 3 * BLOB_CHUNK_SIZE as u64, last.clone()).await.unwrap().received, size);
    for i in 0..3u8 {
        let (sz, c) = store.blob_get(r, u64::from(i) * BLOB_CHUNK_SIZE as u64).await.unwrap();
        assert_eq!((sz, c), (size, chunk(i)));
    }
    assert_eq!(store.blob_get(r, 3 * BLOB_CHUNK_SIZE as u64).await.unwrap().1, last);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
}

/// A crash after a blob's last chunk reached its file but before the record said so:
/// the relay asks for the last chunk again rather than call the blob complete.
#[tokio::test]
async fn a_blob_file_whole_but_not_recorded_complete_takes_its_last_chunk_again() {
    let dir = tempfile::tempdir().unwrap();
    let (db, blobs) = (dir.path().join("db"), dir.path().join("blobs"));
    let (w, r) = (BlobWriteId([4; 24]), BlobReadId([5; 24]));
    let size = 2 * BLOB_CHUNK_SIZE as u64;
    {
        let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
        store.blob_create(w, r, size, DAY + 2, quotas()).await.unwrap();
        store.blob_put(w, 0, chunk(0)).await.unwrap();
        store.flush().await.unwrap();
    }
    // The second chunk's bytes landed; the record never heard of it.
    let file = blobs.join(hex::encode([4u8; 24]));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(chunk(1).as_bytes());
    std::fs::write(&file, bytes).unwrap();

    let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
    assert_eq!(store.blob_status(w).await.unwrap().received, BLOB_CHUNK_SIZE as u64);
    assert!(matches!(store.blob_get(r, 0).await, Err(StoreError::BlobIncomplete)));
    assert_eq!(store.blob_put(w, BLOB_CHUNK_SIZE as u64, chunk(1)).await.unwrap().received, size);
    assert_eq!(store.blob_get(r, BLOB_CHUNK_SIZE as u64).await.unwrap().1, chunk(1));
}

/// A file whose record is gone (a crash between deleting the two) is deleted at open;
/// files the relay did not write are left alone; a file gone missing reads as corrupt.
#[tokio::test]
async fn blob_files_without_a_record_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (db, blobs) = (dir.path().join("db"), dir.path().join("blobs"));
    let (w, r) = (BlobWriteId([4; 24]), BlobReadId([5; 24]));
    {
        let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
        store.blob_create(w, r, 10, DAY + 2, quotas()).await.unwrap();
        store.blob_put(w, 0, Chunk::new(vec![1; 10]).unwrap()).await.unwrap();
    }
    let orphan = blobs.join(hex::encode([6u8; 24]));
    std::fs::write(&orphan, b"left by a crash").unwrap();
    std::fs::write(blobs.join("notes.txt"), b"not the relay's").unwrap();
    let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
    assert!(!orphan.exists());
    assert!(blobs.join("notes.txt").exists());
    assert_eq!(store.blob_get(r, 0).await.unwrap().1, Chunk::new(vec![1; 10]).unwrap());
    drop(store);
    // Someone deleted the blob's file while the relay was down.
    std::fs::remove_file(blobs.join(hex::encode([4u8; 24]))).unwrap();
    let store = SledStore::with_blob_files(SledKv::open(&db).unwrap(), &blobs).unwrap();
    assert!(matches!(store.blob_get(r, 0).await, Err(StoreError::Corrupt)));
}

#[tokio::test]
async fn sled_store_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (r, s) = ids(1);
    {
        let store = SledStore::new(SledKv::open(dir.path()).unwrap());
        store.create_mailbox(r, s, PublicKey([1; 32]), DAY).await.unwrap();
        for i in 0..3 {
            store.enqueue(r, env(i), DAY, quotas()).await.unwrap();
        }
    }
    let store = SledStore::new(SledKv::open(dir.path()).unwrap());
    let got = store.pending(r, None, 10).await.unwrap();
    assert_eq!(got.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), vec![env(0), env(1), env(2)]);
    assert_eq!(store.mailbox(r).await.unwrap().unwrap().next_seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_all_land_with_distinct_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(SledStore::new(SledKv::open(dir.path()).unwrap()));
    let (r, s) = ids(1);
    store.create_mailbox(r, s, PublicKey([1; 32]), DAY).await.unwrap();
    let q = Quotas { max_queue_len: 1000, max_queue_bytes: u64::MAX, ..quotas() };
    let mut tasks = Vec::new();
    for i in 0..200u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.enqueue(r, env(i), DAY, q).await.unwrap() }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 200);
    assert_eq!(store.pending(r, None, 1000).await.unwrap().len(), 200);
}

#[tokio::test]
async fn redis_cluster_store_passes_the_suite() {
    let (store, _) = cluster::store().await;
    suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_concurrent_sends_all_land_with_distinct_sequence_numbers() {
    let (store, _) = cluster::store().await;
    let store = std::sync::Arc::new(store);
    let (r, s) = ids(1);
    store.create_mailbox(r, s, PublicKey([1; 32]), DAY).await.unwrap();
    let q = Quotas { max_queue_len: 1000, max_queue_bytes: u64::MAX, ..quotas() };
    let mut tasks = Vec::new();
    for i in 0..200u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.enqueue(r, env(i), DAY, q).await.unwrap() }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 200);
    assert_eq!(store.pending(r, None, 1000).await.unwrap().len(), 200);
}

/// Every key the Redis store writes expires, on a day boundary except the short-lived
/// retry tokens, and no key name holds more than one id.
#[tokio::test]
async fn redis_keys_all_expire_and_each_names_one_id() {
    let (store, ns) = cluster::store().await;
    let (r, s) = ids(7);
    store.create_mailbox(r, s, PublicKey([1; 32]), DAY + 90).await.unwrap();
    store.secure(r, PublicKey([2; 32])).await.unwrap();
    for i in 0..3 {
        store.enqueue(r, env(i), DAY + 21, quotas()).await.unwrap();
    }
    store.touch(r, DAY + 91).await.unwrap();
    let (w, b) = (BlobWriteId([8; 24]), BlobReadId([9; 24]));
    store.blob_create(w, b, 10, DAY + 2, quotas()).await.unwrap();
    store.blob_put(w, 0, Chunk::new(vec![3; 10]).unwrap()).await.unwrap();

    let keys = cluster::keys_with_ttls(&cluster::ports_of(&cluster::seeds()), &ns);
    // Record, send index, queue, 3 envelopes, 3 retry tokens, blob, chunk, read index, quota.
    assert_eq!(keys.len(), 13, "{keys:?}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for (key, ttl) in &keys {
        assert!(*ttl > 0, "{key} has no TTL");
        let tokens = key.contains("}:") && key.starts_with(&format!("{ns}d{{"));
        if !tokens {
            // The TTL ends on a UTC day boundary (give or take the second it was read in).
            let end = now + ttl;
            assert!(end % 86_400 <= 2 || end % 86_400 >= 86_398, "{key} expires mid-day");
        }
        let ids = [r.0.as_slice(), s.0.as_slice(), w.0.as_slice(), b.0.as_slice()]
            .iter()
            .filter(|id| key.contains(&hex::encode(id)))
            .count();
        assert!(ids <= 1, "{key} names {ids} ids");
    }
    let longest = keys.iter().map(|(_, t)| *t).max().unwrap();
    assert!(longest <= 92 * 86_400, "a key lives longer than the mailbox TTL: {longest}s");
}
