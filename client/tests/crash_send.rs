//! A `sotto send` killed with SIGKILL at random moments: a killed send may or may not
//! have committed its message, but nothing committed is lost, nothing is shown twice,
//! and nothing arrives that the sender does not have in its history.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::binary::*;
use common::*;

/// Sends attempted.
const N: usize = 200;
/// Sends run to the end first, to learn how long one takes.
const CALIBRATION: usize = 5;
/// Exit code of a send that was committed but could not reach the relay (queued).
const EXIT_QUEUED: i32 = 75;
const SEED: u64 = 0x0dd5_eed5_2024_0003;

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The texts of `history` lines written by `who` ("me" or a contact's name), in order,
/// with any delivery state suffix kept.
fn history_texts(history: &str, who: &str) -> Vec<String> {
    let tag = format!(" {who}: ");
    history.lines().filter_map(|l| l.split_once(&tag).map(|(_, t)| t.to_string())).collect()
}

#[test]
fn a_sender_killed_at_random_while_sending_loses_nothing_committed_and_shows_nothing_twice() {
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    let setup = t0.elapsed();

    let mut seed = SEED;
    let mut exited_ok = Vec::new();
    let mut queued = Vec::new();
    let mut killed = Vec::new();
    let mut finished_on_its_own = 0;
    let mut durations = Vec::new();
    for i in 0..N {
        let text = format!("message {i:04}");
        let start = Instant::now();
        let mut child =
            sotto(&a, &["send", "Bob", &text]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        // After calibration, kill every other send (at random) at a random moment within
        // a little more than a send's usual run time.
        let kill_at = if i >= CALIBRATION && next(&mut seed) % 2 == 0 {
            let typical = durations.iter().sum::<Duration>() / durations.len() as u32;
            Some(Duration::from_micros(next(&mut seed) % (typical.as_micros() as u64 * 6 / 5 + 1)))
        } else {
            None
        };
        let status = match kill_at {
            Some(at) => {
                let deadline = start + at;
                loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break Some(status);
                    }
                    if Instant::now() >= deadline {
                        let _ = child.kill();
                        child.wait().unwrap();
                        killed.push(text.clone());
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            None => Some(child.wait().unwrap()),
        };
        let Some(status) = status else { continue };
        if kill_at.is_none() {
            durations.push(start.elapsed());
        } else {
            finished_on_its_own += 1;
        }
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        match status.code() {
            Some(0) => exited_ok.push(text),
            Some(EXIT_QUEUED) => queued.push(text),
            other => panic!("send {i} exited with {other:?}: {stderr}"),
        }
    }
    let sends_took = t0.elapsed() - setup;

    // Any command that reaches the relay delivers what is still in the outbox.
    ok(&a, &["contacts"]);
    let alice_history = ok(&a, &["history", "Bob"]);
    let committed = history_texts(&alice_history, "me");
    let listen = ok(&b, &["listen", "--timeout", "3", "--json"]);
    let shown: Vec<String> = listen
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|v| assert_eq!(v["from"].as_str(), Some("Alice")))
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    let bob_history = history_texts(&ok(&b, &["history", "Alice"]), "Alice");
    let total = t0.elapsed();
    eprintln!(
        "{N} sends: {} exited 0, {} queued, {} killed ({} finished before the kill); {} committed, {} shown at Bob; \
         typical send {:?}; setup {setup:.1?}, sends {sends_took:.1?}, whole test {total:.1?}",
        exited_ok.len(),
        queued.len(),
        killed.len(),
        finished_on_its_own,
        committed.len(),
        shown.len(),
        durations.iter().sum::<Duration>() / durations.len().max(1) as u32,
    );
    rt.block_on(relay.stop());

    // Alice's history: each attempted message at most once, in the order sent, and all
    // delivered now.
    let undelivered: Vec<&String> = committed.iter().filter(|t| t.ends_with(']')).collect();
    assert!(undelivered.is_empty(), "still queued or failed after `contacts` flushed the outbox: {undelivered:?}");
    let all: Vec<String> = (0..N).map(|i| format!("message {i:04}")).collect();
    let committed_set: HashSet<&String> = committed.iter().collect();
    assert_eq!(committed_set.len(), committed.len(), "Alice's history holds a message twice:\n{alice_history}");
    let in_order: Vec<&String> = all.iter().filter(|t| committed_set.contains(t)).collect();
    assert_eq!(committed.iter().collect::<Vec<_>>(), in_order, "Alice's history is out of order");
    // Every send that said it worked (or queued) committed its message.
    for t in exited_ok.iter().chain(&queued) {
        assert!(committed_set.contains(t), "{t:?}: send succeeded but it is not in Alice's history");
    }
    // Nothing shown twice on Bob's side; what Bob got is exactly what Alice committed,
    // once each, in order.
    let shown_set: HashSet<&String> = shown.iter().collect();
    assert_eq!(shown_set.len(), shown.len(), "Bob was shown a message twice: {shown:?}");
    for t in &exited_ok {
        assert!(shown_set.contains(t), "{t:?}: send exited 0 but it never arrived");
    }
    assert_eq!(bob_history, committed, "Bob's history differs from what Alice committed");
    assert_eq!(shown, committed, "Bob was shown something other than what Alice committed, in order");
}
