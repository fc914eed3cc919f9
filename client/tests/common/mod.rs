//! A real relay on loopback and real profiles in temp dirs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod binary;
pub mod record_proxy;
pub mod scan;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sotto_client::app::{Client, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use sotto_proto::RelayAddress;
use sotto_server::store::MemoryStore;
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};
use tokio::sync::oneshot;

pub const PASS: &[u8] = b"correct horse battery staple";

pub struct TestRelay {
    pub address: RelayAddress,
    pub store: Arc<MemoryStore>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestRelay {
    pub async fn start() -> Self {
        Self::start_on(
            "127.0.0.1:0",
            Identity::generate("localhost").unwrap(),
            Arc::new(MemoryStore::new(sotto_server::store::MemoryKv::new())),
        )
        .await
    }

    pub async fn start_on(addr: &str, identity: Identity, store: Arc<MemoryStore>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let address: RelayAddress = format!("sotto://127.0.0.1:{port}#{}", identity.pin()).parse().unwrap();
        let config = RelayConfig { limits: Limits::default(), ..RelayConfig::new(identity) };
        let (stop, stopped) = oneshot::channel::<()>();
        let s = store.clone();
        let task = tokio::spawn(async move {
            sotto_server::run(listener, config, s, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self { address, store, stop: Some(stop), task: Some(task) }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// A relay that can be stopped and started again with the same key and the same store,
/// as after a crash or an upgrade.
pub struct Restartable {
    identity_dir: tempfile::TempDir,
    store: Arc<MemoryStore>,
}

impl Restartable {
    pub fn new() -> Self {
        Self {
            identity_dir: tempfile::tempdir().unwrap(),
            store: Arc::new(MemoryStore::new(sotto_server::store::MemoryKv::new())),
        }
    }

    /// Starts the relay on `port` (0: any free port).
    pub async fn start(&self, port: u16) -> TestRelay {
        let identity = Identity::load_or_create(self.identity_dir.path(), "localhost").unwrap();
        TestRelay::start_on(&format!("127.0.0.1:{port}"), identity, self.store.clone()).await
    }
}

pub fn new_client(dir: &Path, relay: &RelayAddress, name: &str) -> Client {
    let mut c = Client::init(dir, PASS, relay, KdfParams::insecure_for_tests(), ConnectOptions::default()).unwrap();
    c.set_my_name(name).unwrap();
    c
}

pub fn reopen(dir: &Path) -> Client {
    // sled releases its lock shortly after the previous handle is dropped.
    for _ in 0..50 {
        match Client::open(dir, PASS, ConnectOptions::default()) {
            Ok(c) => return c,
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    panic!("profile would not reopen");
}

/// Polls until a notice matches; returns it and everything seen before.
pub async fn until(client: &mut Client, want: impl Fn(&Notice) -> bool) -> (Notice, Vec<Notice>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        for n in client.poll(Duration::from_millis(100)).await.unwrap() {
            if want(&n) {
                return (n, seen);
            }
            seen.push(n);
        }
    }
    panic!("timed out; saw {seen:?}");
}

/// Collects every notice until `quiet` passes without one.
pub async fn drain(client: &mut Client, quiet: Duration) -> Vec<Notice> {
    let mut seen = Vec::new();
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < quiet {
        let batch = client.poll(Duration::from_millis(50)).await.unwrap();
        if !batch.is_empty() {
            last = tokio::time::Instant::now();
            seen.extend(batch);
        }
    }
    seen
}

pub fn texts(notices: &[Notice]) -> Vec<String> {
    notices
        .iter()
        .filter_map(|n| match n {
            Notice::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Two profiles that know each other: Alice invited Bob.
pub struct Pair {
    pub alice: Client,
    pub bob: Client,
    pub alice_dir: PathBuf,
    pub bob_dir: PathBuf,
}

pub async fn pair(relay: &RelayAddress, root: &Path) -> Pair {
    let (alice_dir, bob_dir) = (root.join("alice"), root.join("bob"));
    let mut alice = new_client(&alice_dir, relay, "Alice");
    let mut bob = new_client(&bob_dir, relay, "Bob");
    let link = alice.create_invite(Some("Bob"), None).await.unwrap();
    bob.accept_invite(&link, "Alice").await.unwrap();
    alice.subscribe_all().await.unwrap();
    until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
    bob.subscribe_all().await.unwrap();
    until(&mut bob, |n| matches!(n, Notice::Ready { .. })).await;
    Pair { alice, bob, alice_dir, bob_dir }
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
