//! End-to-end tests: real libsignal sessions between two profiles on sled, reopened from disk
//! between steps, run on one thread as the design requires.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use libsignal_protocol::{
    CiphertextMessage, CiphertextMessageType, DeviceId, IdentityKey, IdentityKeyStore, KyberPreKeyStore, PreKeyBundle,
    PreKeySignalMessage, PreKeyStore, ProtocolAddress, SessionUsabilityRequirements, SignalMessage,
    SignalProtocolError,
};

use super::*;
use crate::store::{EncryptedStore, KdfParams, Table};

pub(crate) const PASS: &[u8] = b"test passphrase";

pub(crate) fn addr(name: &str) -> ProtocolAddress {
    ProtocolAddress::new(name.to_owned(), DeviceId::new(1).unwrap())
}

/// Creates a profile with a fresh identity and closes it.
pub(crate) fn new_profile(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let mut store = EncryptedStore::create(&dir, PASS, KdfParams::insecure_for_tests()).unwrap();
    let mut txn = store.txn();
    generate_identity(&mut txn, &mut rand::rng()).unwrap();
    txn.commit().unwrap();
    dir
}

pub(crate) fn open(dir: &Path) -> EncryptedStore {
    EncryptedStore::open(dir, PASS).unwrap()
}

/// Publishes a bundle from the profile in `dir`.
pub(crate) fn publish(dir: &Path, kind: KyberKind) -> PreKeyBundle {
    let mut store = open(dir);
    let mut txn = store.txn();
    let bundle = create_prekey_bundle(&mut txn, DeviceId::new(1).unwrap(), kind, &mut rand::rng()).unwrap();
    txn.commit().unwrap();
    bundle
}

/// What goes over the wire: the type and the bytes, re-parsed on arrival.
pub(crate) struct Wire(CiphertextMessageType, Vec<u8>);

impl Wire {
    fn of(m: &CiphertextMessage) -> Wire {
        Wire(m.message_type(), m.serialize().to_vec())
    }

    pub(crate) fn parse(&self) -> CiphertextMessage {
        match self.0 {
            CiphertextMessageType::PreKey => {
                CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(self.1.as_slice()).unwrap())
            }
            CiphertextMessageType::Whisper => {
                CiphertextMessage::SignalMessage(SignalMessage::try_from(self.1.as_slice()).unwrap())
            }
            other => panic!("unexpected message type {other:?}"),
        }
    }
}

/// Opens `dir`, starts a session from `bundle` if given, encrypts, commits, closes.
pub(crate) async fn send(
    dir: &Path,
    to: &ProtocolAddress,
    bundle: Option<&PreKeyBundle>,
    text: &[u8],
) -> Result<Wire, SignalProtocolError> {
    let mut store = open(dir);
    let ptx = ProtocolTxn::new(store.txn());
    let now = SystemTime::now();
    if let Some(bundle) = bundle {
        ptx.process_prekey_bundle(to, bundle, now, &mut rand::rng()).await?;
    }
    let ct = ptx.encrypt(to, text, now, &mut rand::rng()).await?;
    ptx.commit().unwrap();
    Ok(Wire::of(&ct))
}

/// Opens `dir`, decrypts, stores the message in the same transaction, commits, closes.
pub(crate) async fn receive(dir: &Path, from: &ProtocolAddress, wire: &Wire) -> Result<Vec<u8>, SignalProtocolError> {
    let mut store = open(dir);
    let ptx = ProtocolTxn::new(store.txn());
    let plain = ptx.decrypt(from, &wire.parse(), SystemTime::now(), &mut rand::rng()).await?;
    {
        let mut txn = ptx.txn().unwrap();
        let key = txn.index_key(Table::Messages, &plain);
        txn.put(Table::Messages, &key, &plain);
    }
    ptx.commit().unwrap();
    Ok(plain)
}

