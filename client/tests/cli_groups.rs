//! `sotto group …` through the real binary, against a real relay: what a person types and
//! what they see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::binary::*;
use common::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn stderr_of(profile: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let o = run(profile, args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn group_commands_through_the_binary() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let address = relay.address.to_string();
    introduce(&address, &a, &b);
    // Alice also knows Carol; Bob and Carol do not know each other.
    ok(&c, &["init", "--relay", &address, "--name", "Carol"]);
    let link = ok(&a, &["invite", "--name", "Carol", "--no-qr"]);
    let link = link.lines().find(|l| l.starts_with("sotto:")).unwrap().to_string();
    ok(&c, &["accept", &link, "--name", "Alice"]);
    ok(&a, &["listen", "--timeout", "2"]);
    ok(&c, &["listen", "--timeout", "2"]);

    let out = ok(&a, &["group", "create", "Friends 朋友"]);
    assert_eq!(out.trim(), "Group \"Friends 朋友\" created. Add people with `sotto group add \"Friends 朋友\" NAME`.");
    assert_eq!(ok(&a, &["group", "add", "Friends 朋友", "Bob"]).trim(), "\"Bob\" was added to \"Friends 朋友\".");
    assert_eq!(ok(&a, &["group", "add", "Friends 朋友", "Carol"]).trim(), "\"Carol\" was added to \"Friends 朋友\".");

    // Bob and Carol learn of the group; Carol, the newcomer, makes an invite for Bob, which
    // Alice passes on and Bob accepts; Carol's device takes Bob's answer.
    let (_, _, err) = stderr_of(&b, &["listen", "--timeout", "2"]);
    assert!(err.contains("* \"Alice\" added you to the group \"Friends 朋友\"."), "{err}");
    let (_, _, err) = stderr_of(&c, &["listen", "--timeout", "2"]);
    assert!(err.contains("added you to the group"), "{err}");
    ok(&a, &["listen", "--timeout", "2"]);
    let (_, _, err) = stderr_of(&b, &["listen", "--timeout", "2"]);
    assert!(err.contains("Friends 朋友: you were introduced to \"Carol\""), "{err}");
    ok(&c, &["listen", "--timeout", "2"]);

    assert_eq!(ok(&c, &["group", "list"]).trim(), "Friends 朋友");
    let members = ok(&c, &["group", "members", "Friends 朋友"]);
    assert_eq!(members.lines().collect::<Vec<_>>(), ["Carol (you)", "Alice (admin)", "Bob"], "{members}");
    assert_eq!(ok(&b, &["contacts"]).lines().collect::<Vec<_>>(), ["Alice", "Carol"]);

    // A message from Bob reaches Alice and Carol, shown as GROUP/NAME: TEXT.
    let (good, _, err) = stderr_of(&b, &["group", "send", "Friends 朋友", "hello group ཀ 你好"]);
    assert!(good && err.contains("Sent to 2 member(s)"), "{err}");
    assert_eq!(ok(&a, &["listen", "--once", "--timeout", "10"]).trim(), "Friends 朋友/Bob: hello group ཀ 你好");
    let json = ok(&c, &["listen", "--once", "--timeout", "10", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (v["group"].as_str(), v["from"].as_str(), v["text"].as_str()),
        (Some("Friends 朋友"), Some("Bob"), Some("hello group ཀ 你好"))
    );

    let history = ok(&a, &["group", "history", "Friends 朋友"]);
    assert!(history.trim_end().ends_with(" Bob: hello group ཀ 你好"), "{history}");
    let history = ok(&b, &["group", "history", "Friends 朋友"]);
    assert!(history.trim_end().ends_with(" me: hello group ཀ 你好"), "{history}");

    // Mistakes get clear errors.
    let (good, _, err) = stderr_of(&a, &["group", "add", "Nope", "Bob"]);
    assert!(!good && err.contains("no group is called \"Nope\""), "{err}");
    let (good, _, err) = stderr_of(&b, &["group", "remove", "Friends 朋友", "Carol"]);
    assert!(!good && err.contains("only an admin of \"Friends 朋友\" can do that"), "{err}");
    let (good, _, err) = stderr_of(&a, &["group", "add", "Friends 朋友", "Bob"]);
    assert!(!good && err.contains("\"Bob\" is already in \"Friends 朋友\""), "{err}");
    let (good, _, err) = stderr_of(&a, &["group", "remove", "Friends 朋友", "Zed"]);
    assert!(!good && err.contains("nobody in \"Friends 朋友\" is called \"Zed\""), "{err}");

    // Admin, removal and leaving, as each side sees it.
    assert_eq!(
        ok(&a, &["group", "admin", "Friends 朋友", "Bob"]).trim(),
        "\"Bob\" is now an admin of \"Friends 朋友\"."
    );
    assert_eq!(
        ok(&a, &["group", "remove", "Friends 朋友", "Carol"]).trim(),
        "\"Carol\" was removed from \"Friends 朋友\"."
    );
    let (_, _, err) = stderr_of(&c, &["listen", "--timeout", "2"]);
    assert!(err.contains("You were removed from \"Friends 朋友\""), "{err}");
    let (good, _, err) = stderr_of(&c, &["group", "send", "Friends 朋友", "x"]);
    assert!(!good && err.contains("you are not a member of \"Friends 朋友\""), "{err}");
    let (_, _, err) = stderr_of(&b, &["listen", "--timeout", "2"]);
    assert!(err.contains("\"Bob\" is now an admin") || err.contains("Carol\" was removed"), "{err}");
    assert_eq!(
        ok(&b, &["group", "members", "Friends 朋友"]).lines().collect::<Vec<_>>(),
        ["Bob (you, admin)", "Alice (admin)"]
    );
    assert_eq!(ok(&b, &["group", "leave", "Friends 朋友"]).trim(), "You left \"Friends 朋友\".");
    let (_, _, err) = stderr_of(&a, &["listen", "--timeout", "2"]);
    assert!(err.contains("Friends 朋友: \"Bob\" left."), "{err}");
    assert_eq!(ok(&a, &["group", "members", "Friends 朋友"]).trim(), "Alice (you, admin)");
    rt.block_on(relay.stop());
}
