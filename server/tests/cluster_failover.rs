//! A Redis master SIGKILLed while two relay nodes carry 10,000 messages: after the
//! replica takes over, every envelope the relay acknowledged is delivered, and delivered
//! once. The test runs its own cluster on ports of its own, so the shared one is untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod common;
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{Mailbox, NO_SIG, create_mailbox, signed, subscribe};
use futures_util::StreamExt;
use sotto_client::relay::{ConnectOptions, Event, RelayLink};
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{Envelope, ErrorCode, Push, Request, Response};
use support::{RelayProcess, free_port};

const MESSAGES: u32 = 10_000;
const MAILBOXES: usize = 16;
/// Sends in flight at once on the sender's link.
const CONCURRENCY: usize = 32;
/// Acknowledged sends before the master is killed.
const KILL_AFTER: u32 = 2_000;
/// How long the whole exchange may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(240);

fn numbered(n: u32) -> Envelope {
    let mut b = vec![0u8; ENVELOPE_SIZE];
    b[..4].copy_from_slice(&n.to_be_bytes());
    Envelope::from_slice(&b).unwrap()
}

fn number_of(e: &Envelope) -> u32 {
    u32::from_be_bytes(e.as_bytes()[..4].try_into().unwrap())
}

/// The first of six consecutive free ports (and their cluster bus ports, +10000).
fn free_base() -> u16 {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    (7101..=7901)
        .step_by(100)
        .find(|&b| (b..b + 6).all(|p| free(p) && free(p + 10_000)))
        .expect("no six free ports for a private cluster")
}

/// The port of the master serving `slot`, from `CLUSTER NODES` on `port`.
fn master_of_slot(port: u16, slot: u16) -> Option<u16> {
    for line in cluster::cli(port, &["cluster", "nodes"]).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
            continue;
        }
        let serves = f[8..].iter().any(|range| {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if lo <= slot && slot <= hi)
        });
        if serves {
            return f[1].split('@').next()?.rsplit_once(':')?.1.parse().ok();
        }
    }
    None
}

