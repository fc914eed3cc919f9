//! The mailbox and blob logic, written once over an ordered key-value engine ([`Kv`]).
//!
//! Key layout (one keyspace; every key starts with a one-byte table tag):
//!
//! ```text
//! 'M' recv_id              -> send_id owner_key has_sender sender_key expires_day next_seq queued
//! 'S' send_id              -> recv_id
//! 'Q' recv_id seq:u64be    -> expires_day envelope
//! 'B' write_id             -> read_id size received expires_day
//! 'R' read_id              -> write_id
//! 'C' write_id index:u64be -> chunk (only where chunks live in the map: see [`super::chunks`])
//! 'T'                      -> total declared bytes of live blobs
//! ```
//!
//! Read-modify-write of one mailbox or blob happens under a striped lock and commits as
//! one atomic batch, so a crash leaves either all of an operation or none of it.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use sotto_proto::limits::{BLOB_CHUNK_SIZE, ENVELOPE_SIZE, ID_LEN};
use sotto_proto::{BlobReadId, BlobWriteId, Chunk, Envelope, PublicKey, RecvId, SendId};

use super::chunks::Chunks;
use super::{BlobProgress, Mailbox, Quotas, SendTarget, Store, StoreError, SweepCounts};

/// One write in an atomic batch: a value to put, or `None` to remove.
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// Key-value pairs read by a scan, in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// An ordered key-value engine.
pub trait Kv: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies all writes atomically.
    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StoreError>;
    /// Up to `limit` entries with `start <= key < end`, in key order.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError>;
    /// Resolves once every write applied before the call is durable.
    fn durable(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Lock stripes: enough that unrelated mailboxes rarely share one.
const LOCK_STRIPES: usize = 256;

/// Entries read per step when a sweep or delete walks a range.
const SCAN_STEP: usize = 512;

const T_MAILBOX: u8 = b'M';
const T_SEND: u8 = b'S';
const T_QUEUE: u8 = b'Q';
const T_BLOB: u8 = b'B';
const T_READ: u8 = b'R';
pub(super) const T_CHUNK: u8 = b'C';
const K_BLOB_TOTAL: &[u8] = b"T";

const MAILBOX_RECORD_LEN: usize = ID_LEN + 32 + 1 + 32 + 4 + 8 + 4;
const BLOB_RECORD_LEN: usize = ID_LEN + 8 + 8 + 4;

/// The [`Store`] over any [`Kv`].
pub struct KvStore<K: Kv> {
    kv: K,
    stripes: Vec<Mutex<()>>,
    blob_total: Mutex<()>,
    chunks: Chunks,
}

impl<K: Kv> KvStore<K> {
    /// The engine underneath, for tests that play a relay tampering with what it keeps.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// A store over `kv`, blob chunks included.
    pub fn new(kv: K) -> Self {
        Self::with_chunks(kv, Chunks::InKv)
    }

    /// A store over `kv` that keeps blob chunks in one file per blob in `blob_dir`
    /// (created if missing). Files a crash left without a record are deleted.
    pub fn with_blob_files(kv: K, blob_dir: &std::path::Path) -> Result<Self, StoreError> {
        let store = Self::with_chunks(kv, Chunks::files(blob_dir)?);
        store.remove_orphan_files(|w| store.kv.get(&key(T_BLOB, &w.0)).map_or(true, |r| r.is_some()))?;
        Ok(store)
    }

    fn with_chunks(kv: K, chunks: Chunks) -> Self {
        Self { kv, stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(), blob_total: Mutex::new(()), chunks }
    }

    pub(super) fn chunks(&self) -> &Chunks {
        &self.chunks
    }

    /// The engine underneath.
    pub fn engine(&self) -> &K {
        &self.kv
    }

    fn lock(&self, id: &[u8; ID_LEN]) -> MutexGuard<'_, ()> {
        // Ids are uniformly random, so their first byte spreads them over the stripes.
        let m = &self.stripes[usize::from(id[0]) % LOCK_STRIPES];
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `visit` on every entry with `start <= key < end`, in key order, reading
    /// [`SCAN_STEP`] entries at a time; `visit` returns `false` to stop early.
    fn walk(
        &self,
        start: Vec<u8>,
        end: &[u8],
        mut visit: impl FnMut(Vec<u8>, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut from = start;
        loop {
            let rows = self.kv.scan(&from, end, SCAN_STEP)?;
            let Some((last, _)) = rows.last() else { return Ok(()) };
            from = successor(last);
            for (k, v) in rows {
                if !visit(k, v)? {
                    return Ok(());
                }
            }
        }
    }

    /// Every key with `start <= key < end`, as removals for a batch.
    pub(super) fn removals(&self, start: Vec<u8>, end: &[u8]) -> Result<Vec<BatchOp>, StoreError> {
        let mut batch = Vec::new();
        self.walk(start, end, |k, _| {
            batch.push((k, None));
            Ok(true)
        })?;
        Ok(batch)
    }

    fn get_mailbox(&self, recv_id: &RecvId) -> Result<Option<Mailbox>, StoreError> {
        self.kv.get(&key(T_MAILBOX, &recv_id.0))?.map(|v| decode_mailbox(&v)).transpose()
    }

    fn enqueue_now(
        &self,
        recv_id: RecvId,
        envelope: &Envelope,
        expires_day: u32,
        q: Quotas,
    ) -> Result<u64, StoreError> {
        let _g = self.lock(&recv_id.0);
        let mut mb = self.get_mailbox(&recv_id)?.ok_or(StoreError::NoMailbox)?;
        let queued = u64::from(mb.queued) + 1;
        if queued > u64::from(q.max_queue_len) || queued * ENVELOPE_SIZE as u64 > q.max_queue_bytes {
            return Err(StoreError::QueueFull);
        }
        let seq = mb.next_seq;
        mb.next_seq += 1;
        mb.queued += 1;
        let mut value = Vec::with_capacity(4 + ENVELOPE_SIZE);
        value.extend_from_slice(&expires_day.to_be_bytes());
        value.extend_from_slice(envelope.as_bytes());
        self.kv.apply(vec![
            (queue_key(&recv_id, seq), Some(value)),
            (key(T_MAILBOX, &recv_id.0), Some(encode_mailbox(&mb))),
        ])?;
        Ok(seq)
    }

    /// Deletes a mailbox's record, send id and queue. Caller holds the mailbox's lock.
    fn remove_mailbox_locked(&self, recv_id: &RecvId, mb: &Mailbox) -> Result<(), StoreError> {
        let (start, end) = queue_range(recv_id);
        let mut batch = self.removals(start, &end)?;
        batch.push((key(T_SEND, &mb.send_id.0), None));
        batch.push((key(T_MAILBOX, &recv_id.0), None));
        self.kv.apply(batch)
    }

    /// Checks and writes a chunk; returns the record update still to apply (after the
    /// blob file is synced, when this chunk completes the blob).
    fn put_chunk_now(
        &self,
        write_id: BlobWriteId,
        offset: u64,
        data: &Chunk,
    ) -> Result<(PendingBlob, BlobProgress), StoreError> {
        let _g = self.lock(&write_id.0);
        let bkey = key(T_BLOB, &write_id.0);
        let mut blob = self.kv.get(&bkey)?.map(|v| decode_blob(&v)).transpose()?.ok_or(StoreError::NoBlob)?;
        let len = data.len() as u64;
        let end = offset.checked_add(len).ok_or(StoreError::BadOffset)?;
        let complete_after = end == blob.size;
        // Chunks follow each other exactly and only the last may be short. No chunk is
        // empty: a zero-byte blob is complete when created.
        if offset != self.chunks_received(&write_id, blob.received, blob.size)
            || end > blob.size
            || (len as usize != BLOB_CHUNK_SIZE && !complete_after)
            || len == 0
        {
            return Err(StoreError::BadOffset);
        }
        let chunk = self.write_chunk(&write_id, offset / BLOB_CHUNK_SIZE as u64, data)?;
        // A blob file's length says how much arrived, so its record changes only when
        // the blob is complete; chunks in the map move the record with every chunk.
        let record = if chunk.is_some() || complete_after {
            blob.received = end;
            Some(encode_blob(&blob))
        } else {
            None
        };
        Ok((PendingBlob { key: bkey, record, chunk }, BlobProgress { received: end, size: blob.size }))
    }

    fn sweep_now(&self, today: u32) -> Result<SweepCounts, StoreError> {
        let mut counts = SweepCounts::default();
        let mut mailboxes = Vec::new();
        self.walk(vec![T_MAILBOX], &[T_MAILBOX + 1], |k, _| {
            mailboxes.push(RecvId(id_from(&k[1..])?));
            Ok(true)
        })?;
        for recv_id in mailboxes {
            self.sweep_mailbox(&recv_id, today, &mut counts)?;
        }
        self.sweep_blobs(today, &mut counts)?;
        Ok(counts)
    }

    fn sweep_mailbox(&self, recv_id: &RecvId, today: u32, counts: &mut SweepCounts) -> Result<(), StoreError> {
        let _g = self.lock(&recv_id.0);
        let Some(mut mb) = self.get_mailbox(recv_id)? else { return Ok(()) };
        if mb.expires_day < today {
            counts.envelopes += u64::from(mb.queued);
            counts.mailboxes += 1;
            counts.deleted.push(*recv_id);
            return self.remove_mailbox_locked(recv_id, &mb);
        }
        // Envelopes expire in the order they arrived (their expiry is arrival day plus a
        // fixed time), so the walk stops at the first one still live.
        let (start, end) = queue_range(recv_id);
        let mut batch = Vec::new();
        self.walk(start, &end, |k, v| {
            let day = u32::from_be_bytes(v.get(..4).and_then(|b| b.try_into().ok()).ok_or(StoreError::Corrupt)?);
            if day >= today {
                return Ok(false);
            }
            batch.push((k, None));
            Ok(true)
        })?;
        if batch.is_empty() {
            return Ok(());
        }
        counts.envelopes += batch.len() as u64;
        mb.queued = mb.queued.saturating_sub(u32::try_from(batch.len()).unwrap_or(u32::MAX));
        batch.push((key(T_MAILBOX, &recv_id.0), Some(encode_mailbox(&mb))));
        self.kv.apply(batch)
    }

    fn sweep_blobs(&self, today: u32, counts: &mut SweepCounts) -> Result<(), StoreError> {
        let mut expired = Vec::new();
        self.walk(vec![T_BLOB], &[T_BLOB + 1], |k, v| {
            let blob = decode_blob(&v)?;
            if blob.expires_day < today {
                expired.push((BlobWriteId(id_from(&k[1..])?), blob));
            }
            Ok(true)
        })?;
        for (write_id, blob) in expired {
            self.remove_blob(&write_id, &blob)?;
            counts.blobs += 1;
        }
        Ok(())
    }

    fn remove_blob(&self, write_id: &BlobWriteId, blob: &BlobRecord) -> Result<(), StoreError> {
        let _g = self.lock(&write_id.0);
        let _t = self.blob_total.lock().unwrap_or_else(|p| p.into_inner());
        let mut batch = self.chunk_removals(write_id)?;
        let total = self.blob_total_now()?.saturating_sub(blob.size);
        batch.push((K_BLOB_TOTAL.to_vec(), Some(total.to_be_bytes().to_vec())));
        batch.push((key(T_READ, &blob.read_id.0), None));
        batch.push((key(T_BLOB, &write_id.0), None));
        self.kv.apply(batch)?;
        self.remove_chunk_file(write_id)
    }

    fn blob_total_now(&self) -> Result<u64, StoreError> {
        match self.kv.get(K_BLOB_TOTAL)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(|_| StoreError::Corrupt)?)),
        }
    }
}

