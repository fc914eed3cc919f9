//! The `sotto` binary as a user runs it, against a real relay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::binary::*;
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_conversation_through_the_binary() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    assert_eq!(ok(&a, &["contacts"]).trim(), "Bob");
    assert_eq!(ok(&b, &["contacts"]).trim(), "Alice");

    ok(&a, &["send", "Bob", "hello from the command line 你好"]);
    let out = ok(&b, &["listen", "--once", "--timeout", "10"]);
    assert_eq!(out.trim(), "Alice: hello from the command line 你好");
    ok(&b, &["send", "Alice", "and back"]);
    let out = ok(&a, &["listen", "--once", "--timeout", "10", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["from"].as_str(), v["text"].as_str()), (Some("Bob"), Some("and back")));
    let history = ok(&a, &["history", "Bob"]);
    assert!(history.contains("me: hello from the command line 你好"), "{history}");
    assert!(history.contains("Bob: and back"), "{history}");

    // Safety numbers agree.
    let na = ok(&a, &["verify", "Bob"]);
    let nb = ok(&b, &["verify", "Alice"]);
    assert_eq!(na.trim(), nb.trim());
    assert_eq!(na.trim().replace(' ', "").len(), 60);

    // Clear errors.
    let o = run(&a, &["send", "Nobody", "x"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no contact is called"));
    let o = sotto(&a, &["contacts"]).env("SOTTO_PASSPHRASE", "wrong").output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).to_lowercase().contains("passphrase"));
    rt.block_on(relay.stop());
}

#[test]
fn listen_in_one_process_and_send_from_another_share_the_profile() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);

    // Bob listens; while that process holds his profile, another `sotto` sends with it.
    let mut listener =
        sotto(&b, &["listen", "--timeout", "15"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let o = run(&b, &["send", "Alice", "sent while listen holds the profile"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).to_lowercase().contains("lock"));
    assert_eq!(ok(&b, &["contacts"]).trim(), "Alice");
    // And Alice's message reaches Bob's running listener.
    ok(&a, &["send", "Bob", "to the listener"]);
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    assert_eq!(line, "Alice: to the listener");
    let _ = listener.kill();
    let _ = listener.wait();
    let out = ok(&a, &["listen", "--once", "--timeout", "10"]);
    assert_eq!(out.trim(), "Bob: sent while listen holds the profile");
    rt.block_on(relay.stop());
}

/// `sotto invite` run while `listen` holds the profile is carried out by the listener,
/// which must then also receive on the new invite's mailbox.
#[test]
fn an_invite_made_while_listen_runs_is_answered_to_the_listener() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    introduce(&relay.address.to_string(), &a, &b);
    ok(&c, &["init", "--relay", &relay.address.to_string(), "--name", "Carol"]);

    let mut listener =
        sotto(&a, &["listen", "--timeout", "30"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let link = ok(&a, &["invite", "--name", "Carol", "--no-qr"]);
    let link = link.lines().find(|l| l.starts_with("sotto:")).unwrap().to_string();
    ok(&c, &["accept", &link, "--name", "Alice"]);
    ok(&c, &["send", "Alice", "hello from Carol"]);
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    assert_eq!(line, "Carol: hello from Carol");
    kill9(&mut listener);
    assert_eq!(ok(&a, &["contacts"]).lines().collect::<Vec<_>>(), vec!["Bob", "Carol"]);
    rt.block_on(relay.stop());
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_receiver_killed_at_random_shows_each_of_1000_messages_exactly_once() {
    const N: usize = 1000;
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);

    let t0 = Instant::now();
    // Alice queues all messages first (through the library, for speed).
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut alice =
            sotto_client::app::Client::open(&a, PASSPHRASE.as_bytes(), sotto_client::relay::ConnectOptions::default())
                .unwrap();
        for i in 0..N {
            alice.send_text("Bob", &format!("message {i:04}")).await.unwrap();
        }
    });

    eprintln!("all {N} sent after {:?}", t0.elapsed());
    // Bob listens and is killed with SIGKILL at random moments, then listens once more
    // until his queue is empty.
    const KILLS: usize = 6;
    let mut printed: Vec<String> = Vec::new();
    let mut seed = 0x9e37_79b9_u64;
    let mut kills = 0;
    for round in 0..=KILLS {
        let last = round == KILLS;
        let mut child = sotto(&b, &["listen", "--json", "--timeout", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader =
            std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
        if last {
            assert!(child.wait().unwrap().success());
        } else {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            std::thread::sleep(Duration::from_millis(300 + seed % 1500));
            kill9(&mut child);
            kills += 1;
        }
        for line in reader.join().unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            printed.push(v["text"].as_str().unwrap().to_string());
        }
        eprintln!("after round {round}: {} shown, {:?}", printed.len(), t0.elapsed());
    }
    assert_eq!(kills, KILLS);
    // Nothing shown twice.
    let mut sorted = printed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), printed.len(), "a message was shown twice");
    // Everything kept exactly once, in order.
    let history = ok(&b, &["history", "Alice"]);
    let got: Vec<&str> = history.lines().filter_map(|l| l.split_once("Alice: ").map(|(_, t)| t)).collect();
    let want: Vec<String> = (0..N).map(|i| format!("message {i:04}")).collect();
    assert_eq!(got, want);
    rt.block_on(relay.stop());
}
