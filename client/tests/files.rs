//! Files end to end: a real relay over TLS on loopback, real profiles, real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use sha2::{Digest, Sha256};
use sotto_client::app::{Client, Notice};
use sotto_client::files::format::{SEGMENT_CIPHER, SEGMENT_PLAIN, blob_len};
use sotto_client::files::{FileSettings, NoProgress, Progress};
use sotto_server::store::kv::Kv;
use tokio::sync::watch;

const MIB: usize = 1 << 20;
/// Longest a transfer in these tests may take (200 MiB in a debug build).
const TRANSFER_DEADLINE: Duration = Duration::from_secs(180);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(tokio::task::LocalSet::new().run_until(f))
}

/// A file of `size` pseudo-random bytes (xorshift from `seed`), written in 1 MiB steps.
fn make_file(path: &Path, size: usize, seed: u64) -> [u8; 32] {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut hash = Sha256::new();
    let mut left = size;
    let mut block = vec![0u8; MIB];
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(MIB);
        f.write_all(&block[..n]).unwrap();
        hash.update(&block[..n]);
        left -= n;
    }
    f.flush().unwrap();
    hash.finalize().into()
}

fn sha256_of(path: &Path) -> [u8; 32] {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().into()
}

/// Polls until a file notice arrives; returns it.
async fn file_notice(client: &mut Client) -> Notice {
    let deadline = tokio::time::Instant::now() + TRANSFER_DEADLINE;
    while tokio::time::Instant::now() < deadline {
        for n in client.poll(Duration::from_millis(100)).await.unwrap() {
            if matches!(n, Notice::FileSaved { .. } | Notice::FileFailed { .. }) {
                return n;
            }
        }
    }
    panic!("no file arrived in time");
}

fn downloads_of(client: &mut Client, dir: &Path) {
    client.set_file_settings(FileSettings::new(dir.to_path_buf()));
}

/// Progress that records where each start began and signals once past a fraction.
#[derive(Clone)]
struct Watch {
    starts: Arc<Mutex<Vec<u64>>>,
    passed: watch::Sender<bool>,
    at: u64,
}

impl Watch {
    fn new(at: u64) -> (Self, watch::Receiver<bool>) {
        let (passed, rx) = watch::channel(false);
        (Self { starts: Arc::default(), passed, at }, rx)
    }
}

impl Progress for Watch {
    fn start(&self, _total: u64, done: u64) {
        self.starts.lock().unwrap().push(done);
    }
    fn set(&self, done: u64) {
        if done >= self.at {
            self.passed.send_replace(true);
        }
    }
    fn finish(&self) {}
}

#[test]
fn files_of_0_b_1_b_1_mib_and_200_mib_arrive_identical_under_their_names() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let saved = tmp.path().join("saved");
        downloads_of(&mut p.bob, &saved);
        let cases = [(0, "empty"), (1, "照片.jpg"), (MIB, "ئۇيغۇرچە ھۆججەت.pdf"), (200 * MIB, "བོད་ཡིག.bin")];
        for (i, (size, name)) in cases.into_iter().enumerate() {
            let path = tmp.path().join(name);
            let digest = make_file(&path, size, i as u64 + 7);
            p.alice.send_file("Bob", &path, &NoProgress).await.unwrap();
            let n = file_notice(&mut p.bob).await;
            let Notice::FileSaved { from, file_name, size: got, path: out } = n else { panic!("{n:?}") };
            assert_eq!((from.as_str(), file_name.as_str(), got), ("Alice", name, size as u64));
            assert_eq!(out, saved.join(name), "saved under its own name, byte-exact");
            assert_eq!(sha256_of(&out), digest, "{name}: contents differ");
        }
        // Nothing else in the downloads folder: no temporary file left behind.
        assert_eq!(files_under(&saved).len(), cases.len());
        // Histories on both sides name the files.
        let bob_side: Vec<String> = p.bob.history("Alice").unwrap().iter().map(|m| m.text.clone()).collect();
        assert!(bob_side.iter().any(|t| t.starts_with("[file] 照片.jpg (1 B) saved to")), "{bob_side:?}");
        let alice_side: Vec<String> = p.alice.history("Bob").unwrap().iter().map(|m| m.text.clone()).collect();
        assert!(alice_side.contains(&"[file] བོད་ཡིག.bin (200.0 MiB)".to_string()), "{alice_side:?}");
        // A second file with a taken name gets a suffix, never replacing the first.
        let again = tmp.path().join("dir").join("照片.jpg");
        std::fs::create_dir_all(again.parent().unwrap()).unwrap();
        let digest = make_file(&again, 3, 99);
        p.alice.send_file("Bob", &again, &NoProgress).await.unwrap();
        let Notice::FileSaved { path, .. } = file_notice(&mut p.bob).await else { panic!() };
        assert_eq!(path, saved.join("照片 (2).jpg"));
        assert_eq!(sha256_of(&path), digest);
        relay.stop().await;
    });
}

