//! `sotto chat` as a person uses it: the real binary in a real terminal (tmux, 80×24),
//! keys typed with `send-keys`, the screen read with `capture-pane`, against a real relay,
//! with the other side driven by the real `sotto` command line. The relay is also stopped
//! and started again while the chat runs.
//!
//! tmux comes from `scripts/setup` (Debian package `tmux`); the harness is `common/tmux.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::binary::*;
use common::tmux::{SCREEN_WAIT, Tmux};
use common::*;
use sha2::{Digest, Sha256};

/// The `YYYY-MM-DD HH:MM` that `sotto history` on `profile` shows, under `TZ=tz`, for the
/// message holding `text`.
fn history_time(profile: &Path, with: &str, text: &str, tz: &str) -> jiff::civil::DateTime {
    let o = sotto(profile, &["history", with]).env("TZ", tz).output().unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    let line = out.lines().find(|l| l.contains(text)).unwrap_or_else(|| panic!("{text} not in {out}"));
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", &line[..16]).unwrap()
}

#[test]
fn chat_in_a_terminal_sends_sees_the_reply_and_rides_out_a_relay_outage() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay_home = Restartable::new();
    let relay = rt.block_on(relay_home.start(0));
    let port = relay.address.port;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);

    let t = Tmux::start(&a, 80, 24);
    let s = t.until(&["● online", "Bob", "to Bob"]);
    assert!(s.contains("not verified (F4)"), "{s}");

    // Alice writes in the chat; Bob, on the command line, receives it and answers.
    t.type_text("hello from the chat 你好");
    t.key("Enter");
    t.until(&["me: hello from the chat 你好  ✓"]);
    let got = ok(&b, &["listen", "--once", "--timeout", "20"]);
    assert_eq!(got.trim(), "Alice: hello from the chat 你好");
    // Times are local: the command line under two zones differs by the offset, and the chat
    // (under TZ=IST-5:30) shows the same time as the command line does in that zone.
    let utc = history_time(&b, "Alice", "hello from the chat", "UTC0");
    let ist = history_time(&b, "Alice", "hello from the chat", "IST-5:30");
    assert_eq!(utc.checked_add(jiff::Span::new().minutes(330)).unwrap(), ist);
    t.until(&[&format!("{} me: hello from the chat", ist.strftime("%H:%M"))]);
    ok(&b, &["send", "Alice", "the answer 回答 ياخشى"]);
    t.until(&["Bob: the answer 回答 ياخشى"]);

    // The window grows and shrinks: the screen follows.
    for (w, h) in [(100, 30), (80, 24)] {
        assert!(t.tmux(&["resize-window", "-t", "chat", "-x", &w.to_string(), "-y", &h.to_string()]).status.success());
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let s = t.screen();
            let title = s.lines().next().unwrap_or_default().to_string();
            // The title ends one cell before the edge ("F1 or ? help "), trimmed by tmux.
            if title.chars().count() == w - 1 && title.ends_with("F1 or ? help") && s.contains("Bob: the answer") {
                break;
            }
            assert!(Instant::now() < deadline, "not redrawn at {w}×{h}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The help is one key away, and closes.
    t.key("F1");
    t.until(&["Keys", "F2  Ctrl-N"]);
    t.key("Escape");

    // The relay goes away: the UI says so, keeps taking keys, and queues.
    rt.block_on(relay.stop());
    t.until(&["relay unreachable"]);
    t.type_text("written during the outage");
    t.key("Enter");
    t.until(&["me: written during the outage  ◷ queued", "1 waiting"]);
    t.key("F1");
    t.until(&["Keys"]);
    t.key("Escape");

    // It comes back on the same address: the message goes out by itself.
    let relay = rt.block_on(relay_home.start(port));
    t.until(&["me: written during the outage  ✓", "● online"]);
    let got = ok(&b, &["listen", "--once", "--timeout", "20"]);
    assert_eq!(got.trim(), "Alice: written during the outage");

    // Quitting wipes the screen and exits cleanly.
    t.key("C-q");
    let s = t.until(&["CHAT-EXITED 0"]);
    assert!(!s.contains("hello from the chat") && !s.contains("回答"), "the conversation stayed on screen:\n{s}");
    rt.block_on(relay.stop());
}

/// The invite link shown in the invite popup: its rows, without the popup's borders.
fn link_on(screen: &str) -> String {
    let inner = |l: &str| l.trim_start_matches('│').trim_end().trim_end_matches('│').trim().to_string();
    let rows: Vec<String> = screen.lines().map(inner).collect();
    let start = rows.iter().position(|r| r.starts_with("sotto:invite#")).expect("a link on screen");
    rows[start..].iter().take_while(|r| !r.is_empty()).cloned().collect()
}

#[test]
fn chat_makes_and_accepts_invites_and_verifies_a_safety_number() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let address = relay.address.to_string();
    let tmp = tempfile::tempdir().unwrap();
    let (a, c, d) = (tmp.path().join("a"), tmp.path().join("c"), tmp.path().join("d"));
    ok(&a, &["init", "--relay", &address, "--name", "Alice"]);
    ok(&c, &["init", "--relay", &address, "--name", "Carol"]);
    ok(&d, &["init", "--relay", &address, "--name", "Dave"]);

    // Wide enough for the code above the whole link.
    let t = Tmux::start(&a, 250, 60);
    t.until(&["No conversations yet"]);

    // An invite made in the chat, accepted on the command line.
    t.key("F2");
    t.until(&["What will you call"]);
    t.type_text("Carol");
    t.key("Enter");
    // A short invite link: its QR code is drawn in the window (the finder pattern's top row).
    let s = t.until(&["sotto:invite#", "████ ▄▄▄▄▄ █"]);
    let link = link_on(&s);
    ok(&c, &["accept", &link, "--name", "Alice"]);
    t.key("Escape");
    t.until(&["Carol", "to Carol"]);
    ok(&c, &["listen", "--timeout", "3"]);
    t.type_text("hi Carol");
    t.key("Enter");
    t.until(&["me: hi Carol  ✓"]);
    assert_eq!(ok(&c, &["listen", "--once", "--timeout", "20"]).trim(), "Alice: hi Carol");

    // An invite made on the command line, pasted into the chat.
    let out = ok(&d, &["invite", "--name", "Alice", "--no-qr"]);
    let dave_link = out.lines().find(|l| l.starts_with("sotto:")).unwrap().to_string();
    t.key("F3");
    t.until(&["Paste the invite link"]);
    t.paste(&dave_link);
    t.key("Enter");
    t.type_text("Dave 大卫");
    t.key("Enter");
    t.until(&["Invite accepted: Dave 大卫"]);
    ok(&d, &["listen", "--timeout", "3"]);
    t.key("Tab");
    t.until(&["to Dave 大卫"]);

    // The safety number on screen is the one Dave's side shows; mark it verified.
    t.key("F4");
    let theirs = ok(&d, &["verify", "Alice"]).trim().replace(' ', "");
    assert_eq!(theirs.len(), 60);
    let s = t.until(&["Safety number", "Status: not verified."]);
    for row in theirs.as_bytes().chunks(20) {
        let groups: Vec<&str> = row.chunks(5).map(|g| std::str::from_utf8(g).unwrap()).collect();
        assert!(s.contains(&groups.join("  ")), "{} not on screen:\n{s}", groups.join("  "));
    }
    t.key("v");
    t.until(&["Status: verified."]);
    t.key("Escape");
    t.until(&["Dave 大卫 ✓ verified"]);

    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    rt.block_on(relay.stop());
}