/// Kills a relay process when the test ends, passed or failed.
struct Node(Option<RelayProcess>);

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.kill();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_loses_no_acknowledged_envelope_and_doubles_none() {
    let redis = cluster::PrivateCluster::start(free_base());
    let url = cluster::store_url(&redis.seeds, "");
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    let start = |dir: &std::path::Path, log: &str| {
        RelayProcess::start(
            tmp.path(),
            free_port(),
            &["--data", dir.to_str().unwrap(), "--store", &url],
            &tmp.path().join(log),
        )
    };
    let node_a = Node(Some(start(&a_dir, "a.log")));
    cluster::copy_dir(&a_dir, &b_dir);
    let node_b = Node(Some(start(&b_dir, "b.log")));
    let addrs = [&node_a, &node_b].map(|n| n.0.as_ref().unwrap().address.clone());
    let backends = addrs.each_ref().map(|a| format!("127.0.0.1:{}", a.port).parse().unwrap());
    let proxy = cluster::Proxy::start(backends.to_vec()).await;
    let address = proxy.address(&addrs[0].pin.unwrap());

    // The receiver on one node, the sender on the other.
    let mut receiver = RelayLink::connect(&address, &ConnectOptions::default()).await.unwrap();
    let sender = Arc::new(RelayLink::connect(&address, &ConnectOptions::default()).await.unwrap());
    assert_eq!(*proxy.choices.lock().unwrap(), vec![0, 1]);
    let mut mailboxes: Vec<Mailbox> = Vec::new();
    for _ in 0..MAILBOXES {
        let mb = create_mailbox(&receiver).await;
        assert_eq!(subscribe(&receiver, &mb).await, Response::Ok);
        mailboxes.push(mb);
    }
    // The victim: the master holding the first mailbox.
    let tag = format!("{{{}}}", hex::encode(mailboxes[0].recv_id.0));
    let slot: u16 = cluster::cli(redis.base, &["cluster", "keyslot", &tag]).trim().parse().unwrap();
    let victim = master_of_slot(redis.base, slot).unwrap();
    let witness = redis.ports().find(|&p| p != victim).unwrap();

    // The sender: every message once, never resent; an error means "not acknowledged".
    let acked_count = Arc::new(AtomicU32::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let send_ids: Vec<_> = mailboxes.iter().map(|m| m.send_id).collect();
    let sending = {
        let (sender, acked_count, killed) = (sender.clone(), acked_count.clone(), killed.clone());
        tokio::spawn(async move {
            futures_util::stream::iter(0..MESSAGES)
                .map(|n| {
                    let (sender, send_id) = (sender.clone(), send_ids[n as usize % MAILBOXES]);
                    let (acked_count, killed) = (acked_count.clone(), killed.clone());
                    async move {
                        loop {
                            let req = Request::Send { send_id, envelope: numbered(n), signature: None };
                            match sender.request(req).await {
                                Ok(Response::Ok) => {
                                    acked_count.fetch_add(1, Ordering::Relaxed);
                                    return (n, true, killed.load(Ordering::Relaxed));
                                }
                                // Refused before anything was stored: sending again is safe.
                                Ok(Response::Error(ErrorCode::RateLimited)) => {
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                                _ => return (n, false, killed.load(Ordering::Relaxed)),
                            }
                        }
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        })
    };

    // The killer: SIGKILL the victim master once enough has been acknowledged, wait for
    // its replica to take over, then bring it back (it rejoins as a replica).
    let killing = {
        let (acked_count, killed) = (acked_count.clone(), killed.clone());
        let (conf, pidfile) = (redis.node_dir(victim).join("redis.conf"), redis.node_dir(victim).join("redis.pid"));
        tokio::spawn(async move {
            while acked_count.load(Ordering::Relaxed) < KILL_AFTER {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
            assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
            killed.store(true, Ordering::Relaxed);
            let t = Instant::now();
            while master_of_slot(witness, slot).is_none_or(|m| m == victim) {
                assert!(t.elapsed() < Duration::from_secs(60), "no failover within a minute");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let failover = t.elapsed();
            assert!(std::process::Command::new("redis-server").arg(&conf).status().unwrap().success());
            failover
        })
    };

    // The receiver: acknowledges every delivery, counts each number's deliveries.
    let mut events = receiver.take_events();
    let receiver = Arc::new(receiver);
    let mut delivered: HashMap<u32, u32> = HashMap::new();
    let by_recv: HashMap<_, _> = mailboxes.iter().map(|m| (m.recv_id, m)).collect();
    let deadline = Instant::now() + PATIENCE;
    let mut results = None;
    let mut sending = Some(sending);
    loop {
        assert!(Instant::now() < deadline, "the exchange took too long");
        if let Some(s) = sending.as_mut().filter(|s| s.is_finished()) {
            results = Some(s.await.unwrap());
            sending = None;
        }
        if let Some(r) = &results {
            let all_in = r.iter().filter(|(_, ok, _)| *ok).all(|(n, _, _)| delivered.contains_key(n));
            if all_in {
                break;
            }
        }
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Some(Event::Push(Push::Deliver { recv_id, seq, envelope }))) => {
                *delivered.entry(number_of(&envelope)).or_default() += 1;
                let req = signed(&receiver, &by_recv[&recv_id].owner, Request::Ack { recv_id, seq, signature: NO_SIG });
                let receiver = receiver.clone();
                // Not awaited here: an ack may wait out the failover without holding up
                // deliveries from the other masters.
                tokio::spawn(async move { receiver.request(req).await });
            }
            Ok(Some(other)) => panic!("unexpected event {other:?}"),
            Ok(None) => panic!("the receiver's link closed"),
            Err(_) => {}
        }
    }
    let failover = killing.await.unwrap();
    // Anything delivered twice would arrive within moments; give it the chance.
    let settle = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(ev)) = tokio::time::timeout_at(settle.into(), events.recv()).await {
        if let Event::Push(Push::Deliver { envelope, .. }) = ev {
            *delivered.entry(number_of(&envelope)).or_default() += 1;
        }
    }

    // An idle subscriber on the failed-over shard is still woken: nothing is in flight on
    // its mailbox, so only the wake-up (on the channel re-subscribed on the new master)
    // can bring this one.
    let late = MESSAGES + 1;
    let req = Request::Send { send_id: mailboxes[0].send_id, envelope: numbered(late), signature: None };
    assert_eq!(sender.request(req).await.unwrap(), Response::Ok);
    let woken = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(Event::Push(Push::Deliver { envelope, .. })) if number_of(&envelope) == late => return,
                Some(Event::Push(Push::Deliver { envelope, .. })) => {
                    *delivered.entry(number_of(&envelope)).or_default() += 1;
                }
                Some(_) => {}
                None => panic!("the receiver's link closed"),
            }
        }
    })
    .await;
    assert!(woken.is_ok(), "an idle subscriber on the failed-over shard was not woken");

    let results = results.unwrap();
    let acked: Vec<u32> = results.iter().filter(|(_, ok, _)| *ok).map(|(n, _, _)| *n).collect();
    let victim_after_kill =
        results.iter().filter(|(n, ok, after)| *ok && *after && (*n as usize).is_multiple_of(MAILBOXES)).count();
    eprintln!(
        "acknowledged {} of {MESSAGES}; failover took {failover:?}; {victim_after_kill} acknowledged on the \
         failed-over shard after the kill",
        acked.len()
    );
    assert!(acked.len() as u32 > KILL_AFTER, "the load stopped at the kill");
    assert!(victim_after_kill > 0, "no send to the killed master's mailbox was acknowledged after the failover");
    for n in &acked {
        assert_eq!(delivered.get(n), Some(&1), "acknowledged envelope {n} delivered {:?} times", delivered.get(n));
    }
    for (n, count) in &delivered {
        assert!(*count == 1, "envelope {n} delivered {count} times");
    }
}
