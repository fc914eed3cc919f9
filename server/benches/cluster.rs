//! One relay node against two on the same Redis Cluster, with a single sled relay as the
//! baseline, all behind the same round-robin proxy (the "one address").
//!
//! `cargo bench -p sotto-server --bench cluster` (release). It starts a private cluster with
//! `scripts/redis-cluster` on free ports and stops it at the end. Printed: for each setup,
//! the median over rounds of (a) the latency of one message at a time (send acknowledged
//! and delivered) and (b) the throughput of several pairs sending at once; setups take
//! turns in every round so a noisy neighbour hits them alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use rand::RngCore;
use sotto_client::relay::{ConnectOptions, Event, RelayLink, sign_request};
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{Envelope, PublicKey, Push, RecvId, RelayAddress, Request, Response, SendId, Signature};
use support::{RelayProcess, free_port};

/// Rounds per setup; medians are over these.
const ROUNDS: usize = 5;
/// Messages sent one at a time per round, for latency.
const LATENCY_MESSAGES: usize = 200;
/// Sender/receiver pairs sending at once, for throughput.
const PAIRS: usize = 8;
/// Messages each pair sends per round.
const PER_PAIR: usize = 400;
/// Sends each sender keeps in flight.
const WINDOW: usize = 16;

struct Setup {
    name: &'static str,
    nodes: Vec<RelayProcess>,
    /// Kept alive for the setup's life: it is the address.
    _proxy: cluster::Proxy,
    address: RelayAddress,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for n in self.nodes.drain(..) {
            n.kill();
        }
    }
}

