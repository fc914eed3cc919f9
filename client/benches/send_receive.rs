//! The client's send and receive paths beside raw libsignal, in one criterion run.
//!
//! - `send/raw_libsignal_encrypt`: `message_encrypt` on libsignal's in-memory stores.
//! - `send/sotto_durable`: what `sotto send` does per message (the body of
//!   `app::outgoing::queue` plus the message record): encode the `Content`, encrypt through
//!   a [`ProtocolTxn`] on a real sled profile in a temporary directory (sealed records,
//!   post-quantum session check), pad and seal the envelope, write the message and outbox
//!   records, and commit (one sled batch and a flush to disk).
//! - `send/sotto_no_commit`: the same without the commit, to tell CPU from the disk.
//! - `receive/raw_libsignal_decrypt`: `message_decrypt` on in-memory stores.
//! - `receive/sotto_durable`: what a delivery costs (the body of
//!   `app::incoming::receive_from_contact` for a text): open the envelope, decrypt through
//!   a [`ProtocolTxn`], decode the `Content`, write the message record, commit.
//!
//! Both sides of every pair run established PQXDH + SPQR sessions, and messages flow one
//! way, so no iteration takes a ratchet step. Run with `cargo bench -p sotto-client`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use libsignal_protocol::{
    CiphertextMessage, DeviceId, GenericSignedPreKey, IdentityKeyPair, InMemSignalProtocolStore, KeyPair,
    KyberPreKeyRecord, KyberPreKeyStore, PreKeyBundle, PreKeyRecord, PreKeyStore, ProtocolAddress, SignalMessage,
    SignedPreKeyRecord, SignedPreKeyStore, Timestamp, kem, message_decrypt, message_encrypt, process_prekey_bundle,
};
use sotto_client::app::profile;
use sotto_client::app::records::{Delivery, Direction, Message, Outgoing};
use sotto_client::store::signal::{KyberKind, ProtocolTxn, create_prekey_bundle, generate_identity};
use sotto_client::store::{EncryptedStore, KdfParams};
use sotto_client::wire::content::{Body, Content, Text, new_content_id};
use sotto_client::wire::{BodyKind, EnvelopeKey, decode_content, encode_content, open, seal};
use sotto_proto::{Envelope, SendId};

/// The text every benchmark sends: a typical short message.
const TEXT: &str = "the meeting moved to Thursday, same place";
const PASSPHRASE: &[u8] = b"bench passphrase";

/// Runs a future that never waits (libsignal's stores answer at once), as the client's
/// single libsignal thread does.
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

fn device() -> DeviceId {
    DeviceId::new(1).expect("device id")
}