#[test]
fn upload_and_download_resume_after_the_relay_restarts_mid_transfer() {
    run(async {
        let relays = Restartable::new();
        let relay = relays.start(0).await;
        let port = relay.address.port;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let size = 24 * MIB;
        let path = tmp.path().join("report.pdf");
        let digest = make_file(&path, size, 3);
        // The invite that made the pair left one blob (its sealed invite).
        let before = blob_keys(&relay);

        // Upload: the relay goes down once a third is stored, and comes back.
        let (up, mut passed) = Watch::new(size as u64 / 3);
        let restart = async {
            passed.wait_for(|p| *p).await.unwrap();
            relay.stop().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            relays.start(port).await
        };
        let (sent, relay) = tokio::join!(p.alice.send_file("Bob", &path, &up), restart);
        sent.unwrap();
        // One blob more: the upload went on where it stopped instead of starting again.
        assert_eq!(blob_keys(&relay).difference(&before).count(), 1);

        // Download: the relay goes down once a third has arrived, and comes back.
        let saved = tmp.path().join("saved");
        let (down, mut passed) = Watch::new(size as u64 / 3);
        let mut settings = FileSettings::new(saved.clone());
        let factory = down.clone();
        settings.progress = Some(Arc::new(move |_: &str, _: u64| Box::new(factory.clone()) as Box<dyn Progress>));
        p.bob.set_file_settings(settings);
        let restart = async {
            passed.wait_for(|p| *p).await.unwrap();
            relay.stop().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            relays.start(port).await
        };
        let (n, relay) = tokio::join!(file_notice(&mut p.bob), restart);
        let Notice::FileSaved { path: out, .. } = n else { panic!("{n:?}") };
        assert_eq!(sha256_of(&out), digest);
        let starts = down.starts.lock().unwrap().clone();
        assert!(starts.len() >= 2 && starts[0] == 0, "{starts:?}");
        assert!(
            starts[1..].iter().any(|d| *d >= size as u64 / 3 - SEGMENT_PLAIN as u64),
            "resumed by offset: {starts:?}"
        );
        relay.stop().await;
    });
}

#[test]
fn a_download_left_pending_by_a_stopped_program_resumes_when_it_starts_again() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let Pair { mut alice, mut bob, bob_dir, .. } = pair(&relay.address, tmp.path()).await;
        let size = 16 * MIB;
        let path = tmp.path().join("video.mp4");
        let digest = make_file(&path, size, 5);
        alice.send_file("Bob", &path, &NoProgress).await.unwrap();
        let saved = tmp.path().join("saved");
        let (w, mut passed) = Watch::new(size as u64 / 4);
        let mut settings = FileSettings::new(saved.clone());
        let factory = w.clone();
        settings.progress = Some(Arc::new(move |_: &str, _: u64| Box::new(factory.clone()) as Box<dyn Progress>));
        bob.set_file_settings(settings.clone());
        // Bob's program stops a quarter of the way in.
        tokio::select! {
            n = file_notice(&mut bob) => panic!("finished too soon: {n:?}"),
            _ = passed.wait_for(|p| *p) => {}
        }
        drop(bob);
        assert!(
            files_under(&saved).iter().all(|f| f
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".sotto-download-"))
        );
        let mut bob = reopen(&bob_dir);
        bob.set_file_settings(settings);
        bob.subscribe_all().await.unwrap();
        let Notice::FileSaved { path: out, .. } = file_notice(&mut bob).await else { panic!() };
        assert_eq!(sha256_of(&out), digest);
        assert!(w.starts.lock().unwrap().iter().skip(1).any(|d| *d > 0), "resumed from its temporary file");
        assert_eq!(files_under(&saved), vec![out]);
        relay.stop().await;
    });
}