#[test]
fn the_invite_qr_code_at_80x24_scans_and_is_accepted() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let address = relay.address.to_string();
    let tmp = tempfile::tempdir().unwrap();
    let (a, c) = (tmp.path().join("a"), tmp.path().join("c"));
    ok(&a, &["init", "--relay", &address, "--name", "Alice"]);
    ok(&c, &["init", "--relay", &address, "--name", "Carol"]);
    let t = Tmux::start(&a, 80, 24);
    t.until(&["No conversations yet"]);
    t.key("F2");
    t.until(&["What will you call"]);
    t.type_text("Carol");
    t.key("Enter");
    let s = t.until(&["sotto:invite#", "Esc close"]);
    // What a phone's camera reads off the terminal: the compact form of the invite.
    let rows: Vec<String> = s.lines().map(str::to_string).collect();
    let scanned = common::scan::scan(&rows);
    assert_eq!(scanned.len(), 1, "no QR code could be read off the screen:\n{s}");
    assert!(scanned[0].starts_with("SOTTO:INVITE:"), "{}", scanned[0]);
    ok(&c, &["accept", &scanned[0], "--name", "Alice"]);
    t.key("Escape");
    t.until(&["Carol", "to Carol"]);
    ok(&c, &["listen", "--timeout", "3"]);
    t.type_text("scanned 扫描");
    t.key("Enter");
    t.until(&["me: scanned 扫描  ✓"]);
    assert_eq!(ok(&c, &["listen", "--once", "--timeout", "20"]).trim(), "Alice: scanned 扫描");
    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    rt.block_on(relay.stop());
}