impl<K: Kv> Store for KvStore<K> {
    async fn create_mailbox(
        &self,
        recv_id: RecvId,
        send_id: SendId,
        owner_key: PublicKey,
        expires_day: u32,
    ) -> Result<(), StoreError> {
        {
            let _g = self.lock(&recv_id.0);
            let (mkey, skey) = (key(T_MAILBOX, &recv_id.0), key(T_SEND, &send_id.0));
            if self.kv.get(&mkey)?.is_some() || self.kv.get(&skey)?.is_some() {
                return Err(StoreError::Duplicate);
            }
            let mb = Mailbox { send_id, owner_key, sender_key: None, expires_day, next_seq: 0, queued: 0 };
            self.kv.apply(vec![(mkey, Some(encode_mailbox(&mb))), (skey, Some(recv_id.0.to_vec()))])?;
        }
        self.kv.durable().await
    }

    async fn mailbox(&self, recv_id: RecvId) -> Result<Option<Mailbox>, StoreError> {
        self.get_mailbox(&recv_id)
    }

    async fn touch(&self, recv_id: RecvId, expires_day: u32) -> Result<(), StoreError> {
        let _g = self.lock(&recv_id.0);
        let mut mb = self.get_mailbox(&recv_id)?.ok_or(StoreError::NoMailbox)?;
        if mb.expires_day >= expires_day {
            return Ok(());
        }
        mb.expires_day = expires_day;
        self.kv.apply(vec![(key(T_MAILBOX, &recv_id.0), Some(encode_mailbox(&mb)))])
    }