fn session_meets(dir: &Path, peer: &ProtocolAddress, req: SessionUsabilityRequirements) -> bool {
    let mut store = open(dir);
    let txn = store.txn();
    load_session(&txn, peer).unwrap().expect("session exists").has_usable_sender_chain(SystemTime::now(), req).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn full_pq_session_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    let (alice_at_bob, bob_at_alice) = (addr("c-alice"), addr("c-bob"));

    let bundle = publish(&bob, KyberKind::OneTime);
    let first = send(&alice, &bob_at_alice, Some(&bundle), b"hello bob").await.unwrap();
    assert_eq!(first.0, CiphertextMessageType::PreKey);
    assert!(session_meets(&alice, &bob_at_alice, REQUIRED_SESSION));

    assert_eq!(receive(&bob, &alice_at_bob, &first).await.unwrap(), b"hello bob");
    for i in 0..4 {
        let reply = format!("reply {i}");
        let w = send(&bob, &alice_at_bob, None, reply.as_bytes()).await.unwrap();
        assert_eq!(w.0, CiphertextMessageType::Whisper);
        assert_eq!(receive(&alice, &bob_at_alice, &w).await.unwrap(), reply.as_bytes());
        // Two in a row from Alice, to exercise chains as well as ratchet steps.
        for j in 0..2 {
            let text = format!("message {i}.{j}");
            let w = send(&alice, &bob_at_alice, None, text.as_bytes()).await.unwrap();
            assert_eq!(w.0, CiphertextMessageType::Whisper);
            assert_eq!(receive(&bob, &alice_at_bob, &w).await.unwrap(), text.as_bytes());
        }
    }

    let pq = SessionUsabilityRequirements::Spqr | SessionUsabilityRequirements::EstablishedWithPqxdh;
    assert!(pq == REQUIRED_SESSION);
    assert!(session_meets(&alice, &bob_at_alice, pq));
    assert!(session_meets(&bob, &alice_at_bob, pq));
    assert!(session_meets(&bob, &alice_at_bob, pq | SessionUsabilityRequirements::NotStale));

    // A replayed first message is refused and changes nothing.
    assert!(receive(&bob, &alice_at_bob, &first).await.is_err());
    let w = send(&alice, &bob_at_alice, None, b"still fine").await.unwrap();
    assert_eq!(receive(&bob, &alice_at_bob, &w).await.unwrap(), b"still fine");
}

