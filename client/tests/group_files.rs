//! Files sent to a group, end to end: three real profiles (sled in temp dirs) and a real
//! relay over TLS on loopback. A member who is not the creator sends files; the file is
//! uploaded once and every other member downloads, checks and saves it, byte-exact, and
//! keeps it in the group's history; a tampered chunk is refused by every member and
//! leaves nothing under the file's name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use sotto_client::app::{AppError, Client, FileState, GroupEvent, Notice};
use sotto_client::files::format::SEGMENT_PLAIN;
use sotto_client::files::{FileSettings, NoProgress};
use sotto_server::store::kv::Kv;

const GROUP: &str = "Lawyers ئادۋوكات";
const NAMES: [&str; 3] = ["Aynur", "Bilal", "Chodron"];
/// Longest a group transfer in these tests may take.
const DEADLINE: Duration = Duration::from_secs(120);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(tokio::task::LocalSet::new().run_until(f))
}

async fn introduce(a: &mut Client, b: &mut Client, a_calls_b: &str, b_calls_a: &str) {
    let link = a.create_invite(Some(a_calls_b), None).await.unwrap();
    b.accept_invite(&link, b_calls_a).await.unwrap();
    a.subscribe_all().await.unwrap();
    until(a, |n| matches!(n, Notice::Joined { .. })).await;
    b.subscribe_all().await.unwrap();
    until(b, |n| matches!(n, Notice::Ready { .. })).await;
}

/// Polls every client in turn until none has seen anything for a while.
async fn settle(clients: &mut [Client]) -> Vec<Vec<Notice>> {
    const QUIET: Duration = Duration::from_millis(1500);
    let mut seen: Vec<Vec<Notice>> = vec![Vec::new(); clients.len()];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = tokio::time::Instant::now();
    while last.elapsed() < QUIET {
        assert!(tokio::time::Instant::now() < deadline, "the group never settled");
        for (i, c) in clients.iter_mut().enumerate() {
            let got = c.poll(Duration::from_millis(30)).await.unwrap();
            if !got.is_empty() {
                last = tokio::time::Instant::now();
                seen[i].extend(got);
            }
        }
    }
    seen
}

/// Aynur creates the group and adds Bilal and Chodron, who do not know each other: the
/// group introduces them. Each saves files in its own downloads folder.
async fn three_members(relay: &TestRelay, root: &Path) -> Vec<Client> {
    let mut c: Vec<Client> = NAMES.iter().map(|n| new_client(&root.join(n), &relay.address, n)).collect();
    for i in 1..3 {
        let (a, rest) = c.split_at_mut(1);
        introduce(&mut a[0], &mut rest[i - 1], NAMES[i], NAMES[0]).await;
    }
    for (i, client) in c.iter_mut().enumerate() {
        client.subscribe_all().await.unwrap();
        client.set_file_settings(FileSettings::new(downloads(root, i)));
    }
    c[0].group_create(GROUP).unwrap();
    c[0].group_add(GROUP, NAMES[1]).await.unwrap();
    c[0].group_add(GROUP, NAMES[2]).await.unwrap();
    let seen = settle(&mut c).await;
    for i in 1..3 {
        assert!(
            seen[i].iter().any(|n| matches!(n, Notice::Group { event: GroupEvent::AddedYou { .. }, .. })),
            "{}: {:?}",
            NAMES[i],
            seen[i]
        );
        assert!(c[i].group_members(GROUP).unwrap().iter().all(|m| m.connected), "{} not introduced", NAMES[i]);
    }
    c
}

fn downloads(root: &Path, i: usize) -> PathBuf {
    root.join(format!("saved-{}", NAMES[i]))
}