    async fn secure(&self, recv_id: RecvId, sender_key: PublicKey) -> Result<(), StoreError> {
        {
            let _g = self.lock(&recv_id.0);
            let mut mb = self.get_mailbox(&recv_id)?.ok_or(StoreError::NoMailbox)?;
            if mb.sender_key.is_some() {
                return Err(StoreError::AlreadySecured);
            }
            mb.sender_key = Some(sender_key);
            self.kv.apply(vec![(key(T_MAILBOX, &recv_id.0), Some(encode_mailbox(&mb)))])?;
        }
        self.kv.durable().await
    }

    async fn send_target(&self, send_id: SendId) -> Result<Option<SendTarget>, StoreError> {
        let Some(v) = self.kv.get(&key(T_SEND, &send_id.0))? else { return Ok(None) };
        let recv_id = RecvId(id_from(&v)?);
        Ok(self.get_mailbox(&recv_id)?.map(|mb| SendTarget { recv_id, sender_key: mb.sender_key }))
    }

    async fn enqueue(
        &self,
        recv_id: RecvId,
        envelope: Envelope,
        expires_day: u32,
        quotas: Quotas,
    ) -> Result<u64, StoreError> {
        let seq = self.enqueue_now(recv_id, &envelope, expires_day, quotas)?;
        self.kv.durable().await?;
        Ok(seq)
    }

