//! `sotto group send GROUP --file PATH` and `listen` through the binary, as a user runs
//! them: three profiles, a real relay over TLS on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::binary::*;
use common::*;
use sha2::{Digest, Sha256};

const GROUP: &str = "Friends 朋友";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn stderr_of(profile: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = run(profile, args);
    (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_file_sent_to_a_group_with_the_binary_is_saved_and_announced_by_every_member() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let address = relay.address.to_string();
    // Alice knows Bob and Carol, who do not know each other; the group introduces them.
    introduce(&address, &a, &b);
    ok(&c, &["init", "--relay", &address, "--name", "Carol"]);
    let link = ok(&a, &["invite", "--name", "Carol", "--no-qr"]);
    let link = link.lines().find(|l| l.starts_with("sotto:")).unwrap().to_string();
    ok(&c, &["accept", &link, "--name", "Alice"]);
    ok(&a, &["listen", "--timeout", "2"]);
    ok(&c, &["listen", "--timeout", "2"]);
    ok(&a, &["group", "create", GROUP]);
    ok(&a, &["group", "add", GROUP, "Bob"]);
    ok(&a, &["group", "add", GROUP, "Carol"]);
    ok(&b, &["listen", "--timeout", "2"]);
    ok(&c, &["listen", "--timeout", "2"]);
    ok(&a, &["listen", "--timeout", "2"]);
    ok(&b, &["listen", "--timeout", "2"]);
    ok(&c, &["listen", "--timeout", "2"]);
    assert!(!ok(&c, &["group", "members", GROUP]).contains("introduction under way"));

    // Bob, not the group's creator, sends three files: 0 B, 1 B and 1 MiB.
    let files: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("照片.jpg", vec![0x5a]),
        ("تەكشۈرۈش.pdf", (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
    ];
    for (name, data) in &files {
        std::fs::write(tmp.path().join(name), data).unwrap();
        // A relative path works (the command may be handed to another process).
        let o = sotto(&b, &["group", "send", GROUP, "--file", name]).current_dir(tmp.path()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains(&format!("Sent {name} to 2 member(s)")), "{err}");
    }

    // Alice and Carol each print one line per file, GROUP/SENDER: [file] NAME (SIZE) saved
    // to PATH, and hold the same bytes.
    for (who, profile) in [("Alice", &a), ("Carol", &c)] {
        let saved = tmp.path().join(format!("saved-{who}"));
        let out = ok(profile, &["--downloads", saved.to_str().unwrap(), "listen", "--once", "--timeout", "20"]);
        let got: BTreeSet<&str> = out.lines().collect();
        let sizes = ["0 B", "1 B", "1.0 MiB"];
        let want: BTreeSet<String> = files
            .iter()
            .zip(sizes)
            .map(|((name, _), size)| {
                format!("{GROUP}/Bob: [file] {name} ({size}) saved to {}", saved.join(name).display())
            })
            .collect();
        assert_eq!(got, want.iter().map(String::as_str).collect(), "{who}: {out}");
        for (name, data) in &files {
            let kept = std::fs::read(saved.join(name)).unwrap();
            assert_eq!(Sha256::digest(&kept), Sha256::digest(data), "{who}: {name}");
        }
        assert_eq!(files_under(&saved).len(), files.len(), "{who}: no temporary file left");
        // The group's history names the files where they were saved.
        let history = ok(profile, &["group", "history", GROUP]);
        let line = format!(" Bob: [file] 照片.jpg (1 B) saved to {}", saved.join("照片.jpg").display());
        assert!(history.lines().any(|l| l.ends_with(&line)), "{who}: {history}");
    }
    let history = ok(&b, &["group", "history", GROUP]);
    assert!(history.lines().any(|l| l.ends_with(" me: [file] تەكشۈرۈش.pdf (1.0 MiB)")), "{history}");

    // JSON output.
    std::fs::write(tmp.path().join("notes.txt"), b"x").unwrap();
    ok(&b, &["group", "send", GROUP, "--file", tmp.path().join("notes.txt").to_str().unwrap()]);
    let saved = tmp.path().join("saved-json");
    let out = ok(&a, &["--downloads", saved.to_str().unwrap(), "listen", "--once", "--timeout", "20", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["group"].as_str(), v["from"].as_str(), v["file"].as_str(), v["size"].as_u64()),
        (Some(GROUP), Some("Bob"), Some("notes.txt"), Some(1))
    );
    assert_eq!(std::fs::read(v["path"].as_str().unwrap()).unwrap(), b"x");

    // The group's disappearing-message timer, set by a member, reaches the others.
    assert_eq!(ok(&c, &["group", "timer", GROUP]).trim(), "off");
    assert_eq!(
        ok(&b, &["group", "timer", GROUP, "1h"]).trim(),
        format!("Messages in \"{GROUP}\" now disappear after 1h, for every member.")
    );
    let (_, err) = stderr_of(&c, &["listen", "--timeout", "2"]);
    assert!(err.contains(&format!("* {GROUP}: \"Bob\" set messages to disappear after 1h.")), "{err}");
    assert_eq!(ok(&c, &["group", "timer", GROUP]).trim(), "1h");
    let (good, err) = stderr_of(&c, &["group", "timer", GROUP, "soon"]);
    assert!(!good && err.contains("is not a duration"), "{err}");

    // Clear errors: no such group, a missing file, a file over the limit, text and file
    // together.
    let path = tmp.path().join("照片.jpg");
    let path = path.to_str().unwrap();
    let (good, err) = stderr_of(&b, &["group", "send", "Nope", "--file", path]);
    assert!(!good && err.contains("no group is called \"Nope\""), "{err}");
    let (good, err) = stderr_of(&b, &["group", "send", GROUP, "--file", "/nonexistent/file"]);
    assert!(!good && err.contains("opening the file"), "{err}");
    let big = tmp.path().join("تەكشۈرۈش.pdf");
    let (good, err) =
        stderr_of(&b, &["--max-file-size", "1000", "group", "send", GROUP, "--file", big.to_str().unwrap()]);
    assert!(!good && err.contains("too large"), "{err}");
    let (good, _) = stderr_of(&b, &["group", "send", GROUP, "hi", "--file", path]);
    assert!(!good);
    rt.block_on(relay.stop());
}