fn address(name: &str) -> ProtocolAddress {
    ProtocolAddress::new(name.to_string(), device())
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn content() -> Content {
    Content {
        id: new_content_id(&mut rand::rng()),
        seq: 1,
        sent_at_ms: now_ms(),
        expire_seconds: 0,
        body: Some(Body::Text(Text { text: TEXT.to_string() })),
    }
}

/// An in-memory libsignal party and its published bundle.
fn inmem_party() -> (InMemSignalProtocolStore, PreKeyBundle) {
    let mut rng = rand::rng();
    let identity = IdentityKeyPair::generate(&mut rng);
    let mut store = InMemSignalProtocolStore::new(identity, 7).expect("store");
    let ts = Timestamp::from_epoch_millis(now_ms());
    let pre = KeyPair::generate(&mut rng);
    let signed = KeyPair::generate(&mut rng);
    let signed_sig = identity.private_key().calculate_signature(&signed.public_key.serialize(), &mut rng).unwrap();
    let kyber = kem::KeyPair::generate(kem::KeyType::MLKEM1024, &mut rng);
    let kyber_sig = identity.private_key().calculate_signature(&kyber.public_key.serialize(), &mut rng).unwrap();
    run(async {
        store.pre_key_store.save_pre_key(1.into(), &PreKeyRecord::new(1.into(), &pre)).await.unwrap();
        let signed_rec = SignedPreKeyRecord::new(2.into(), ts, &signed, &signed_sig);
        store.signed_pre_key_store.save_signed_pre_key(2.into(), &signed_rec).await.unwrap();
        let kyber_rec = KyberPreKeyRecord::new(3.into(), ts, &kyber, &kyber_sig);
        store.kyber_pre_key_store.save_kyber_pre_key(3.into(), &kyber_rec).await.unwrap();
    });
    let bundle = PreKeyBundle::new(
        7,
        device(),
        Some((1.into(), pre.public_key)),
        2.into(),
        signed.public_key,
        signed_sig.into_vec(),
        3.into(),
        kyber.public_key.clone(),
        kyber_sig.into_vec(),
        *identity.identity_key(),
    )
    .unwrap();
    (store, bundle)
}

fn raw_encrypt(from: &mut InMemSignalProtocolStore, to: &ProtocolAddress, text: &[u8]) -> CiphertextMessage {
    run(message_encrypt(text, to, &mut from.session_store, &mut from.identity_store, now(), &mut rand::rng())).unwrap()
}

fn raw_decrypt(at: &mut InMemSignalProtocolStore, from: &ProtocolAddress, m: &CiphertextMessage) -> Vec<u8> {
    let s = at;
    run(message_decrypt(
        m,
        from,
        &mut s.session_store,
        &mut s.identity_store,
        &mut s.pre_key_store,
        &s.signed_pre_key_store,
        &mut s.kyber_pre_key_store,
        &mut rand::rng(),
    ))
    .unwrap()
}

/// Two in-memory parties with a session both ways (the first message and a reply).
fn raw_pair() -> (InMemSignalProtocolStore, InMemSignalProtocolStore) {
    let (mut alice, _) = inmem_party();
    let (mut bob, bob_bundle) = inmem_party();
    run(process_prekey_bundle(
        &address("bob"),
        &mut alice.session_store,
        &mut alice.identity_store,
        &bob_bundle,
        now(),
        &mut rand::rng(),
    ))
    .unwrap();
    let first = raw_encrypt(&mut alice, &address("bob"), b"hello");
    raw_decrypt(&mut bob, &address("alice"), &first);
    let reply = raw_encrypt(&mut bob, &address("alice"), b"hi");
    raw_decrypt(&mut alice, &address("bob"), &reply);
    (alice, bob)
}

/// A sotto profile on sled in a temporary directory, with a session both ways to an
/// in-memory peer.
struct Sotto {
    _dir: tempfile::TempDir,
    store: EncryptedStore,
    peer: InMemSignalProtocolStore,
    key: EnvelopeKey,
    send_id: SendId,
    next_local: u64,
}

fn sotto_pair() -> Sotto {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        EncryptedStore::create(dir.path().join("profile"), PASSPHRASE, KdfParams::insecure_for_tests()).unwrap();
    let mut txn = store.txn();
    generate_identity(&mut txn, &mut rand::rng()).unwrap();
    let bundle = create_prekey_bundle(&mut txn, device(), KyberKind::OneTime, &mut rand::rng()).unwrap();
    txn.commit().unwrap();
    let (mut peer, _) = inmem_party();
    run(process_prekey_bundle(
        &address("me"),
        &mut peer.session_store,
        &mut peer.identity_store,
        &bundle,
        now(),
        &mut rand::rng(),
    ))
    .unwrap();
    let first = raw_encrypt(&mut peer, &address("me"), b"hello");
    let ptxn = ProtocolTxn::new(store.txn());
    run(ptxn.decrypt(&address("peer"), &first, now(), &mut rand::rng())).unwrap();
    ptxn.commit().unwrap();
    let ptxn = ProtocolTxn::new(store.txn());
    let reply = run(ptxn.encrypt(&address("peer"), b"hi", now(), &mut rand::rng())).unwrap();
    ptxn.commit().unwrap();
    raw_decrypt(&mut peer, &address("me"), &reply);
    let mut k = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut k);
    Sotto { _dir: dir, store, peer, key: EnvelopeKey::from_bytes(k), send_id: SendId([9; 24]), next_local: 0 }
}

const CONTACT: [u8; 16] = [1; 16];