    async fn pending(
        &self,
        recv_id: RecvId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let start = match after {
            None => queue_key(&recv_id, 0),
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(s) => queue_key(&recv_id, s + 1),
        };
        let (_, end) = queue_range(&recv_id);
        let rows = self.kv.scan(&start, &end, limit)?;
        rows.into_iter()
            .map(|(k, v)| {
                let seq = u64::from_be_bytes(k[1 + ID_LEN..].try_into().map_err(|_| StoreError::Corrupt)?);
                let env =
                    Envelope::from_slice(v.get(4..).ok_or(StoreError::Corrupt)?).map_err(|_| StoreError::Corrupt)?;
                Ok((seq, env))
            })
            .collect()
    }

    async fn ack(&self, recv_id: RecvId, seq: u64) -> Result<(), StoreError> {
        let _g = self.lock(&recv_id.0);
        let qkey = queue_key(&recv_id, seq);
        if self.kv.get(&qkey)?.is_none() {
            return Err(StoreError::NoMessage);
        }
        let mut mb = self.get_mailbox(&recv_id)?.ok_or(StoreError::NoMailbox)?;
        mb.queued = mb.queued.saturating_sub(1);
        // Not awaited to disk: a lost ack only means a redelivery, which clients dedupe.
        self.kv.apply(vec![(qkey, None), (key(T_MAILBOX, &recv_id.0), Some(encode_mailbox(&mb)))])
    }

    async fn delete_mailbox(&self, recv_id: RecvId) -> Result<(), StoreError> {
        {
            let _g = self.lock(&recv_id.0);
            let mb = self.get_mailbox(&recv_id)?.ok_or(StoreError::NoMailbox)?;
            self.remove_mailbox_locked(&recv_id, &mb)?;
        }
        self.kv.durable().await
    }

