//! A store that fails or stalls for a while (a shared store failing over): the relay
//! reads a subscriber's queue again by itself once the store answers, so envelopes
//! already queued do not wait for a wake-up that may never come; and a link busy both
//! ways (deliveries in, acknowledgements out) never stalls behind a slow store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{TestRelay, create_mailbox, identity, memory_store, next_delivery, send, subscribe};
use sotto_proto::{BlobReadId, BlobWriteId, Envelope, PublicKey, RecvId, Response, SendId};
use sotto_server::Limits;
use sotto_server::store::{
    BlobProgress, Mailbox, MemoryStore, Quotas, SendTarget, Store, StoreError, StoreEvents, SweepCounts,
};

/// The in-memory store, except that the next `fail_reads` queue reads fail and the
/// next `slow_acks` acknowledgements each take [`SLOW_ACK`].
struct Flaky {
    inner: Arc<MemoryStore>,
    fail_reads: AtomicU32,
    slow_acks: AtomicU32,
}

/// How long a slow acknowledgement holds up the connection it came on.
const SLOW_ACK: std::time::Duration = std::time::Duration::from_secs(2);

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}

impl Store for Flaky {
    async fn create_mailbox(&self, r: RecvId, s: SendId, k: PublicKey, d: u32) -> Result<(), StoreError> {
        self.inner.create_mailbox(r, s, k, d).await
    }
    async fn mailbox(&self, r: RecvId) -> Result<Option<Mailbox>, StoreError> {
        self.inner.mailbox(r).await
    }
    async fn touch(&self, r: RecvId, d: u32) -> Result<(), StoreError> {
        self.inner.touch(r, d).await
    }
    async fn secure(&self, r: RecvId, k: PublicKey) -> Result<(), StoreError> {
        self.inner.secure(r, k).await
    }
    async fn send_target(&self, s: SendId) -> Result<Option<SendTarget>, StoreError> {
        self.inner.send_target(s).await
    }
    async fn enqueue(&self, r: RecvId, e: Envelope, d: u32, q: Quotas) -> Result<u64, StoreError> {
        self.inner.enqueue(r, e, d, q).await
    }
    async fn pending(&self, r: RecvId, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Envelope)>, StoreError> {
        if take_one(&self.fail_reads) {
            return Err(StoreError::Engine("failing over".into()));
        }
        self.inner.pending(r, after, limit).await
    }
    async fn ack(&self, r: RecvId, seq: u64) -> Result<(), StoreError> {
        if take_one(&self.slow_acks) {
            tokio::time::sleep(SLOW_ACK).await;
        }
        self.inner.ack(r, seq).await
    }
    async fn delete_mailbox(&self, r: RecvId) -> Result<(), StoreError> {
        self.inner.delete_mailbox(r).await
    }
    async fn blob_create(&self, w: BlobWriteId, r: BlobReadId, s: u64, d: u32, q: Quotas) -> Result<(), StoreError> {
        self.inner.blob_create(w, r, s, d, q).await
    }
    async fn blob_put(&self, w: BlobWriteId, o: u64, c: sotto_proto::Chunk) -> Result<BlobProgress, StoreError> {
        self.inner.blob_put(w, o, c).await
    }
    async fn blob_status(&self, w: BlobWriteId) -> Result<BlobProgress, StoreError> {
        self.inner.blob_status(w).await
    }
    async fn blob_get(&self, r: BlobReadId, o: u64) -> Result<(u64, sotto_proto::Chunk), StoreError> {
        self.inner.blob_get(r, o).await
    }
    async fn sweep(&self, today: u32) -> Result<SweepCounts, StoreError> {
        self.inner.sweep(today).await
    }
    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
    fn events(&self) -> Option<StoreEvents> {
        None
    }
}

fn flaky() -> Arc<Flaky> {
    Arc::new(Flaky { inner: memory_store(), fail_reads: AtomicU32::new(0), slow_acks: AtomicU32::new(0) })
}

#[tokio::test]
async fn queued_envelopes_are_pushed_once_the_store_answers_again() {
    let store = flaky();
    let relay = TestRelay::start(store.clone(), identity(), Limits::default()).await;
    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mb = create_mailbox(&owner).await;
    for tag in 1..=3 {
        assert_eq!(send(&sender, mb.send_id, tag).await, Response::Ok);
    }

    // The subscription's first reads fail; nothing else will ever wake this mailbox.
    store.fail_reads.store(4, Ordering::SeqCst);
    assert_eq!(subscribe(&owner, &mb).await, Response::Ok);
    for tag in 1..=3 {
        let (recv_id, _, envelope) = next_delivery(&mut owner).await;
        assert_eq!(recv_id, mb.recv_id);
        assert_eq!(envelope.as_bytes()[0], tag);
    }
    assert_eq!(store.fail_reads.load(Ordering::SeqCst), 0, "every failing read was retried");
    relay.stop().await;
}

/// Many subscriptions with full delivery windows, every delivery acknowledged at once
/// without waiting, and a store that stalls: more cells are due each way than the
/// socket buffers hold, so a side that stopped reading while it wrote would wait on the
/// other for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_busy_both_ways_never_stalls_behind_a_slow_store() {
    const MAILBOXES: usize = 16;
    const EACH: usize = 150;
    let store = flaky();
    let relay = TestRelay::start(store.clone(), identity(), Limits::default()).await;
    let mut owner = relay.link().await;
    let sender = relay.link().await;
    let mut mailboxes = Vec::new();
    for _ in 0..MAILBOXES {
        let mb = create_mailbox(&owner).await;
        for i in 0..EACH {
            assert_eq!(send(&sender, mb.send_id, i as u8).await, Response::Ok);
        }
        mailboxes.push(mb);
    }
    store.slow_acks.store(1, Ordering::SeqCst);
    for mb in &mailboxes {
        assert_eq!(subscribe(&owner, mb).await, Response::Ok);
    }
    let owners: std::collections::HashMap<_, _> = mailboxes.iter().map(|m| (m.recv_id, &m.owner)).collect();
    let mut events = owner.take_events();
    let owner = Arc::new(owner);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut delivered = 0;
    while delivered < MAILBOXES * EACH {
        let event = tokio::time::timeout_at(deadline, events.recv()).await;
        let Ok(Some(sotto_client::relay::Event::Push(sotto_proto::Push::Deliver { recv_id, seq, .. }))) = event else {
            panic!("deliveries stalled after {delivered} of {}", MAILBOXES * EACH);
        };
        delivered += 1;
        let req = common::signed(
            &owner,
            owners[&recv_id],
            sotto_proto::Request::Ack { recv_id, seq, signature: common::NO_SIG },
        );
        let owner = owner.clone();
        tokio::spawn(async move { owner.request(req).await });
    }
    relay.stop().await;
}
