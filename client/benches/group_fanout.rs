//! Group fan-out time: one message to a group of 10, 50 and 100 members, from the call to
//! the moment the relay has durably stored every copy.
//!
//! A real relay (sled store on disk, TLS on loopback) runs on its own threads, as a separate
//! process would; the sender is a real profile (sled on disk) with a real libsignal session
//! with every member. Each size is measured `RUNS` times and the median reported, split into
//! "queue" (encrypt and seal every copy, one commit) and "send" (pipelined to the relay until
//! every copy is acknowledged, one commit), next to a baseline measured in the same run: the
//! same number of 1:1 messages sent one after another with `send_text`.
//!
//! Run: `cargo bench -p sotto-client --bench group_fanout` (release build).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_client::app::{Client, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use sotto_client::wire::content::{Body, Text};
use sotto_proto::RelayAddress;
use sotto_server::store::{SledKv, SledStore};
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};

const SIZES: [usize; 3] = [10, 50, 100];
const RUNS: usize = 7;
const BASELINE_RUNS: usize = 3;
const PASS: &[u8] = b"bench passphrase";

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let address = start_relay(&tmp.path().join("relay"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run(tmp.path(), address));
}

/// The relay on its own two-thread runtime, with its sled store on disk.
fn start_relay(dir: &std::path::Path) -> RelayAddress {
    let identity = Identity::generate("localhost").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let address: RelayAddress = format!("sotto://127.0.0.1:{port}#{}", identity.pin()).parse().unwrap();
    // Setting the groups up sends thousands of cells at once; the measured sends stay far
    // below the default limits.
    let limits = Limits { frames_per_second: 1_000_000, frame_burst: 1_000_000, ..Limits::default() };
    let config = RelayConfig { limits, ..RelayConfig::new(identity) };
    let store = Arc::new(SledStore::new(SledKv::open(dir).unwrap()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            sotto_server::run(listener, config, store, std::future::pending::<()>()).await.unwrap();
        });
    });
    address
}

fn client(dir: &std::path::Path, relay: &RelayAddress, name: &str) -> Client {
    let mut c = Client::init(dir, PASS, relay, KdfParams::insecure_for_tests(), ConnectOptions::default()).unwrap();
    c.set_my_name(name).unwrap();
    c
}

async fn until(c: &mut Client, want: impl Fn(&Notice) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if c.poll(Duration::from_millis(100)).await.unwrap().iter().any(&want) {
            return;
        }
    }
    panic!("timed out");
}

async fn run(root: &std::path::Path, relay: RelayAddress) {
    let max = *SIZES.iter().max().unwrap();
    let mut sender = client(&root.join("sender"), &relay, "Sender");
    sender.subscribe_all().await.unwrap();
    eprintln!("setting up {} contacts…", max - 1);
    for i in 1..max {
        let mut m = client(&root.join(format!("m{i}")), &relay, &format!("member {i}"));
        let link = sender.create_invite(Some(&format!("m{i}")), None).await.unwrap();
        m.accept_invite(&link, "Sender").await.unwrap();
        sender.subscribe_all().await.unwrap();
        until(&mut sender, |n| matches!(n, Notice::Joined { .. })).await;
        m.subscribe_all().await.unwrap();
        until(&mut m, |n| matches!(n, Notice::Ready { .. })).await;
    }
    println!("| members | copies | queue (ms) | send (ms) | total (ms) | baseline: N-1 × send_text (ms) | speed-up |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in SIZES {
        let group = format!("g{size}");
        sender.group_create(&group).unwrap();
        for i in 1..size {
            sender.group_add(&group, &format!("m{i}")).await.unwrap();
        }
        let body = || Body::Text(Text { text: "the meeting moved to Thursday".into() });
        // One unmeasured round, so every session has left its first (PreKey) messages.
        sender.group_send(&group, body()).await.unwrap();
        let (mut queue, mut send, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let report = sender.group_queue(&group, body()).await.unwrap();
            let t1 = Instant::now();
            let flushed = sender.flush_outbox().await.unwrap();
            let t2 = Instant::now();
            assert_eq!((report.copies, flushed.sent, flushed.waiting), (size - 1, size - 1, 0));
            queue.push(t1 - t0);
            send.push(t2 - t1);
            total.push(t2 - t0);
        }
        let mut baseline = Vec::new();
        for _ in 0..BASELINE_RUNS {
            let t0 = Instant::now();
            for i in 1..size {
                sender.send_text(&format!("m{i}"), "the meeting moved to Thursday").await.unwrap();
            }
            baseline.push(t0.elapsed());
        }
        let (q, s, t, b) = (median(&mut queue), median(&mut send), median(&mut total), median(&mut baseline));
        println!(
            "| {size} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× |",
            size - 1,
            ms(q),
            ms(s),
            ms(t),
            ms(b),
            b.as_secs_f64() / t.as_secs_f64()
        );
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
