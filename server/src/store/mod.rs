//! Storage: what the relay keeps, behind the [`Store`] trait.
//!
//! - [`kv`]: the mailbox and blob logic, written once over an ordered key-value engine.
//! - `chunks`: where blob chunks live (in the map, or one file per blob beside sled).
//! - [`sled`]: the durable engine (the default), with group commit.
//! - [`memory`]: the in-memory engine for `--ephemeral`.
//! - [`redis`]: Redis Cluster, shared by several relay processes (`--store redis-cluster://`).
//!
//! A store keeps only what `docs/PROTOCOL.md` ("What the relay keeps") allows: mailbox
//! records (ids, owner key, optional sender key, expiry day, queue counters), queued
//! envelopes with their expiry day, and blobs with theirs. No address, no time finer than
//! a day, no log of operations.

mod chunks;
pub mod kv;
pub mod memory;
pub mod redis;
pub mod sled;

use std::future::Future;

use sotto_proto::{BlobReadId, BlobWriteId, Chunk, Envelope, ErrorCode, PublicKey, RecvId, SendId};
use thiserror::Error;

pub use self::kv::KvStore;
pub use self::memory::MemoryKv;
pub use self::redis::RedisStore;
pub use self::sled::SledKv;

/// A store on sled: the default.
pub type SledStore = KvStore<SledKv>;
/// A store in memory: `--ephemeral`.
pub type MemoryStore = KvStore<MemoryKv>;

/// Why a store operation did not happen. Nothing was changed when one is returned.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No mailbox with this id.
    #[error("no such mailbox")]
    NoMailbox,
    /// The mailbox's queue is at its length or byte limit.
    #[error("mailbox queue is full")]
    QueueFull,
    /// The mailbox is already locked to a sender key.
    #[error("mailbox already secured")]
    AlreadySecured,
    /// A new id collided with an existing one (the caller draws again).
    #[error("id already in use")]
    Duplicate,
    /// No message with this sequence number is queued.
    #[error("no such message")]
    NoMessage,
    /// No blob with this id.
    #[error("no such blob")]
    NoBlob,
    /// The blob is not completely uploaded.
    #[error("blob incomplete")]
    BlobIncomplete,
    /// A chunk does not continue the upload, or is short before the end.
    #[error("chunk at wrong offset or of wrong length")]
    BadOffset,
    /// The blob is over the size limit or the relay's blob quota.
    #[error("blob too large")]
    TooLarge,
    /// A stored record could not be parsed.
    #[error("corrupt record in store")]
    Corrupt,
    /// The storage engine failed.
    #[error("storage engine: {0}")]
    Engine(String),
}

impl StoreError {
    /// The error code a client is sent for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoMailbox => ErrorCode::NoMailbox,
            Self::QueueFull => ErrorCode::QueueFull,
            Self::AlreadySecured => ErrorCode::AlreadySecured,
            Self::NoMessage => ErrorCode::NoMessage,
            Self::NoBlob => ErrorCode::NoBlob,
            Self::BlobIncomplete => ErrorCode::BlobIncomplete,
            Self::BadOffset => ErrorCode::BadOffset,
            Self::TooLarge => ErrorCode::TooLarge,
            Self::Duplicate | Self::Corrupt | Self::Engine(_) => ErrorCode::Internal,
        }
    }
}

/// A mailbox as the relay knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub send_id: SendId,
    pub owner_key: PublicKey,
    pub sender_key: Option<PublicKey>,
    /// The day after which the mailbox is deleted unless its owner comes back.
    pub expires_day: u32,
    /// The sequence number the next envelope gets.
    pub next_seq: u64,
    /// Envelopes queued now.
    pub queued: u32,
}

/// Where a send id leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendTarget {
    pub recv_id: RecvId,
    pub sender_key: Option<PublicKey>,
}

/// How far an upload has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobProgress {
    pub received: u64,
    pub size: u64,
}

/// What one sweep deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepCounts {
    pub envelopes: u64,
    pub mailboxes: u64,
    pub blobs: u64,
    /// The mailboxes deleted, so a connection still subscribed to one can be told.
    pub deleted: Vec<RecvId>,
}

