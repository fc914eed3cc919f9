//! Tests of the encrypted KV store against real sled databases in temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn params() -> KdfParams {
    KdfParams::insecure_for_tests()
}

/// Every file under `dir` with its bytes, to prove that an operation changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn create_open_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    {
        let mut s = EncryptedStore::create(&dir, b"correct horse", params()).unwrap();
        let mut t = s.txn();
        t.put(Table::Meta, b"greeting", b"hello");
        t.put(Table::Messages, b"m1", b"first");
        t.commit().unwrap();
    }
    let s = EncryptedStore::open(&dir, b"correct horse").unwrap();
    assert_eq!(s.kdf_params(), params());
    assert_eq!(&**s.get(Table::Meta, b"greeting").unwrap().unwrap(), b"hello");
    assert_eq!(&**s.get(Table::Messages, b"m1").unwrap().unwrap(), b"first");
    // Same key, other table: a different record.
    assert!(s.get(Table::Contacts, b"m1").unwrap().is_none());
}

#[test]
fn create_refuses_existing_profile_and_open_refuses_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    drop(EncryptedStore::create(&dir, b"pw", params()).unwrap());
    let before = snapshot(&dir);
    assert!(matches!(EncryptedStore::create(&dir, b"other", params()), Err(StoreError::AlreadyExists(_))));
    assert_eq!(snapshot(&dir), before);
    assert!(matches!(EncryptedStore::open(tmp.path().join("nothing"), b"pw"), Err(StoreError::NoProfile(_))));
}

#[test]
fn wrong_passphrase_is_typed_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    {
        let mut s = EncryptedStore::create(&dir, b"right", params()).unwrap();
        let mut t = s.txn();
        t.put(Table::Contacts, b"k", b"v");
        t.commit().unwrap();
    }
    let before = snapshot(&dir);
    assert!(matches!(EncryptedStore::open(&dir, b"wrong"), Err(StoreError::WrongPassphrase)));
    assert!(matches!(EncryptedStore::open(&dir, b""), Err(StoreError::WrongPassphrase)));
    assert_eq!(snapshot(&dir), before, "a failed open must not touch the disk");
    let s = EncryptedStore::open(&dir, b"right").unwrap();
    assert_eq!(&**s.get(Table::Contacts, b"k").unwrap().unwrap(), b"v");
}

#[test]
fn corrupt_header_is_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    drop(EncryptedStore::create(&dir, b"pw", params()).unwrap());
    std::fs::write(dir.join(header::HEADER_FILE), b"garbage").unwrap();
    assert!(matches!(EncryptedStore::open(&dir, b"pw"), Err(StoreError::CorruptHeader(_))));
}

#[test]
fn change_passphrase_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    {
        let mut s = EncryptedStore::create(&dir, b"old", params()).unwrap();
        let mut t = s.txn();
        t.put(Table::Meta, b"x", b"y");
        t.commit().unwrap();
        s.change_passphrase(b"new", params()).unwrap();
    }
    assert!(matches!(EncryptedStore::open(&dir, b"old"), Err(StoreError::WrongPassphrase)));
    let s = EncryptedStore::open(&dir, b"new").unwrap();
    assert_eq!(&**s.get(Table::Meta, b"x").unwrap().unwrap(), b"y");
}

#[test]
fn value_moved_to_another_key_or_table_is_tampered() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = EncryptedStore::create(tmp.path().join("p"), b"pw", params()).unwrap();
    let mut t = s.txn();
    t.put(Table::Contacts, b"alice", b"alice's record");
    t.put(Table::Contacts, b"bob", b"bob's record");
    t.commit().unwrap();

    let raw = s.raw_db();
    let alice_sealed = raw.get(stored_key(Table::Contacts, b"alice")).unwrap().unwrap();
    // Same table, another key.
    raw.insert(stored_key(Table::Contacts, b"bob"), alice_sealed.clone()).unwrap();
    assert!(matches!(s.get(Table::Contacts, b"bob"), Err(StoreError::Tampered { table: Table::Contacts })));
    // Same key, another table.
    raw.insert(stored_key(Table::Messages, b"alice"), alice_sealed).unwrap();
    assert!(matches!(s.get(Table::Messages, b"alice"), Err(StoreError::Tampered { table: Table::Messages })));
    // The original still opens.
    assert_eq!(&**s.get(Table::Contacts, b"alice").unwrap().unwrap(), b"alice's record");
}

#[test]
fn flipped_byte_is_tampered_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = EncryptedStore::create(tmp.path().join("p"), b"pw", params()).unwrap();
    let mut t = s.txn();
    t.put(Table::Messages, b"m", b"secret text");
    t.commit().unwrap();
    let sk = stored_key(Table::Messages, b"m");
    let sealed = s.raw_db().get(&sk).unwrap().unwrap().to_vec();
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        s.raw_db().insert(&sk, bad).unwrap();
        assert!(
            matches!(s.get(Table::Messages, b"m"), Err(StoreError::Tampered { .. })),
            "flip at byte {i} went unnoticed"
        );
    }
    // Truncations, including to nothing, are tampering too, never a panic.
    for len in [0, 1, 10, sealed.len() - 1] {
        s.raw_db().insert(&sk, &sealed[..len]).unwrap();
        assert!(matches!(s.get(Table::Messages, b"m"), Err(StoreError::Tampered { .. })));
    }
    // scan_table reports it as well.
    assert!(s.scan_table(Table::Messages).any(|r| r.is_err()));
}

