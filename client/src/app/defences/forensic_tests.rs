//! Seized device, after a disappearing message expired: the raw files of both profiles are
//! read as an examiner would, holding the passphrase. The message's ciphertext is still in
//! sled's files (sled keeps deleted records), but the epoch key that sealed it is in neither
//! copy of the keyring, and no key the profile still holds opens it; its text is nowhere.
//! Then duress: the old wrapped key and every old sealed record are gone from the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sotto_proto::RelayAddress;
use sotto_server::store::{MemoryKv, MemoryStore};
use sotto_server::tls::Identity;
use sotto_server::{Limits, RelayConfig};

use crate::app::{Client, Notice, profile};
use crate::relay::ConnectOptions;
use crate::store::epochs::{self, parse_header};
use crate::store::{EncryptedStore, KdfParams, Table};

const PASS: &[u8] = b"the real passphrase";
const MARKER: &[u8] = b"VANISHING-7f3a";

async fn relay() -> RelayAddress {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let identity = Identity::generate("localhost").unwrap();
    let address = format!("sotto://127.0.0.1:{port}#{}", identity.pin()).parse().unwrap();
    let config = RelayConfig { limits: Limits::default(), ..RelayConfig::new(identity) };
    let store = Arc::new(MemoryStore::new(MemoryKv::new()));
    tokio::spawn(async move {
        let _ = sotto_server::run(listener, config, store, std::future::pending::<()>()).await;
    });
    address
}

async fn until(c: &mut Client, want: impl Fn(&Notice) -> bool) {
    for _ in 0..200 {
        if c.poll(Duration::from_millis(100)).await.unwrap().iter().any(&want) {
            return;
        }
    }
    panic!("timed out");
}

fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.file_name().is_some_and(|n| n != "control.sock") {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn found(dir: &Path, needle: &[u8]) -> bool {
    files(dir).iter().any(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
}

/// Every expiring message record of `store`, as sled holds it: (key, sealed bytes).
fn expiring_records(store: &EncryptedStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .raw_db()
        .scan_prefix([Table::Messages.tag()])
        .map(|item| {
            let (k, v) = item.unwrap();
            (k[1..].to_vec(), v.to_vec())
        })
        .filter(|(k, v)| {
            let opened = store.open_raw_for_tests(Table::Messages, k, v).unwrap();
            crate::app::defences::expiry::sealed_body(&opened).is_some()
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn an_expired_message_cannot_be_decrypted_even_with_the_passphrase() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let address = relay().await;
            let tmp = tempfile::tempdir().unwrap();
            let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
            let params = KdfParams::insecure_for_tests();
            let mut alice = Client::init(&a_dir, PASS, &address, params, ConnectOptions::default()).unwrap();
            let mut bob = Client::init(&b_dir, PASS, &address, params, ConnectOptions::default()).unwrap();
            let link = alice.create_invite(Some("Bob"), None).await.unwrap();
            bob.accept_invite(&link, "Alice").await.unwrap();
            alice.subscribe_all().await.unwrap();
            until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await;
            bob.subscribe_all().await.unwrap();
            until(&mut bob, |n| matches!(n, Notice::Ready { .. })).await;

            alice.set_timer("Bob", 3600).await.unwrap();
            until(&mut bob, |n| matches!(n, Notice::TimerChanged { .. })).await;
            let text = format!("{} meet at the river", String::from_utf8_lossy(MARKER));
            alice.send_text("Bob", &text).await.unwrap();
            until(&mut bob, |n| matches!(n, Notice::Message { .. })).await;

            for (mut client, dir) in [(alice, a_dir), (bob, b_dir)] {
                let before = expiring_records(&client.profile.store);
                assert_eq!(before.len(), 1, "one expiring message on each side");
                let (key, sealed) = before[0].clone();
                let opened = client.profile.store.open_raw_for_tests(Table::Messages, &key, &sealed).unwrap();
                let blob = crate::app::defences::expiry::sealed_body(&opened).unwrap();
                let bucket = parse_header(&blob).unwrap();
                assert!(client.profile.store.live_epochs().unwrap().contains(&bucket));

                client.clock().advance(Duration::from_secs(2 * 3600));
                client.tick().await.unwrap();
                let c = profile::contacts(&client.profile.store.txn()).unwrap().remove(0);
                assert!(client.history(&c.name).unwrap().is_empty(), "the message outlived its timer");
                assert!(!client.profile.store.live_epochs().unwrap().contains(&bucket), "its key outlived it");
                drop(client);

                // The examiner: the text is nowhere in the raw files, but the record's
                // ciphertext is (sled keeps what was deleted).
                assert!(!found(&dir, MARKER), "plaintext in {}", dir.display());
                assert!(found(&dir, &sealed), "sled no longer holds the deleted record: the test proves less");
                // With the passphrase: the outer seal opens, the inner does not, whatever key.
                let store = EncryptedStore::open(&dir, PASS).unwrap();
                let opened = store.open_raw_for_tests(Table::Messages, &key, &sealed).unwrap();
                let blob = crate::app::defences::expiry::sealed_body(&opened).unwrap();
                assert_eq!(store.open_until(&crate::app::defences::expiry::aad(&key), &blob).unwrap(), None);
                let aad = crate::app::defences::expiry::aad(&key);
                for k in store.all_keys_for_tests() {
                    assert!(!epochs::opens_with(&k, &aad, &blob), "a key the profile holds opens the expired message");
                }
                let copies = store.keyring_copies_for_tests();
                assert_eq!(copies.len(), 2);
                for copy in copies {
                    let copy = copy.expect("both copies of the keyring open with the passphrase");
                    assert!(!copy.contains(&bucket), "a copy of the keyring still holds the dead key");
                }
            }
        })
        .await;
}

#[tokio::test(flavor = "current_thread")]
async fn after_duress_nothing_old_opens_with_either_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let relay: RelayAddress = "sotto://relay.example:443".parse().unwrap();
    let mut p = crate::app::profile::Profile::create(&dir, PASS, &relay, KdfParams::insecure_for_tests()).unwrap();
    let mut txn = p.store.txn();
    txn.put(Table::Messages, b"m", MARKER);
    txn.commit().unwrap();
    p.store.set_duress(b"duress words", &relay.to_string()).unwrap();
    assert!(matches!(p.store.set_duress(PASS, &relay.to_string()), Err(crate::store::StoreError::DuressIsPassphrase)));
    let old_values: Vec<Vec<u8>> = p.store.raw_db().iter().map(|i| i.unwrap().1.to_vec()).collect();
    let old_keys = p.store.all_keys_for_tests();
    p.store.flush().unwrap();
    drop(p);
    let header = std::fs::read(dir.join(crate::store::HEADER_FILE)).unwrap();
    let wrapped_master = header[62..110].to_vec();
    let old_header = header.clone();

    let mut fresh = crate::app::profile::Profile::open(&dir, b"duress words").unwrap();
    {
        let txn = fresh.store.txn();
        assert!(profile::contacts(&txn).unwrap().is_empty());
        assert_eq!(txn.get(Table::Messages, b"m").unwrap(), None);
        assert_eq!(profile::settings(&txn).unwrap().relay, relay.to_string());
    }
    assert_ne!(fresh.store.all_keys_for_tests()[0], old_keys[0]);
    fresh.store.flush().unwrap();
    drop(fresh);

    // The real passphrase opens nothing; the duress one opens only the new, empty profile.
    assert!(matches!(
        crate::app::profile::Profile::open(&dir, PASS),
        Err(crate::app::AppError::Store(crate::store::StoreError::WrongPassphrase))
    ));
    assert!(!found(&dir, &wrapped_master), "the old wrapped master key is still on disk");
    assert!(!found(&dir, &old_header[22..]), "the old header is still on disk");
    for v in old_values.iter().filter(|v| v.len() > 40) {
        assert!(!found(&dir, v), "an old sealed record is still in the directory");
    }
    for k in &old_keys {
        assert!(!found(&dir, k));
    }
    // Same files as a fresh profile, same sizes for the header and the keyring.
    let names = |d: &Path| {
        let mut n: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    };
    let other = tmp.path().join("fresh");
    drop(crate::app::profile::Profile::create(&other, b"x", &relay, KdfParams::insecure_for_tests()).unwrap());
    assert_eq!(names(&dir), names(&other));
    for f in [crate::store::HEADER_FILE, crate::store::KEYRING_FILE] {
        assert_eq!(std::fs::metadata(dir.join(f)).unwrap().len(), std::fs::metadata(other.join(f)).unwrap().len());
    }
}
