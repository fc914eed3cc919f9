//! `sotto send NAME --file PATH` and `listen` through the binary, as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::binary::*;
use common::*;
use sha2::{Digest, Sha256};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn a_file_sent_with_the_binary_is_saved_and_announced() {
    let rt = rt();
    let relay = rt.block_on(TestRelay::start());
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    introduce(&relay.address.to_string(), &a, &b);
    let data: Vec<u8> = (0..(1 << 20) + 123).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let name = "تەكشۈرۈش 检查.png";
    let path = tmp.path().join(name);
    std::fs::write(&path, &data).unwrap();
    let saved = tmp.path().join("saved");

    // A relative path works (the command may be handed to another process).
    let o = sotto(&a, &["send", "Bob", "--file", name]).current_dir(tmp.path()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = ok(&b, &["--downloads", saved.to_str().unwrap(), "listen", "--once", "--timeout", "20"]);
    let want = saved.join(name);
    assert_eq!(out.trim(), format!("Alice: [file] {name} (1.0 MiB) saved to {}", want.display()));
    assert_eq!(Sha256::digest(std::fs::read(&want).unwrap()), Sha256::digest(&data));

    // JSON, and a second copy under a suffixed name.
    ok(&a, &["send", "Bob", "--file", path.to_str().unwrap()]);
    let out = ok(&b, &["--downloads", saved.to_str().unwrap(), "listen", "--once", "--timeout", "20", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (v["from"].as_str(), v["file"].as_str(), v["size"].as_u64()),
        (Some("Alice"), Some(name), Some(data.len() as u64))
    );
    let second = v["path"].as_str().unwrap();
    assert!(second.ends_with("تەكشۈرۈش 检查 (2).png"), "{second}");
    assert_eq!(std::fs::read(second).unwrap(), data);

    // Clear errors: a missing file, a file over the limit, text and file together.
    let o = run(&a, &["send", "Bob", "--file", "/nonexistent/file"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("opening the file"));
    let o = run(&a, &["--max-file-size", "1000", "send", "Bob", "--file", path.to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("too large"));
    let o = run(&a, &["send", "Bob", "hi", "--file", path.to_str().unwrap()]);
    assert!(!o.status.success());
    rt.block_on(relay.stop());
}