/// Every chunk record of every blob in the relay's store, in key order.
fn chunk_records(relay: &TestRelay) -> Vec<(Vec<u8>, Vec<u8>)> {
    relay.store.kv().scan(b"C", b"D", usize::MAX).unwrap()
}

#[test]
fn a_tampered_chunk_is_refused_and_nothing_is_saved() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let saved = tmp.path().join("saved");
        downloads_of(&mut p.bob, &saved);
        let path = tmp.path().join("photo.jpg");
        make_file(&path, 5 * SEGMENT_PLAIN, 11);
        p.alice.send_file("Bob", &path, &NoProgress).await.unwrap();
        // The relay (or someone with its disk) flips one byte of the third chunk.
        let (key, mut value) = chunk_records(&relay).swap_remove(2);
        value[1000] ^= 0x40;
        relay.store.kv().apply(vec![(key, Some(value))]).unwrap();
        let n = file_notice(&mut p.bob).await;
        let Notice::FileFailed { from, file_name, reason } = n else { panic!("{n:?}") };
        assert_eq!((from.as_str(), file_name.as_str()), ("Alice", "photo.jpg"));
        assert!(reason.contains("altered"), "{reason}");
        assert!(files_under(&saved).is_empty(), "nothing half-written is kept: {:?}", files_under(&saved));
        let last = p.bob.history("Alice").unwrap().last().unwrap().text.clone();
        assert!(last.starts_with("[file] photo.jpg") && last.contains("altered"), "{last}");
        relay.stop().await;
    });
}

#[test]
fn a_blob_cut_short_is_detected_and_nothing_is_saved() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let saved = tmp.path().join("saved");
        downloads_of(&mut p.bob, &saved);
        let size = 5 * SEGMENT_PLAIN as u64;
        let path = tmp.path().join("notes.txt");
        make_file(&path, size as usize, 13);
        let before = blob_keys(&relay);
        p.alice.send_file("Bob", &path, &NoProgress).await.unwrap();
        // The relay keeps the blob one chunk shorter, consistently: its record says so
        // and the last chunk is gone.
        let blobs = relay.store.kv().scan(b"B", b"C", usize::MAX).unwrap();
        let (bkey, mut record) = blobs.into_iter().find(|(k, _)| !before.contains(k)).unwrap();
        let shorter = blob_len(size) - SEGMENT_CIPHER as u64;
        record[24..32].copy_from_slice(&shorter.to_be_bytes());
        record[32..40].copy_from_slice(&shorter.to_be_bytes());
        let last = chunk_records(&relay).pop().unwrap().0;
        relay.store.kv().apply(vec![(bkey, Some(record)), (last, None)]).unwrap();
        let n = file_notice(&mut p.bob).await;
        let Notice::FileFailed { reason, .. } = n else { panic!("{n:?}") };
        assert!(reason.contains("incomplete"), "{reason}");
        assert!(files_under(&saved).is_empty());
        relay.stop().await;
    });
}

#[test]
fn a_file_over_the_limit_is_refused_before_anything_is_uploaded() {
    run(async {
        let relay = TestRelay::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let mut p = pair(&relay.address, tmp.path()).await;
        let mut s = FileSettings::new(tmp.path().join("saved"));
        s.max_file_size = 1000;
        p.alice.set_file_settings(s);
        let path = tmp.path().join("big");
        make_file(&path, 1001, 1);
        let before = blob_keys(&relay);
        let err = p.alice.send_file("Bob", &path, &NoProgress).await.unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(blob_keys(&relay), before, "nothing was uploaded");
        let err = p.alice.send_file("Nobody", &path, &NoProgress).await.unwrap_err();
        assert!(err.to_string().contains("no contact"), "{err}");
        relay.stop().await;
    });
}

/// The keys of every blob record the relay holds (the pair's invite left one).
fn blob_keys(relay: &TestRelay) -> std::collections::BTreeSet<Vec<u8>> {
    relay.store.kv().scan(b"B", b"C", usize::MAX).unwrap().into_iter().map(|(k, _)| k.to_vec()).collect()
}