#[tokio::test(flavor = "current_thread")]
async fn one_time_prekeys_are_gone_after_use() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    let bundle = publish(&bob, KyberKind::OneTime);
    let kyber_id = bundle.kyber_pre_key_id().unwrap();
    let ec_id = bundle.pre_key_id().unwrap().unwrap();
    {
        let mut store = open(&bob);
        let txn = store.txn();
        assert_eq!(kyber_pre_key_kind(&txn, kyber_id).unwrap(), Some(KyberKind::OneTime));
    }
    let w = send(&alice, &addr("bob"), Some(&bundle), b"hi").await.unwrap();
    receive(&bob, &addr("alice"), &w).await.unwrap();

    let mut store = open(&bob);
    let ptx = ProtocolTxn::new(store.txn());
    let s = ptx.store();
    assert_eq!(kyber_pre_key_kind(&ptx.txn().unwrap(), kyber_id).unwrap(), None);
    assert!(matches!(s.get_kyber_pre_key(kyber_id).await, Err(SignalProtocolError::InvalidKyberPreKeyId)));
    assert!(matches!(s.get_pre_key(ec_id).await, Err(SignalProtocolError::InvalidPreKeyId)));
    drop(ptx);
    drop(store);
    // A second contact using the same (now spent) bundle is refused.
    let carol = new_profile(tmp.path(), "carol");
    let w = send(&carol, &addr("bob"), Some(&bundle), b"hi").await.unwrap();
    assert!(receive(&bob, &addr("carol"), &w).await.is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn last_resort_kyber_prekey_rejects_a_repeated_base_key() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    let bundle = publish(&bob, KyberKind::LastResort);
    let kyber_id = bundle.kyber_pre_key_id().unwrap();
    let signed_id = bundle.signed_pre_key_id().unwrap();
    let w = send(&alice, &addr("bob"), Some(&bundle), b"hi").await.unwrap();
    receive(&bob, &addr("alice"), &w).await.unwrap();
    let CiphertextMessage::PreKeySignalMessage(m) = w.parse() else {
        panic!("expected a PreKey message");
    };

    let mut store = open(&bob);
    let ptx = ProtocolTxn::new(store.txn());
    let mut s = ptx.store();
    // Kept for reuse...
    assert!(s.get_kyber_pre_key(kyber_id).await.is_ok());
    // ...but not with the same base key again.
    let err = s.mark_kyber_pre_key_used(kyber_id, signed_id, m.base_key()).await.unwrap_err();
    assert!(matches!(err, SignalProtocolError::InvalidMessage(_, "reused base key")));
    // A fresh base key is fine, once.
    let other = libsignal_protocol::KeyPair::generate(&mut rand::rng()).public_key;
    s.mark_kyber_pre_key_used(kyber_id, signed_id, &other).await.unwrap();
    assert!(s.mark_kyber_pre_key_used(kyber_id, signed_id, &other).await.is_err());
    // Rotation forgets the key and its base keys.
    remove_kyber_pre_key(&mut ptx.txn().unwrap(), kyber_id).unwrap();
    assert!(ptx.txn().unwrap().scan_table(Table::KyberBaseKeys).unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn changed_identity_is_untrusted_until_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    let (alice_at_bob, bob_at_alice) = (addr("c-alice"), addr("c-bob"));
    let w = send(&alice, &bob_at_alice, Some(&publish(&bob, KyberKind::OneTime)), b"v1").await.unwrap();
    receive(&bob, &alice_at_bob, &w).await.unwrap();

    // Alice reinstalls: new identity, same contact on Bob's side.
    let alice2 = new_profile(tmp.path(), "alice2");
    let w = send(&alice2, &bob_at_alice, Some(&publish(&bob, KyberKind::OneTime)), b"v2").await.unwrap();
    let err = receive(&bob, &alice_at_bob, &w).await.unwrap_err();
    assert!(matches!(err, SignalProtocolError::UntrustedIdentity(_)));
    let CiphertextMessage::PreKeySignalMessage(m) = w.parse() else {
        panic!("expected a PreKey message");
    };
    let new_key: IdentityKey = *m.identity_key();
    {
        let mut store = open(&bob);
        let ptx = ProtocolTxn::new(store.txn());
        let s = ptx.store();
        assert!(
            !s.is_trusted_identity(&alice_at_bob, &new_key, libsignal_protocol::Direction::Receiving).await.unwrap()
        );
        let old = s.get_identity(&alice_at_bob).await.unwrap().unwrap();
        assert_ne!(old, new_key);
        // Even if libsignal saves the new key, it is only pending.
        let mut s2 = s;
        assert_eq!(
            s2.save_identity(&alice_at_bob, &new_key).await.unwrap(),
            libsignal_protocol::IdentityChange::ReplacedExisting
        );
        assert_eq!(
            identity_status(&ptx.txn().unwrap(), &alice_at_bob).unwrap(),
            IdentityStatus::Changed { trusted: old, pending: new_key }
        );
        assert!(!s.is_trusted_identity(&alice_at_bob, &new_key, libsignal_protocol::Direction::Sending).await.unwrap());
        // Not committed: dropped.
    }
    // The failed attempt stored nothing: still untrusted after reopening.
    assert!(receive(&bob, &alice_at_bob, &w).await.is_err());

    // The user compares safety numbers and accepts.
    {
        let mut store = open(&bob);
        let mut txn = store.txn();
        accept_identity(&mut txn, &alice_at_bob, &new_key).unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(receive(&bob, &alice_at_bob, &w).await.unwrap(), b"v2");
    let reply = send(&bob, &alice_at_bob, None, b"welcome back").await.unwrap();
    assert_eq!(receive(&alice2, &bob_at_alice, &reply).await.unwrap(), b"welcome back");

    // Sending side: Bob reinstalls; Alice2 refuses his new bundle until she accepts it.
    let bob2 = new_profile(tmp.path(), "bob2");
    let bundle = publish(&bob2, KyberKind::OneTime);
    let err = send(&alice2, &bob_at_alice, Some(&bundle), b"x").await.err();
    assert!(matches!(err, Some(SignalProtocolError::UntrustedIdentity(_))));
    {
        let mut store = open(&alice2);
        let mut txn = store.txn();
        accept_identity(&mut txn, &bob_at_alice, bundle.identity_key().unwrap()).unwrap();
        txn.commit().unwrap();
    }
    let w = send(&alice2, &bob_at_alice, Some(&bundle), b"hi bob2").await.unwrap();
    assert_eq!(receive(&bob2, &alice_at_bob, &w).await.unwrap(), b"hi bob2");
}

#[tokio::test(flavor = "current_thread")]
async fn an_uncommitted_decrypt_leaves_no_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    let bob = new_profile(tmp.path(), "bob");
    let w = send(&alice, &addr("bob"), Some(&publish(&bob, KyberKind::OneTime)), b"once").await.unwrap();
    {
        // Decrypt, then "crash" before commit.
        let mut store = open(&bob);
        let ptx = ProtocolTxn::new(store.txn());
        let plain = ptx.decrypt(&addr("alice"), &w.parse(), SystemTime::now(), &mut rand::rng()).await.unwrap();
        assert_eq!(plain, b"once");
        let written = ptx.txn().unwrap().tables_written();
        for t in [Table::Sessions, Table::Identities, Table::PreKeys, Table::KyberPreKeys] {
            assert!(written.contains(&t), "{t:?} not in the batch: {written:?}");
        }
    }
    // Everything it would have consumed is still there, so the redelivery succeeds.
    assert_eq!(receive(&bob, &addr("alice"), &w).await.unwrap(), b"once");
}

#[tokio::test(flavor = "current_thread")]
async fn encrypt_without_session_and_identity_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = new_profile(tmp.path(), "alice");
    assert!(matches!(
        send(&alice, &addr("nobody"), None, b"x").await,
        Err(SignalProtocolError::InvalidState("sotto session policy", _))
    ));
    let mut store = open(&alice);
    let mut txn = store.txn();
    assert!(matches!(generate_identity(&mut txn, &mut rand::rng()), Err(StoreError::IdentityExists)));
    assert_eq!(identity_status(&txn, &addr("nobody")).unwrap(), IdentityStatus::Unknown);
    let reg = local_registration_id(&txn).unwrap();
    assert!((1..=0x3FFF).contains(&reg));
}