#[test]
fn txn_reads_its_writes_and_rolls_back_on_drop() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = EncryptedStore::create(tmp.path().join("p"), b"pw", params()).unwrap();
    {
        let mut t = s.txn();
        t.put(Table::Meta, b"a", b"1");
        t.put(Table::Meta, b"b", b"2");
        t.commit().unwrap();
    }
    {
        let mut t = s.txn();
        t.put(Table::Meta, b"a", b"changed");
        t.remove(Table::Meta, b"b");
        t.put(Table::Meta, b"c", b"3");
        assert_eq!(&**t.get(Table::Meta, b"a").unwrap().unwrap(), b"changed");
        assert!(t.get(Table::Meta, b"b").unwrap().is_none());
        assert!(!t.contains(Table::Meta, b"b").unwrap());
        assert!(t.contains(Table::Meta, b"c").unwrap());
        let scanned: Vec<(Vec<u8>, Vec<u8>)> =
            t.scan_table(Table::Meta).unwrap().into_iter().map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(scanned, vec![(b"a".to_vec(), b"changed".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        // Dropped without commit.
    }
    assert_eq!(&**s.get(Table::Meta, b"a").unwrap().unwrap(), b"1");
    assert_eq!(&**s.get(Table::Meta, b"b").unwrap().unwrap(), b"2");
    assert!(s.get(Table::Meta, b"c").unwrap().is_none());
}

#[test]
fn commit_spans_tables_and_scan_is_per_table() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    {
        let mut s = EncryptedStore::create(&dir, b"pw", params()).unwrap();
        let mut t = s.txn();
        t.put(Table::Sessions, b"s", b"session");
        t.put(Table::Messages, b"m1", b"one");
        t.put(Table::Messages, b"m2", b"two");
        t.put(Table::Outbox, b"o", b"ct");
        assert_eq!(t.tables_written(), vec![Table::Sessions, Table::Messages, Table::Outbox]);
        t.commit().unwrap();
    }
    let s = EncryptedStore::open(&dir, b"pw").unwrap();
    let msgs: Vec<_> = s.scan_table(Table::Messages).map(|r| r.map(|(k, v)| (k, v.to_vec())).unwrap()).collect();
    assert_eq!(msgs, vec![(b"m1".to_vec(), b"one".to_vec()), (b"m2".to_vec(), b"two".to_vec())]);
    assert_eq!(s.scan_table(Table::Sessions).count(), 1);
    assert_eq!(s.scan_table(Table::Contacts).count(), 0);
}

#[test]
fn index_key_is_keyed_per_profile_and_table() {
    let tmp = tempfile::tempdir().unwrap();
    let a = EncryptedStore::create(tmp.path().join("a"), b"pw", params()).unwrap();
    let b = EncryptedStore::create(tmp.path().join("b"), b"pw", params()).unwrap();
    let ka = a.index_key(Table::Contacts, b"Gulnara");
    assert_eq!(ka, a.index_key(Table::Contacts, b"Gulnara"));
    assert_ne!(ka, b.index_key(Table::Contacts, b"Gulnara"));
    assert_ne!(ka, a.index_key(Table::Conversations, b"Gulnara"));
}

#[test]
fn opening_an_open_profile_reports_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let _first = EncryptedStore::create(&dir, b"pw", params()).unwrap();
    assert!(matches!(EncryptedStore::open(&dir, b"pw"), Err(StoreError::Locked(_))));
}

#[test]
fn old_versions_of_ratchet_states_die_with_the_day_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    let mut s = EncryptedStore::create(&dir, b"pw", params()).unwrap();
    let mut t = s.txn();
    t.put(Table::Sessions, b"alice", b"ratchet state 1");
    t.put(Table::Meta, b"other", b"not rolled");
    t.commit().unwrap();
    let old = s.raw_db().get([&[Table::Sessions.tag()][..], b"alice"].concat()).unwrap().unwrap().to_vec();
    let mut t = s.txn();
    t.put(Table::Sessions, b"alice", b"ratchet state 2");
    t.commit().unwrap();
    assert_eq!(s.roll().unwrap(), 0, "nothing to roll within the day");
    assert_eq!(&**s.open_raw_for_tests(Table::Sessions, b"alice", &old).unwrap(), b"ratchet state 1");

    s.clock().advance(Duration::from_secs(24 * 3600));
    assert_eq!(s.roll().unwrap(), 1);
    // The live record moved to the new day's key; the old version, still in sled's files,
    // opens with nothing the profile holds.
    assert_eq!(&**s.get(Table::Sessions, b"alice").unwrap().unwrap(), b"ratchet state 2");
    assert!(matches!(s.open_raw_for_tests(Table::Sessions, b"alice", &old), Err(StoreError::Tampered { .. })));
    assert_eq!(&**s.get(Table::Meta, b"other").unwrap().unwrap(), b"not rolled");
    s.flush().unwrap();
    drop(s);
    let s = EncryptedStore::open(&dir, b"pw").unwrap();
    assert_eq!(&**s.get(Table::Sessions, b"alice").unwrap().unwrap(), b"ratchet state 2");
    assert_eq!(s.live_epochs().unwrap().len(), 1);
}
