//! A relay started for real on loopback port 0, and a small owner/sender toolkit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::RngCore;
use sotto_client::relay::{ConnectOptions, Event, RelayLink, sign_request};
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{Envelope, PublicKey, Push, RecvId, RelayAddress, Request, Response, SendId, Signature};
use sotto_server::clock::ManualClock;
use sotto_server::metrics::Metrics;
use sotto_server::store::Store;
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The day the test clock starts on.
pub const START_DAY: u32 = 20_000;

pub struct TestRelay<S> {
    pub address: RelayAddress,
    pub store: Arc<S>,
    pub clock: Arc<ManualClock>,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl<S: Store> TestRelay<S> {
    pub async fn start(store: Arc<S>, identity: Identity, limits: Limits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address: RelayAddress = format!("sotto://127.0.0.1:{port}#{}", identity.pin()).parse().unwrap();
        let clock = Arc::new(ManualClock::new(START_DAY));
        let metrics = Arc::new(Metrics::default());
        let config = RelayConfig { limits, identity, clock: clock.clone(), metrics: metrics.clone() };
        let (stop, stopped) = oneshot::channel::<()>();
        let s = store.clone();
        let task = tokio::spawn(async move {
            sotto_server::run(listener, config, s, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { address, store, clock, metrics, stop: Some(stop), task: Some(task) }
    }

    pub async fn link(&self) -> RelayLink {
        RelayLink::connect(&self.address, &ConnectOptions::default()).await.unwrap()
    }

    /// Stops the relay gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

pub fn memory_store() -> Arc<sotto_server::store::MemoryStore> {
    Arc::new(sotto_server::store::MemoryStore::new(sotto_server::store::MemoryKv::new()))
}

pub fn identity() -> Identity {
    Identity::generate("localhost").unwrap()
}

pub fn new_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

pub fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

pub const NO_SIG: Signature = Signature([0; 64]);

/// A mailbox and its owner key.
pub struct Mailbox {
    pub recv_id: RecvId,
    pub send_id: SendId,
    pub owner: SigningKey,
}

pub async fn create_mailbox(link: &RelayLink) -> Mailbox {
    let owner = new_key();
    let mut req = Request::CreateMailbox { owner_key: public(&owner), signature: NO_SIG };
    sign_request(&owner, &link.nonce(), &mut req);
    match link.request(req).await.unwrap() {
        Response::MailboxCreated { recv_id, send_id } => Mailbox { recv_id, send_id, owner },
        other => panic!("create failed: {other:?}"),
    }
}

pub fn signed(link: &RelayLink, key: &SigningKey, mut req: Request) -> Request {
    sign_request(key, &link.nonce(), &mut req);
    req
}

pub async fn subscribe(link: &RelayLink, mb: &Mailbox) -> Response {
    let req = signed(link, &mb.owner, Request::Subscribe { recv_id: mb.recv_id, signature: NO_SIG });
    link.request(req).await.unwrap()
}

pub async fn ack(link: &RelayLink, mb: &Mailbox, seq: u64) -> Response {
    let req = signed(link, &mb.owner, Request::Ack { recv_id: mb.recv_id, seq, signature: NO_SIG });
    link.request(req).await.unwrap()
}

pub fn envelope(tag: u8) -> Envelope {
    let mut b = vec![0u8; ENVELOPE_SIZE];
    b[0] = tag;
    b[ENVELOPE_SIZE - 1] = tag;
    Envelope::from_slice(&b).unwrap()
}

pub async fn send(link: &RelayLink, send_id: SendId, tag: u8) -> Response {
    link.request(Request::Send { send_id, envelope: envelope(tag), signature: None }).await.unwrap()
}

/// The next delivery on `link`, within a few seconds.
pub async fn next_delivery(link: &mut RelayLink) -> (RecvId, u64, Envelope) {
    loop {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), link.next_event())
            .await
            .expect("no delivery in time");
        match ev {
            Some(Event::Push(Push::Deliver { recv_id, seq, envelope })) => return (recv_id, seq, envelope),
            Some(_) => continue,
            None => panic!("link closed"),
        }
    }
}

/// Whether any event arrives on `link` within `ms` milliseconds.
pub async fn quiet_for(link: &mut RelayLink, ms: u64) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(ms), link.next_event()).await.is_err()
}
