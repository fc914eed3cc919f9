//! Header parsing, the duress slot, and the format 1 header still opening.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn params() -> KdfParams {
    KdfParams::insecure_for_tests()
}

#[test]
fn parse_round_trip_and_rejects_garbage() {
    let mk = MasterKey::generate().unwrap();
    let h = Header::seal(&mk, b"pw", params()).unwrap();
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), HEADER_LEN);
    let back = Header::parse(&bytes).unwrap();
    assert_eq!(back.params, params());
    assert!(matches!(back.unlock(b"pw").unwrap(), Unlocked::Master(_)));
    assert!(matches!(back.unlock(b"pW"), Err(StoreError::WrongPassphrase)));

    assert!(matches!(Header::parse(&bytes[..HEADER_LEN - 1]), Err(StoreError::CorruptHeader(_))));
    let mut bad_magic = bytes.clone();
    bad_magic[0] ^= 1;
    assert!(matches!(Header::parse(&bad_magic), Err(StoreError::CorruptHeader(_))));
    // A header demanding absurd memory is refused before any Argon2 work.
    let mut greedy = bytes.clone();
    greedy[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(Header::parse(&greedy), Err(StoreError::CorruptHeader(_))));
    // Changed parameters still parse, but no longer unwrap: they are authenticated.
    let mut changed = bytes.clone();
    changed[14..18].copy_from_slice(&2u32.to_le_bytes());
    let h2 = Header::parse(&changed).unwrap();
    assert!(matches!(h2.unlock(b"pw"), Err(StoreError::WrongPassphrase)));
}

#[test]
fn duress_slot_opens_with_its_passphrase_only_and_has_the_same_shape_unset() {
    let mk = MasterKey::generate().unwrap();
    let unset = Header::seal(&mk, b"pw", params()).unwrap();
    let mut set = Header::seal(&mk, b"pw", params()).unwrap();
    set.set_duress(b"duress", "sotto://relay.example:443#pin").unwrap();
    let (a, b) = (unset.to_bytes(), set.to_bytes());
    assert_eq!(a.len(), b.len());
    // Same fixed fields, same zero padding, and both slot-1 regions look random.
    assert_eq!(a[..COMMON_LEN], b[..COMMON_LEN]);
    assert_eq!(a[FIXED_LEN..SECTOR_LEN], b[FIXED_LEN..SECTOR_LEN]);
    let Unlocked::Duress(relay) = set.unlock(b"duress").unwrap() else { panic!("not duress") };
    assert_eq!(relay.as_str(), "sotto://relay.example:443#pin");
    assert!(matches!(set.unlock(b"pw").unwrap(), Unlocked::Master(_)));
    assert!(matches!(unset.unlock(b"duress"), Err(StoreError::WrongPassphrase)));
    set.clear_duress().unwrap();
    assert!(matches!(set.unlock(b"duress"), Err(StoreError::WrongPassphrase)));
}

#[test]
fn format_1_headers_still_open() {
    let tmp = tempfile::tempdir().unwrap();
    let mk = MasterKey::generate().unwrap();
    let salt = random_salt().unwrap();
    let nonce = [9u8; NONCE_LEN];
    let p = params();
    let mut v1 = MAGIC.to_vec();
    v1.extend_from_slice(&[FORMAT_V1, KDF_ARGON2ID_V13]);
    for x in [p.m_cost_kib, p.t_cost, p.p_cost] {
        v1.extend_from_slice(&x.to_le_bytes());
    }
    v1.extend_from_slice(&salt);
    v1.extend_from_slice(&nonce);
    let wrapped = mk.wrap(b"pw", &salt, &p, &nonce, &v1.clone()).unwrap();
    v1.extend_from_slice(&wrapped);
    std::fs::write(tmp.path().join(HEADER_FILE), &v1).unwrap();
    let (back, params_back) = unlock_v1(tmp.path(), b"pw").unwrap().unwrap();
    assert_eq!(back.expose_for_tests(), mk.expose_for_tests());
    assert_eq!(params_back, p);
    assert!(matches!(unlock_v1(tmp.path(), b"nope"), Err(StoreError::WrongPassphrase)));
}