/// Quotas a store enforces on writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    pub max_queue_len: u32,
    pub max_queue_bytes: u64,
    pub max_blob_size: u64,
    pub blob_quota_bytes: u64,
}

/// What the relay keeps. Futures are `Send` so connections can run on any worker.
/// Day numbers come from the caller's [`crate::clock::Clock`].
pub trait Store: Send + Sync + 'static {
    /// Creates a mailbox under fresh ids; [`StoreError::Duplicate`] if either is taken.
    fn create_mailbox(
        &self,
        recv_id: RecvId,
        send_id: SendId,
        owner_key: PublicKey,
        expires_day: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The mailbox with this receive id.
    fn mailbox(&self, recv_id: RecvId) -> impl Future<Output = Result<Option<Mailbox>, StoreError>> + Send;

    /// Moves a mailbox's expiry day later (the owner is still using it).
    fn touch(&self, recv_id: RecvId, expires_day: u32) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Locks a mailbox to one sender key.
    fn secure(&self, recv_id: RecvId, sender_key: PublicKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Where a send id leads.
    fn send_target(&self, send_id: SendId) -> impl Future<Output = Result<Option<SendTarget>, StoreError>> + Send;

    /// Queues an envelope; resolves only once it is durable. Returns its sequence number.
    fn enqueue(
        &self,
        recv_id: RecvId,
        envelope: Envelope,
        expires_day: u32,
        quotas: Quotas,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Up to `limit` queued envelopes with sequence numbers above `after`, in order.
    fn pending(
        &self,
        recv_id: RecvId,
        after: Option<u64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(u64, Envelope)>, StoreError>> + Send;

    /// Deletes a delivered envelope.
    fn ack(&self, recv_id: RecvId, seq: u64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a mailbox and its queue.
    fn delete_mailbox(&self, recv_id: RecvId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Starts a blob of `size` bytes under fresh ids.
    fn blob_create(
        &self,
        write_id: BlobWriteId,
        read_id: BlobReadId,
        size: u64,
        expires_day: u32,
        quotas: Quotas,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends a chunk at `offset`; the blob is durable once the last chunk's call resolves.
    fn blob_put(
        &self,
        write_id: BlobWriteId,
        offset: u64,
        data: Chunk,
    ) -> impl Future<Output = Result<BlobProgress, StoreError>> + Send;

    /// How far an upload has come.
    fn blob_status(&self, write_id: BlobWriteId) -> impl Future<Output = Result<BlobProgress, StoreError>> + Send;

    /// The chunk at `offset` of a complete blob, and the blob's size.
    fn blob_get(
        &self,
        read_id: BlobReadId,
        offset: u64,
    ) -> impl Future<Output = Result<(u64, Chunk), StoreError>> + Send;

    /// Deletes everything whose expiry day is before `today`.
    fn sweep(&self, today: u32) -> impl Future<Output = Result<SweepCounts, StoreError>> + Send;

    /// Makes every write so far durable.
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Wake-ups from other relay processes sharing this store; `None` (the default) for a
    /// store only this process writes. Taken once, by the relay that serves the store.
    fn events(&self) -> Option<StoreEvents> {
        None
    }
}

/// Something another relay process did to a mailbox that a subscriber here must hear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEvent {
    /// The queue may have changed: read it again.
    Wake(RecvId),
    /// The mailbox was deleted or expired.
    Ended(RecvId),
}

/// Which mailboxes this process has subscribers for, so a shared store wakes only it.
pub trait Watcher: Send + Sync {
    /// A connection here subscribed to the mailbox.
    fn watch(&self, recv_id: RecvId);
    /// No connection here is subscribed to the mailbox any more.
    fn unwatch(&self, recv_id: RecvId);
}

/// A shared store's end of the relay's subscription table.
pub struct StoreEvents {
    pub watcher: std::sync::Arc<dyn Watcher>,
    pub events: tokio::sync::mpsc::UnboundedReceiver<StoreEvent>,
}