async fn setup(name: &'static str, tmp: &std::path::Path, store: Option<&str>, count: usize) -> Setup {
    let mut nodes: Vec<RelayProcess> = Vec::new();
    let first = tmp.join(format!("{name}-0"));
    for i in 0..count {
        let dir = tmp.join(format!("{name}-{i}"));
        if i > 0 {
            cluster::copy_dir(&first, &dir);
        }
        let mut args =
            vec!["--data".to_string(), dir.to_str().unwrap().to_string(), "--log-level".into(), "warn".into()];
        if let Some(url) = store {
            args.extend(["--store".to_string(), url.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(RelayProcess::start(tmp, free_port(), &args, &tmp.join(format!("{name}-{i}.log"))));
    }
    let backends = nodes.iter().map(|n| format!("127.0.0.1:{}", n.address.port).parse().unwrap()).collect();
    let proxy = cluster::Proxy::start(backends).await;
    let address = proxy.address(&nodes[0].address.pin.unwrap());
    Setup { name, nodes, _proxy: proxy, address }
}

struct Owner {
    link: RelayLink,
    recv_id: RecvId,
    send_id: SendId,
    key: SigningKey,
}

async fn owner(address: &RelayAddress) -> Owner {
    let link = RelayLink::connect(address, &ConnectOptions::default()).await.unwrap();
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut req =
        Request::CreateMailbox { owner_key: PublicKey(key.verifying_key().to_bytes()), signature: Signature([0; 64]) };
    sign_request(&key, &link.nonce(), &mut req);
    let Response::MailboxCreated { recv_id, send_id } = link.request(req).await.unwrap() else { panic!("create") };
    let mut req = Request::Subscribe { recv_id, signature: Signature([0; 64]) };
    sign_request(&key, &link.nonce(), &mut req);
    assert_eq!(link.request(req).await.unwrap(), Response::Ok);
    Owner { link, recv_id, send_id, key }
}

fn envelope() -> Envelope {
    Envelope::from_slice(&vec![7u8; ENVELOPE_SIZE]).unwrap()
}

/// Receives `count` deliveries on `events`, acknowledging each.
async fn drain(owner: &Owner, events: &mut tokio::sync::mpsc::Receiver<Event>, count: usize) {
    for _ in 0..count {
        let seq = loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv()).await.unwrap() {
                Some(Event::Push(Push::Deliver { seq, .. })) => break seq,
                Some(_) => continue,
                None => panic!("link closed"),
            }
        };
        let mut req = Request::Ack { recv_id: owner.recv_id, seq, signature: Signature([0; 64]) };
        sign_request(&owner.key, &owner.link.nonce(), &mut req);
        assert_eq!(owner.link.request(req).await.unwrap(), Response::Ok);
    }
}

/// Median microseconds from sending one message to its delivery, one at a time.
async fn latency(address: &RelayAddress) -> f64 {
    let mut rx = owner(address).await;
    let tx = RelayLink::connect(address, &ConnectOptions::default()).await.unwrap();
    let mut events = rx.link.take_events();
    let mut samples = Vec::with_capacity(LATENCY_MESSAGES);
    for _ in 0..LATENCY_MESSAGES {
        let t = Instant::now();
        let req = Request::Send { send_id: rx.send_id, envelope: envelope(), signature: None };
        assert_eq!(tx.request(req).await.unwrap(), Response::Ok);
        drain(&rx, &mut events, 1).await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rx.link = RelayLink::connect(address, &ConnectOptions::default()).await.unwrap();
    median(samples)
}

/// Messages per second with [`PAIRS`] pairs sending at once.
async fn throughput(address: &RelayAddress) -> f64 {
    let mut pairs = Vec::new();
    for _ in 0..PAIRS {
        let mut rx = owner(address).await;
        let events = rx.link.take_events();
        let tx = Arc::new(RelayLink::connect(address, &ConnectOptions::default()).await.unwrap());
        pairs.push((rx, events, tx));
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for (rx, mut events, tx) in pairs {
        let send_id = rx.send_id;
        tasks.push(tokio::spawn(async move {
            let sending = futures_util::stream::iter(0..PER_PAIR)
                .map(|_| {
                    let tx = tx.clone();
                    async move { tx.request(Request::Send { send_id, envelope: envelope(), signature: None }).await }
                })
                .buffer_unordered(WINDOW)
                .for_each(|r| async move { assert_eq!(r.unwrap(), Response::Ok) });
            let receiving = drain(&rx, &mut events, PER_PAIR);
            tokio::join!(sending, receiving);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (PAIRS * PER_PAIR) as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn redis_cluster(args: &[&str], port: &str, dir: &std::path::Path) -> String {
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster");
    let out =
        Command::new(script).args(args).env("REDIS_CLUSTER_PORT", port).env("REDIS_CLUSTER_DIR", dir).output().unwrap();
    assert!(out.status.success(), "redis-cluster {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let cluster_dir = tmp.path().join("redis");
    let port = redis_cluster(&["free-port"], "", &cluster_dir);
    let seeds = redis_cluster(&["start"], &port, &cluster_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let url = format!("redis-cluster://{seeds}/bench:");
        let setups = [
            setup("sled-1-node", tmp.path(), None, 1).await,
            setup("redis-1-node", tmp.path(), Some(&url), 1).await,
            setup("redis-2-nodes", tmp.path(), Some(&url), 2).await,
        ];
        let mut lat: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
        let mut thr: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
        for round in 0..ROUNDS {
            for (i, s) in setups.iter().enumerate() {
                lat[i].push(latency(&s.address).await);
                thr[i].push(throughput(&s.address).await);
                eprintln!("round {round} {}: {:.0} us, {:.0} msg/s", s.name, lat[i][round], thr[i][round]);
            }
        }
        let (base_lat, base_thr) = (median(lat[0].clone()), median(thr[0].clone()));
        println!("setup            latency p50 (us)  vs sled   throughput (msg/s)  vs sled");
        for (i, s) in setups.iter().enumerate() {
            let (l, t) = (median(lat[i].clone()), median(thr[i].clone()));
            println!("{:<16} {:>16.0}  {:>6.2}x  {:>18.0}  {:>6.2}x", s.name, l, l / base_lat, t, t / base_thr);
        }
    });
    redis_cluster(&["stop"], &port, &cluster_dir);
}
