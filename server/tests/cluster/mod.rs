//! A Redis Cluster for tests: the shared one `scripts/test` starts (named by
//! `SOTTO_REDIS_CLUSTER`), or a private one a test starts and stops itself with
//! `scripts/redis-cluster` on ports of its own.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use rand::RngCore;
use sotto_server::store::RedisStore;
use sotto_server::store::redis::{KeyTtls, RedisConfig};

/// The variable naming the shared cluster's seed nodes.
pub const ENV: &str = "SOTTO_REDIS_CLUSTER";

/// The shared cluster's seed nodes, `HOST:PORT,...`. Fails the test, clearly, without it:
/// a cluster test is never skipped.
pub fn seeds() -> String {
    match std::env::var(ENV) {
        Ok(s) if !s.trim().is_empty() => s,
        _ => panic!(
            "{ENV} is not set, so there is no Redis Cluster to test against. Run ./scripts/test \
             (it starts one with scripts/redis-cluster and stops it afterwards), or run \
             `scripts/redis-cluster start` and export {ENV}=<the seed list it prints>."
        ),
    }
}

/// A namespace no other test uses, so tests share the cluster without seeing each other.
pub fn namespace() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    format!("t{}:", hex::encode(b))
}

/// The `--store` URL for the shared cluster under `ns`.
pub fn store_url(seeds: &str, ns: &str) -> String {
    format!("redis-cluster://{seeds}/{ns}")
}

/// A store on the shared cluster in a fresh namespace.
pub async fn store() -> (RedisStore, String) {
    let ns = namespace();
    let config = RedisConfig::parse(&store_url(&seeds(), &ns)).unwrap();
    (RedisStore::connect(&config, KeyTtls::default()).await.unwrap(), ns)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster")
}

/// A cluster of its own, on six ports starting at `base`, stopped when dropped.
pub struct PrivateCluster {
    pub base: u16,
    pub dir: tempfile::TempDir,
    pub seeds: String,
}

impl PrivateCluster {
    pub fn start(base: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(script())
            .arg("start")
            .env("REDIS_CLUSTER_PORT", base.to_string())
            .env("REDIS_CLUSTER_DIR", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cluster start failed: {}", String::from_utf8_lossy(&out.stderr));
        let seeds = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Self { base, dir, seeds }
    }

    /// The node directory of `port` (its config, AOF and pid file).
    pub fn node_dir(&self, port: u16) -> PathBuf {
        self.dir.path().join(port.to_string())
    }

    pub fn ports(&self) -> std::ops::Range<u16> {
        self.base..self.base + 6
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .env("REDIS_CLUSTER_PORT", self.base.to_string())
            .env("REDIS_CLUSTER_DIR", self.dir.path())
            .output();
    }
}

/// Runs `redis-cli -p PORT ARGS...` and returns its output.
pub fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every key of a namespace on every master of the cluster behind `ports`, with its TTL
/// in seconds (-1 for none).
pub fn keys_with_ttls(ports: &[u16], ns: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for &port in ports {
        if !cli(port, &["role"]).starts_with("master") {
            continue;
        }
        let pattern = format!("{ns}*");
        for key in cli(port, &["--scan", "--pattern", &pattern]).lines().filter(|l| !l.is_empty()) {
            let ttl = cli(port, &["ttl", key]).trim().parse().unwrap();
            out.push((key.to_string(), ttl));
        }
    }
    out
}

/// The ports in a seed list.
pub fn ports_of(seeds: &str) -> Vec<u16> {
    seeds.split(',').filter_map(|s| s.rsplit_once(':')).map(|(_, p)| p.parse().unwrap()).collect()
}

/// A round-robin TCP proxy on 127.0.0.1:0: the one address in front of several relay
/// nodes, as DNS or a load balancer would be. A backend that refuses the connection is
/// skipped, as a load balancer's health check would.
pub struct Proxy {
    pub port: u16,
    /// The backend index each accepted connection went to, in order.
    pub choices: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(backends: Vec<std::net::SocketAddr>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let choices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = choices.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let mut chosen = None;
                for i in 0..backends.len() {
                    let idx = (next + i) % backends.len();
                    if let Ok(s) = tokio::net::TcpStream::connect(backends[idx]).await {
                        chosen = Some((idx, s));
                        break;
                    }
                }
                let Some((idx, mut upstream)) = chosen else { continue };
                // Cells are written one at a time: without this, Nagle's algorithm and
                // delayed acknowledgements add tens of milliseconds per exchange.
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                next = idx + 1;
                log.lock().unwrap().push(idx);
                tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Self { port, choices, task }
    }

    /// The relay address clients use: the proxy's, with the nodes' shared pin.
    pub fn address(&self, pin: &sotto_proto::Pin) -> sotto_proto::RelayAddress {
        format!("sotto://127.0.0.1:{}#{pin}", self.port).parse().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies every file of `from` (the relay's key and certificate) into `to`.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "the data directory holds more than key and certificate");
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