/// Runs `sotto listen` on `profile` until it has been quiet for `secs`; returns (stdout, stderr).
fn listen_for(profile: &Path, extra: &[&str], secs: &str) -> (String, String) {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["listen", "--timeout", secs]);
    let o = run(profile, &args);
    assert!(o.status.success(), "listen failed: {}", String::from_utf8_lossy(&o.stderr));
    (String::from_utf8(o.stdout).unwrap(), String::from_utf8(o.stderr).unwrap())
}

/// Polls `f` until it returns true; fails the test with `what` after `wait`.
fn eventually(wait: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn chat_sends_a_file_sets_the_timer_and_runs_a_group() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    let t = Tmux::start(&a, 80, 24);
    t.until(&["● online", "to Bob"]);

    // A file, from the path prompt; Bob's `listen` saves the same bytes.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let name = "报告 report.bin";
    let path = tmp.path().join(name);
    std::fs::write(&path, &data).unwrap();
    t.key("F5");
    t.until(&["Path of the file to send"]);
    t.type_text(path.to_str().unwrap());
    t.key("Enter");
    t.until(&["File sent."]);
    let saved = tmp.path().join("saved");
    let (out, _) = listen_for(&b, &["--downloads", saved.to_str().unwrap()], "5");
    let want = saved.join(name);
    assert_eq!(out.trim(), format!("Alice: [file] {name} (293.0 KiB) saved to {}", want.display()));
    assert_eq!(Sha256::digest(std::fs::read(&want).unwrap()), Sha256::digest(&data));

    // The disappearing timer, chosen in the chat: Bob's side agrees, and a message written
    // afterwards disappears from Bob's history when it runs out.
    t.type_text("this one stays");
    t.key("Enter");
    t.until(&["me: this one stays  ✓"]);
    t.key("F7");
    t.until(&["Disappearing messages", "after:"]);
    t.key("Down");
    t.key("Enter");
    t.until(&["Messages here now disappear after 30 seconds.", "⏱ 30 seconds"]);
    let (out, err) = listen_for(&b, &[], "5");
    assert_eq!(out.trim(), "Alice: this one stays");
    assert!(err.contains("* \"Alice\" set messages to disappear after 30s."), "{err}");
    assert_eq!(ok(&b, &["timer", "Alice"]).trim(), "30s");
    t.type_text("this one disappears");
    t.key("Enter");
    t.until(&["me: this one disappears  ✓"]);
    assert_eq!(ok(&b, &["listen", "--once", "--timeout", "20"]).trim(), "Alice: this one disappears");
    let history = ok(&b, &["history", "Alice"]);
    assert!(history.contains("Alice: this one disappears") && history.contains("Alice: this one stays"), "{history}");
    eventually(Duration::from_secs(90), "the message never disappeared from Bob's history", || {
        !ok(&b, &["history", "Alice"]).contains("this one disappears")
    });
    assert!(ok(&b, &["history", "Alice"]).contains("Alice: this one stays"));

    // A group, made in the chat with Bob in it: Bob is told, and gets what is written there;
    // his answer appears under his name in the group's conversation.
    t.key("F6");
    t.until(&["Group name:"]);
    t.type_text("Lawyers 律师");
    t.key("Tab");
    t.type_text("Bob");
    t.key("Enter");
    t.until(&["Group updated.", "#Lawyers 律师"]);
    let (_, err) = listen_for(&b, &[], "5");
    assert!(err.contains("* \"Alice\" added you to the group \"Lawyers 律师\"."), "{err}");
    t.key("Tab");
    t.until(&["to Lawyers 律师", "· Bob"]);
    t.type_text("hearing at 10");
    t.key("Enter");
    t.until(&["me: hearing at 10"]);
    assert_eq!(ok(&b, &["listen", "--once", "--timeout", "20"]).trim(), "Lawyers 律师/Alice: hearing at 10");
    ok(&b, &["group", "send", "Lawyers 律师", "noted, 明白"]);
    t.until(&["Bob: noted, 明白"]);

    // Unread counts survive a restart of the chat: two group messages arrive while Bob's
    // conversation is on screen, a third while the chat is closed.
    t.key("Tab");
    t.until(&["to Bob"]);
    ok(&b, &["group", "send", "Lawyers 律师", "one"]);
    ok(&b, &["group", "send", "Lawyers 律师", "two"]);
    until_unread(&t, "#Lawyers 律师", Some(2));
    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    drop(t);
    ok(&b, &["group", "send", "Lawyers 律师", "three"]);
    let t = Tmux::start(&a, 80, 24);
    t.until(&["● online", "to Bob"]);
    until_unread(&t, "#Lawyers 律师", Some(3));
    until_unread(&t, "Bob", None);
    // Read, they stay read after another restart.
    t.key("Tab");
    t.until(&["to Lawyers 律师", "Bob: three"]);
    until_unread(&t, "#Lawyers 律师", None);
    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    drop(t);
    let t = Tmux::start(&a, 80, 24);
    t.until(&["● online", "to Bob", "#Lawyers 律师"]);
    until_unread(&t, "#Lawyers 律师", None);
    until_unread(&t, "Bob", None);

    t.key("C-q");
    t.until(&["CHAT-EXITED 0"]);
    rt.block_on(relay.stop());
}

