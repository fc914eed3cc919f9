//! Driving the `sotto` binary as a user would.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The passphrase every profile made through the binary in tests uses.
pub const PASSPHRASE: &str = "a long passphrase for tests";

/// `sotto --profile PROFILE ARGS…`, with the passphrase in the environment.
pub fn sotto(profile: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sotto"));
    c.arg("--profile").arg(profile).args(args).env("SOTTO_PASSPHRASE", PASSPHRASE).stdin(Stdio::null());
    c
}

/// Runs it to the end.
pub fn run(profile: &Path, args: &[&str]) -> Output {
    sotto(profile, args).output().unwrap()
}

/// Runs it and returns its stdout; fails the test if it failed.
pub fn ok(profile: &Path, args: &[&str]) -> String {
    let o = run(profile, args);
    assert!(
        o.status.success(),
        "sotto {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Sets up Alice and Bob through the binary: init, invite, accept, and both sides' first
/// listen so the session is complete.
pub fn introduce(relay: &str, a: &Path, b: &Path) {
    ok(a, &["init", "--relay", relay, "--name", "Alice"]);
    ok(b, &["init", "--relay", relay, "--name", "Bob"]);
    let link = ok(a, &["invite", "--name", "Bob", "--no-qr"]);
    let link = link.lines().find(|l| l.starts_with("sotto:")).unwrap().to_string();
    ok(b, &["accept", &link, "--name", "Alice"]);
    // Alice picks up Bob's greeting, Bob picks up Alice's answer.
    ok(a, &["listen", "--timeout", "2"]);
    ok(b, &["listen", "--timeout", "2"]);
}