    async fn blob_create(
        &self,
        write_id: BlobWriteId,
        read_id: BlobReadId,
        size: u64,
        expires_day: u32,
        q: Quotas,
    ) -> Result<(), StoreError> {
        {
            let _g = self.lock(&write_id.0);
            let _t = self.blob_total.lock().unwrap_or_else(|p| p.into_inner());
            let total = self.blob_total_now()?;
            if size > q.max_blob_size || total.saturating_add(size) > q.blob_quota_bytes {
                return Err(StoreError::TooLarge);
            }
            let (bkey, rkey) = (key(T_BLOB, &write_id.0), key(T_READ, &read_id.0));
            if self.kv.get(&bkey)?.is_some() || self.kv.get(&rkey)?.is_some() {
                return Err(StoreError::Duplicate);
            }
            let blob = BlobRecord { read_id, size, received: 0, expires_day };
            self.kv.apply(vec![
                (bkey, Some(encode_blob(&blob))),
                (rkey, Some(write_id.0.to_vec())),
                (K_BLOB_TOTAL.to_vec(), Some((total + size).to_be_bytes().to_vec())),
            ])?;
        }
        self.kv.durable().await
    }

    async fn blob_put(&self, write_id: BlobWriteId, offset: u64, data: Chunk) -> Result<BlobProgress, StoreError> {
        let (pending, progress) = self.put_chunk_now(write_id, offset, &data)?;
        // Chunks before the last are acknowledged at once: after a crash the upload
        // resumes from what `blob_status` reports. The last one waits for the disk, so a
        // completed upload is durable before the sender passes the pointer on; its bytes
        // are synced before the record that says so is written.
        let complete = progress.received == progress.size;
        if complete {
            self.sync_chunks(&write_id).await?;
        } else if (progress.received / BLOB_CHUNK_SIZE as u64) % super::chunks::WRITEBACK_CHUNKS == 0 {
            self.start_writeback(&write_id);
        }
        if let Some(record) = pending.record {
            let _g = self.lock(&write_id.0);
            // Another put of the same chunk may have raced this one: the record only moves
            // forward.
            let now = self.kv.get(&pending.key)?.map(|v| decode_blob(&v)).transpose()?.ok_or(StoreError::NoBlob)?;
            if now.received < progress.received {
                let mut batch: Vec<BatchOp> = pending.chunk.into_iter().collect();
                batch.push((pending.key, Some(record)));
                self.kv.apply(batch)?;
            }
        }
        if complete {
            self.kv.durable().await?;
        }
        Ok(progress)
    }

    async fn blob_status(&self, write_id: BlobWriteId) -> Result<BlobProgress, StoreError> {
        let blob =
            self.kv.get(&key(T_BLOB, &write_id.0))?.map(|v| decode_blob(&v)).transpose()?.ok_or(StoreError::NoBlob)?;
        Ok(BlobProgress { received: self.chunks_received(&write_id, blob.received, blob.size), size: blob.size })
    }

    async fn blob_get(&self, read_id: BlobReadId, offset: u64) -> Result<(u64, Chunk), StoreError> {
        let wid = self.kv.get(&key(T_READ, &read_id.0))?.ok_or(StoreError::NoBlob)?;
        let write_id = BlobWriteId(id_from(&wid)?);
        let blob =
            self.kv.get(&key(T_BLOB, &write_id.0))?.map(|v| decode_blob(&v)).transpose()?.ok_or(StoreError::NoBlob)?;
        if blob.received < blob.size {
            return Err(StoreError::BlobIncomplete);
        }
        if blob.size == 0 && offset == 0 {
            return Ok((0, Chunk::new(Vec::new()).map_err(|_| StoreError::Corrupt)?));
        }
        if offset % BLOB_CHUNK_SIZE as u64 != 0 || offset >= blob.size {
            return Err(StoreError::BadOffset);
        }
        let len = (blob.size - offset).min(BLOB_CHUNK_SIZE as u64) as usize;
        let data = self.read_chunk(&write_id, offset / BLOB_CHUNK_SIZE as u64, len)?;
        Ok((blob.size, Chunk::new(data).map_err(|_| StoreError::Corrupt)?))
    }