/// Polls every client until each of `who` has a final notice (saved or failed) for a
/// group file; returns them.
async fn group_files_at(clients: &mut [Client], who: &[usize]) -> Vec<Notice> {
    let mut found: Vec<Option<Notice>> = vec![None; clients.len()];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while who.iter().any(|i| found[*i].is_none()) {
        assert!(tokio::time::Instant::now() < deadline, "no file arrived in time: {found:?}");
        for (i, c) in clients.iter_mut().enumerate() {
            for n in c.poll(Duration::from_millis(30)).await.unwrap() {
                if let Notice::GroupFile { state: FileState::Saved(_) | FileState::Failed(_), .. } = &n {
                    assert!(who.contains(&i), "{} got a file it should not: {n:?}", NAMES[i]);
                    assert!(found[i].replace(n).is_none(), "{} got one file twice", NAMES[i]);
                }
            }
        }
    }
    who.iter().map(|i| found[*i].take().unwrap()).collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A file of `size` pseudo-random bytes; returns its SHA-256.
fn make_file(path: &Path, size: usize, seed: u32) -> [u8; 32] {
    let data: Vec<u8> =
        (0..size as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(path, &data).unwrap();
    sha256(&data)
}

/// The keys of every blob record the relay holds.
fn blob_keys(relay: &TestRelay) -> BTreeSet<Vec<u8>> {
    relay.store.kv().scan(b"B", b"C", usize::MAX).unwrap().into_iter().map(|(k, _)| k.to_vec()).collect()
}

#[test]
fn a_member_sends_files_of_0_b_1_b_and_1_mib_and_every_other_member_saves_them() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut c = three_members(&relay, tmp.path()).await;
        let cases = [(0, "empty"), (1, "照片.jpg"), (1 << 20, "ئۇيغۇرچە ھۆججەت.pdf")];
        for (k, (size, name)) in cases.into_iter().enumerate() {
            let path = tmp.path().join(name);
            let digest = make_file(&path, size, k as u32);
            let before = blob_keys(&relay);
            let r = c[1].group_send_file(GROUP, &path, &NoProgress).await.unwrap();
            assert_eq!((r.copies, r.waiting, r.not_kept), (2, 0, 0));
            // Uploaded once, whatever the number of members.
            assert_eq!(blob_keys(&relay).difference(&before).count(), 1, "{name}: one blob");
            for (n, i) in group_files_at(&mut c, &[0, 2]).await.into_iter().zip([0, 2]) {
                let Notice::GroupFile { group, from, file_name, size: got, state: FileState::Saved(out) } = n else {
                    panic!("{}: {n:?}", NAMES[i])
                };
                assert_eq!(
                    (group.as_str(), from.as_str(), file_name.as_str(), got),
                    (GROUP, "Bilal", name, size as u64)
                );
                assert_eq!(out, downloads(tmp.path(), i).join(name), "saved under its own name");
                assert_eq!(sha256(&std::fs::read(&out).unwrap()), digest, "{}: {name} differs", NAMES[i]);
            }
        }
        // Only the saved files are in the downloads folders: no temporary file left behind.
        for i in [0, 2] {
            assert_eq!(files_under(&downloads(tmp.path(), i)).len(), cases.len());
        }
        assert!(files_under(&downloads(tmp.path(), 1)).is_empty(), "the sender downloads nothing");
        // The group's history shows the files on every side.
        for i in [0, 2] {
            let h = c[i].group_history(GROUP).unwrap();
            let notes: Vec<String> = h.iter().filter_map(|e| e.file_note.clone()).collect();
            let want =
                format!("[file] 照片.jpg (1 B) saved to {}", downloads(tmp.path(), i).join("照片.jpg").display());
            assert!(notes.contains(&want), "{}: {notes:?}", NAMES[i]);
            assert!(h.iter().all(|e| !e.outgoing && e.from == "Bilal"), "{}", NAMES[i]);
            assert_eq!(h.len(), 3);
        }
        let h = c[1].group_history(GROUP).unwrap();
        let notes: Vec<Option<String>> = h.iter().map(|e| e.file_note.clone()).collect();
        assert_eq!(
            notes,
            ["[file] empty (0 B)", "[file] 照片.jpg (1 B)", "[file] ئۇيغۇرچە ھۆججەت.pdf (1.0 MiB)"]
                .map(|s| Some(s.to_string()))
        );
        assert!(h.iter().all(|e| e.outgoing));
        relay.stop().await;
    });
}

