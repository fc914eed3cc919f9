//! The police with the device, through the `sotto` binary: the duress passphrase destroys
//! the profile and opens an empty one that looks new; `sotto panic` destroys it at once, even
//! while another `sotto` holds it. Afterwards neither passphrase opens anything old, and the
//! old wrapped key is in no file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::binary::*;
use common::*;

const DURESS: &str = "the words I give under pressure";
/// Where format 2 puts the master key's wrapped bytes (slot 0) in the header.
const WRAPPED_MASTER: std::ops::Range<usize> = 62..110;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn found(dir: &Path, needle: &[u8]) -> bool {
    files_under(dir).iter().any(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

fn with_passphrase(profile: &Path, pass: &str, args: &[&str]) -> std::process::Output {
    sotto(profile, args).env("SOTTO_PASSPHRASE", pass).output().unwrap()
}

#[test]
fn the_duress_passphrase_leaves_an_empty_profile_that_looks_new() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    ok(&a, &["send", "Bob", "the list of names is in the blue folder"]);
    ok(&b, &["listen", "--once", "--timeout", "10"]);
    let header_len = std::fs::metadata(b.join("profile.hdr")).unwrap().len();

    let set = sotto(&b, &["duress", "set"]).env("SOTTO_DURESS_PASSPHRASE", DURESS).output().unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    // Setting it changes no size: the header does not tell whether a duress passphrase exists.
    assert_eq!(std::fs::metadata(b.join("profile.hdr")).unwrap().len(), header_len);
    let wrapped = std::fs::read(b.join("profile.hdr")).unwrap()[WRAPPED_MASTER].to_vec();

    // Under pressure: the duress passphrase "works" and shows a profile with nobody in it.
    let o = with_passphrase(&b, DURESS, &["contacts"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No contacts yet"));
    let o = with_passphrase(&b, DURESS, &["history", "Alice"]);
    assert!(!o.status.success());

    // The real passphrase no longer opens anything, and nothing old is left to open.
    let o = with_passphrase(&b, PASSPHRASE, &["contacts"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!found(&b, &wrapped), "the old wrapped master key is still in the profile");
    assert!(!found(&b, b"blue folder"));

    // It looks like a fresh `init` on the same relay: same files, same sizes of header and keyring.
    let fresh = tmp.path().join("fresh");
    ok(&fresh, &["init", "--relay", &relay.address.to_string()]);
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "control.sock")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&b), names(&fresh));
    for f in ["profile.hdr", "keyring"] {
        assert_eq!(std::fs::metadata(b.join(f)).unwrap().len(), std::fs::metadata(fresh.join(f)).unwrap().len());
    }
    // And it works like one: it can make an invite on the old relay.
    let o = with_passphrase(&b, DURESS, &["invite", "--no-qr"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    rt.block_on(relay.stop());
}

#[test]
fn panic_destroys_the_profile_even_while_another_sotto_holds_it() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    ok(&b, &["send", "Alice", "nobody must read this"]);
    let wrapped = std::fs::read(a.join("profile.hdr")).unwrap()[WRAPPED_MASTER].to_vec();

    let mut listener = sotto(&a, &["listen"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !sotto_client::control::socket_path(&a).is_ok_and(|p| p.exists()) && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    // No passphrase needed to destroy.
    let o = sotto(&a, &["panic"]).env_remove("SOTTO_PASSPHRASE").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while listener.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the listening sotto kept running after panic");
        std::thread::sleep(Duration::from_millis(100));
    }
    for f in ["profile.hdr", "keyring", "db"] {
        assert!(!a.join(f).exists(), "{f} is still there");
    }
    assert!(!found(&a, &wrapped));
    assert!(!found(&a, b"nobody must read this"));
    for pass in [PASSPHRASE, DURESS] {
        let o = with_passphrase(&a, pass, &["contacts"]);
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("no profile"), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Without a holder, and a second time: it still says what happened.
    let o = sotto(&b, &["panic"]).output().unwrap();
    assert!(o.status.success());
    assert!(!b.join("profile.hdr").exists());
    let o = sotto(&b, &["panic"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("no profile here"));
    rt.block_on(relay.stop());
}

#[test]
fn timers_and_settings_through_the_binary() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    assert_eq!(ok(&a, &["timer", "Bob"]).trim(), "off");
    ok(&a, &["timer", "Bob", "1h"]);
    assert_eq!(ok(&a, &["timer", "Bob"]).trim(), "1h");
    ok(&b, &["listen", "--timeout", "2"]);
    assert_eq!(ok(&b, &["timer", "Alice"]).trim(), "1h");
    ok(&a, &["send", "Bob", "--expire", "10m", "short-lived"]);
    let o = run(&a, &["send", "Bob", "--expire", "soon", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a duration"));
    assert_eq!(ok(&b, &["settings", "receipts"]).trim(), "off");
    ok(&b, &["settings", "receipts", "on"]);
    assert_eq!(ok(&b, &["settings", "receipts"]).trim(), "on");
    assert!(ok(&a, &["rotate", "Bob"]).contains("1 conversation"));
    ok(&b, &["listen", "--timeout", "2"]);
    ok(&b, &["send", "Alice", "after rotating"]);
    assert_eq!(ok(&a, &["listen", "--once", "--timeout", "10"]).trim(), "Bob: after rotating");
    rt.block_on(relay.stop());
}