/// Waits until the list on the left shows `unread` (or no count) after the chat named `name`.
fn until_unread(t: &Tmux, name: &str, unread: Option<usize>) {
    let deadline = Instant::now() + SCREEN_WAIT;
    loop {
        let s = t.screen();
        // The list is the first bordered pane: its cell is between the first two `│`.
        let cell = s.lines().filter_map(|l| l.split('│').nth(1)).map(str::trim).find(|c| {
            let name_part = c.trim_start_matches(['!', '…', '✓', ' ']);
            name_part == name
                || name_part
                    .rsplit_once(' ')
                    .is_some_and(|(n, count)| n.trim_end() == name && count.parse::<usize>().is_ok())
        });
        let shown = cell.and_then(|c| c.rsplit_once(' ')).and_then(|(_, n)| n.parse::<usize>().ok());
        if cell.is_some() && shown == unread {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never showed {unread:?} unread; the screen shows:\n{s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn chat_refuses_to_run_without_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let relay = rt.block_on(TestRelay::start());
    let a = tmp.path().join("a");
    ok(&a, &["init", "--relay", &relay.address.to_string()]);
    let o = run(&a, &["chat"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a terminal"), "{}", String::from_utf8_lossy(&o.stderr));
    rt.block_on(relay.stop());
}