#[test]
fn a_tampered_group_file_is_refused_by_every_member_and_nothing_is_saved() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut c = three_members(&relay, tmp.path()).await;
        let path = tmp.path().join("evidence.mp4");
        make_file(&path, 5 * SEGMENT_PLAIN, 3);
        // Chodron accepts files of at most 1000 bytes: refused without a download.
        let mut small = FileSettings::new(downloads(tmp.path(), 2));
        small.max_file_size = 1000;
        c[2].set_file_settings(small);
        let before = blob_keys(&relay);
        c[1].group_send_file(GROUP, &path, &NoProgress).await.unwrap();
        let new: Vec<Vec<u8>> = blob_keys(&relay).difference(&before).cloned().collect();
        assert_eq!(new.len(), 1);
        // The relay (or someone with its disk) flips one byte of the file's third chunk
        // before anyone fetches it. A blob is filed under `B` + its write id, its chunks
        // under `C` + write id + index.
        let key = [b"C".as_slice(), &new[0][1..], &2u64.to_be_bytes()].concat();
        let mut value = relay.store.kv().get(&key).unwrap().expect("the third chunk");
        value[1000] ^= 0x40;
        relay.store.kv().apply(vec![(key, Some(value))]).unwrap();
        let got = group_files_at(&mut c, &[0, 2]).await;
        for (n, (i, words)) in got.into_iter().zip([(0, "altered"), (2, "too large")]) {
            let Notice::GroupFile { group, from, file_name, state: FileState::Failed(reason), .. } = n else {
                panic!("{}: {n:?}", NAMES[i])
            };
            assert_eq!((group.as_str(), from.as_str(), file_name.as_str()), (GROUP, "Bilal", "evidence.mp4"));
            assert!(reason.contains(words), "{}: {reason}", NAMES[i]);
            let dir = downloads(tmp.path(), i);
            assert!(
                files_under(&dir).is_empty(),
                "{}: nothing half-written is kept: {:?}",
                NAMES[i],
                files_under(&dir)
            );
            let note = c[i].group_history(GROUP).unwrap().last().unwrap().file_note.clone().unwrap();
            assert!(note.starts_with("[file] evidence.mp4 (79.3 KiB) — ") && note.contains(words), "{note}");
        }
        // Nothing stays pending: polling again brings no retry and no file.
        let later = settle(&mut c).await;
        assert!(later.iter().flatten().all(|n| !matches!(n, Notice::GroupFile { .. })), "{later:?}");
        for client in &mut c {
            assert!(!client.downloads_busy());
        }
        relay.stop().await;
    });
}

#[test]
fn a_copy_for_a_member_whose_relay_is_down_waits_in_the_outbox_and_arrives_later() {
    run(async {
        // Aynur and Bilal live on relay A; Chodron on relay B, so the copies for him go
        // to B. The file itself goes to the sender's relay, A.
        let relay = TestRelay::start().await;
        let relays_b = Restartable::new();
        let relay_b = relays_b.start(0).await;
        let port_b = relay_b.address.port;
        let tmp = tempfile::tempdir().unwrap();
        let home = [&relay.address, &relay.address, &relay_b.address];
        let mut c: Vec<Client> = NAMES.iter().zip(home).map(|(n, r)| new_client(&tmp.path().join(n), r, n)).collect();
        for i in 1..3 {
            let (a, rest) = c.split_at_mut(1);
            introduce(&mut a[0], &mut rest[i - 1], NAMES[i], NAMES[0]).await;
        }
        for (i, client) in c.iter_mut().enumerate() {
            client.subscribe_all().await.unwrap();
            client.set_file_settings(FileSettings::new(downloads(tmp.path(), i)));
        }
        c[0].group_create(GROUP).unwrap();
        c[0].group_add(GROUP, NAMES[1]).await.unwrap();
        c[0].group_add(GROUP, NAMES[2]).await.unwrap();
        settle(&mut c).await;
        assert!(c[1].group_members(GROUP).unwrap().iter().all(|m| m.connected));

        relay_b.stop().await;
        let path = tmp.path().join("minutes.txt");
        let digest = make_file(&path, 70_000, 9);
        let err = c[1].group_send_file(GROUP, &path, &NoProgress).await.unwrap_err();
        assert!(matches!(err, AppError::Queued(_)), "{err}");
        // Aynur, on the relay that is up, has it already.
        let got = group_files_at(&mut c[..2], &[0]).await;
        let Notice::GroupFile { state: FileState::Saved(out), .. } = &got[0] else { panic!("{got:?}") };
        assert_eq!(sha256(&std::fs::read(out).unwrap()), digest);

        // Relay B comes back: the next command that reaches it sends the waiting copy
        // (the same ciphertext, stored with the ratchet state), and Chodron saves the file.
        let relay_b = relays_b.start(port_b).await;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while c[1].flush_outbox().await.unwrap().last_error.is_some() {
            assert!(tokio::time::Instant::now() < deadline, "relay B never took the copy");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let got = group_files_at(&mut c, &[2]).await;
        let Notice::GroupFile { from, state: FileState::Saved(out), .. } = &got[0] else { panic!("{got:?}") };
        assert_eq!(from, "Bilal");
        assert_eq!(sha256(&std::fs::read(out).unwrap()), digest);
        relay_b.stop().await;
        relay.stop().await;
    });
}
