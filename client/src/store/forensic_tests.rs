//! Forensic test: after a real conversation, no byte of any file in either profile directory
//! holds a contact name, a message text, the master key, a derived key or an identity
//! private key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::signal::tests::{addr, new_profile, open, publish, receive, send};
use super::signal::{KyberKind, local_identity};
use super::{EncryptedStore, HEADER_FILE, Table};

const MARKER: &[u8] = b"MARKER";
const CONTACT: &[u8] = b"Gulnara-MARKER";
const TEXT: &[u8] = b"secret text MARKER";

/// Every file under `dir`, recursively, as (path, bytes).
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_absent(dir: &Path, needles: &[(&str, Vec<u8>)]) {
    let files = all_files(dir);
    assert!(files.iter().any(|(_, b)| b.len() > 1000), "nothing was written?");
    for (path, bytes) in &files {
        for (what, needle) in needles {
            assert!(!contains(bytes, needle), "{what} found in {}", path.display());
        }
    }
}

/// Writes the app-level records the way the client will: name-derived keys are index hashes.
fn write_contact_and_message(store: &mut EncryptedStore) {
    let mut txn = store.txn();
    let contact_key = txn.index_key(Table::Contacts, CONTACT);
    txn.put(Table::Contacts, &contact_key, CONTACT);
    let conv_key = txn.index_key(Table::Conversations, CONTACT);
    txn.put(Table::Conversations, &conv_key, b"conversation with Gulnara-MARKER");
    txn.put(Table::Messages, b"msg-0001", TEXT);
    txn.commit().unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn profile_files_hold_no_marker_and_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    // Each side names the other by the contact name itself, the worst case for a leak.
    let gulnara = addr("Gulnara-MARKER");
    let bob_addr = addr("Bob-MARKER");

    let bundle = publish(&bob, KyberKind::OneTime);
    let w = send(&alice, &bob_addr, Some(&bundle), TEXT).await.unwrap();
    assert_eq!(receive(&bob, &gulnara, &w).await.unwrap(), TEXT);
    for _ in 0..3 {
        let w = send(&bob, &gulnara, None, TEXT).await.unwrap();
        assert_eq!(receive(&alice, &bob_addr, &w).await.unwrap(), TEXT);
        let w = send(&alice, &bob_addr, None, TEXT).await.unwrap();
        assert_eq!(receive(&bob, &gulnara, &w).await.unwrap(), TEXT);
    }

    for dir in [&alice, &bob] {
        let mut store = open(dir);
        write_contact_and_message(&mut store);
        // Deletions and overwrites leave old versions in sled's log; those must be sealed too.
        let mut txn = store.txn();
        txn.put(Table::Messages, b"msg-0001", b"edited");
        txn.remove(Table::Contacts, &store_index(&txn));
        txn.commit().unwrap();

        let mut needles: Vec<(&str, Vec<u8>)> =
            vec![("marker", MARKER.to_vec()), ("contact name", CONTACT.to_vec()), ("message text", TEXT.to_vec())];
        for (i, key) in store.secrets_for_tests().into_iter().enumerate() {
            let what = ["master key", "seal key", "index key"][i];
            needles.push((what, key));
        }
        {
            let txn = store.txn();
            let identity = local_identity(&txn).unwrap();
            needles.push(("identity private key", identity.private_key().serialize().to_vec()));
        }
        store.flush().unwrap();
        drop(store);
        assert_absent(dir, &needles);

        // The scan reads real files: the header's magic is where it should be.
        let header = std::fs::read(dir.join(HEADER_FILE)).unwrap();
        assert!(contains(&header, b"SOTTOHDR"));
    }
}

fn store_index(txn: &super::Txn<'_>) -> [u8; 32] {
    txn.index_key(Table::Contacts, CONTACT)
}