/// The send path; commits when `commit` is set.
fn sotto_send(s: &mut Sotto, commit: bool) {
    let body = content();
    let ptxn = ProtocolTxn::new(s.store.txn());
    let plaintext = zeroize::Zeroizing::new(encode_content(&body).unwrap());
    let ct = run(ptxn.encrypt(&address("peer"), &plaintext, now(), &mut rand::rng())).unwrap();
    let kind = match &ct {
        CiphertextMessage::PreKeySignalMessage(_) => BodyKind::PreKey,
        _ => BodyKind::Signal,
    };
    let sealed = seal(&s.key, &s.send_id, kind, ct.serialize(), &mut rand::rng()).unwrap();
    {
        let mut txn = ptxn.txn().unwrap();
        let key = profile::message_key(&txn, &CONTACT, s.next_local);
        s.next_local += 1;
        let m = Message {
            direction: Direction::Out,
            text: TEXT.to_string(),
            sent_at_ms: body.sent_at_ms,
            seq: body.seq,
            delivery: Delivery::Queued,
        };
        profile::put_message(&mut txn, &key, &m).unwrap();
        let out = Outgoing {
            contact: CONTACT,
            message_key: key,
            relay: "sotto://127.0.0.1:7443".to_string(),
            send_id: s.send_id.0,
            sender_seed: [3; 32],
            envelope: sealed.as_bytes().to_vec(),
        };
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&s.next_local.to_be_bytes());
        profile::put_outgoing(&mut txn, &id, &out).unwrap();
    }
    if commit {
        ptxn.commit().unwrap();
    }
}

/// The receive path for one sealed envelope.
fn sotto_receive(s: &mut Sotto, env: &Envelope) {
    let (_, body) = open(&s.key, &s.send_id, env).unwrap();
    let message = CiphertextMessage::SignalMessage(SignalMessage::try_from(body.as_slice()).unwrap());
    let ptxn = ProtocolTxn::new(s.store.txn());
    let plaintext =
        zeroize::Zeroizing::new(run(ptxn.decrypt(&address("peer"), &message, now(), &mut rand::rng())).unwrap());
    let content = decode_content(&plaintext).unwrap();
    let Some(Body::Text(t)) = content.body else { panic!("not a text") };
    {
        let mut txn = ptxn.txn().unwrap();
        let key = profile::message_key(&txn, &CONTACT, s.next_local);
        s.next_local += 1;
        let m = Message {
            direction: Direction::In,
            text: t.text,
            sent_at_ms: content.sent_at_ms,
            seq: content.seq,
            delivery: Delivery::Received,
        };
        profile::put_message(&mut txn, &key, &m).unwrap();
    }
    ptxn.commit().unwrap();
}

fn send(c: &mut Criterion) {
    let mut g = c.benchmark_group("send");
    let (mut alice, _bob) = raw_pair();
    let text = encode_content(&content()).unwrap();
    g.bench_function("raw_libsignal_encrypt", |b| b.iter(|| raw_encrypt(&mut alice, &address("bob"), &text)));
    let mut s = sotto_pair();
    g.bench_function("sotto_no_commit", |b| b.iter(|| sotto_send(&mut s, false)));
    g.bench_function("sotto_durable", |b| b.iter(|| sotto_send(&mut s, true)));
    g.finish();
}

fn receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    let (mut alice, mut bob) = raw_pair();
    let text = encode_content(&content()).unwrap();
    g.bench_function("raw_libsignal_decrypt", |b| {
        b.iter_batched(
            || raw_encrypt(&mut alice, &address("bob"), &text),
            |m| raw_decrypt(&mut bob, &address("alice"), &m),
            BatchSize::SmallInput,
        )
    });
    let mut s = sotto_pair();
    let (key, send_id) = (s.key.clone(), s.send_id);
    let mut peer = std::mem::replace(&mut s.peer, inmem_party().0);
    g.bench_function("sotto_durable", |b| {
        b.iter_batched(
            || {
                let ct = raw_encrypt(&mut peer, &address("me"), &encode_content(&content()).unwrap());
                seal(&key, &send_id, BodyKind::Signal, ct.serialize(), &mut rand::rng()).unwrap()
            },
            |env| sotto_receive(&mut s, &env),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, send, receive);
criterion_main!(benches);