    async fn sweep(&self, today: u32) -> Result<SweepCounts, StoreError> {
        let counts = self.sweep_now(today)?;
        self.kv.durable().await?;
        Ok(counts)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.kv.durable().await
    }
}

struct BlobRecord {
    read_id: BlobReadId,
    size: u64,
    received: u64,
    expires_day: u32,
}

fn key(table: u8, id: &[u8; ID_LEN]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + ID_LEN);
    k.push(table);
    k.extend_from_slice(id);
    k
}

fn queue_key(recv_id: &RecvId, seq: u64) -> Vec<u8> {
    let mut k = key(T_QUEUE, &recv_id.0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The half-open key range of one mailbox's queue.
fn queue_range(recv_id: &RecvId) -> (Vec<u8>, Vec<u8>) {
    let start = key(T_QUEUE, &recv_id.0);
    let mut end = start.clone();
    end.push(0xff);
    end.extend_from_slice(&[0xff; 8]);
    (start, end)
}

/// A checked chunk's record update, applied once the chunk is where it belongs.
struct PendingBlob {
    key: Vec<u8>,
    /// The blob's new record, if it changes.
    record: Option<Vec<u8>>,
    /// The chunk itself, where chunks live in the map.
    chunk: Option<BatchOp>,
}

/// The smallest key greater than `k`.
fn successor(k: &[u8]) -> Vec<u8> {
    let mut s = k.to_vec();
    s.push(0);
    s
}

fn id_from(b: &[u8]) -> Result<[u8; ID_LEN], StoreError> {
    b.try_into().map_err(|_| StoreError::Corrupt)
}

fn encode_mailbox(mb: &Mailbox) -> Vec<u8> {
    let mut v = Vec::with_capacity(MAILBOX_RECORD_LEN);
    v.extend_from_slice(&mb.send_id.0);
    v.extend_from_slice(&mb.owner_key.0);
    match &mb.sender_key {
        Some(k) => {
            v.push(1);
            v.extend_from_slice(&k.0);
        }
        None => {
            v.push(0);
            v.extend_from_slice(&[0; 32]);
        }
    }
    v.extend_from_slice(&mb.expires_day.to_be_bytes());
    v.extend_from_slice(&mb.next_seq.to_be_bytes());
    v.extend_from_slice(&mb.queued.to_be_bytes());
    v
}

fn decode_mailbox(v: &[u8]) -> Result<Mailbox, StoreError> {
    let mut f = Fields::exactly(v, MAILBOX_RECORD_LEN)?;
    let send_id = SendId(f.array()?);
    let owner_key = PublicKey(f.array()?);
    let [has_sender] = f.array()?;
    let sender = PublicKey(f.array()?);
    let sender_key = match has_sender {
        0 => None,
        1 => Some(sender),
        _ => return Err(StoreError::Corrupt),
    };
    Ok(Mailbox {
        send_id,
        owner_key,
        sender_key,
        expires_day: u32::from_be_bytes(f.array()?),
        next_seq: u64::from_be_bytes(f.array()?),
        queued: u32::from_be_bytes(f.array()?),
    })
}

fn encode_blob(b: &BlobRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(BLOB_RECORD_LEN);
    v.extend_from_slice(&b.read_id.0);
    v.extend_from_slice(&b.size.to_be_bytes());
    v.extend_from_slice(&b.received.to_be_bytes());
    v.extend_from_slice(&b.expires_day.to_be_bytes());
    v
}

fn decode_blob(v: &[u8]) -> Result<BlobRecord, StoreError> {
    let mut f = Fields::exactly(v, BLOB_RECORD_LEN)?;
    Ok(BlobRecord {
        read_id: BlobReadId(f.array()?),
        size: u64::from_be_bytes(f.array()?),
        received: u64::from_be_bytes(f.array()?),
        expires_day: u32::from_be_bytes(f.array()?),
    })
}

/// Reads a fixed-layout record field by field; a record of the wrong length is corrupt.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn exactly(v: &'a [u8], len: usize) -> Result<Self, StoreError> {
        if v.len() != len {
            return Err(StoreError::Corrupt);
        }
        Ok(Self(v))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(StoreError::Corrupt)?;
        self.0 = rest;
        head.try_into().map_err(|_| StoreError::Corrupt)
    }
}
