//! End to end through the wire formats: a real invite made from one profile's store, accepted
//! by another, a PQXDH + SPQR session started from the parsed bundle, and `Content`s sealed in
//! envelopes both ways. Also checks `content.rs`'s size arithmetic against libsignal itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use libsignal_protocol::{
    CiphertextMessage, CiphertextMessageType, DeviceId, PreKeySignalMessage, ProtocolAddress, SignalMessage,
};
use sotto_proto::{Envelope, SendId};

use super::content::{Hello, LIBSIGNAL_OVERHEAD_BOUND, MAX_CONTENT_BYTES, MAX_TEXT_BYTES, Text};
use super::*;
use crate::store::signal::{KyberKind, ProtocolTxn, create_prekey_bundle, generate_identity};
use crate::store::{EncryptedStore, KdfParams};

const PASS: &[u8] = b"test passphrase";

fn profile(root: &std::path::Path, name: &str) -> EncryptedStore {
    let mut store = EncryptedStore::create(root.join(name), PASS, KdfParams::insecure_for_tests()).unwrap();
    let mut txn = store.txn();
    generate_identity(&mut txn, &mut rand::rng()).unwrap();
    txn.commit().unwrap();
    store
}

fn addr(name: &str) -> ProtocolAddress {
    ProtocolAddress::new(name.to_owned(), DeviceId::new(1).unwrap())
}

/// One direction of a conversation: the sender's store and peer address, the receiver's
/// store and peer address, and the receiver's mailbox.
struct Hop<'a> {
    from: &'a mut EncryptedStore,
    to_addr: ProtocolAddress,
    to: &'a mut EncryptedStore,
    from_addr: ProtocolAddress,
    send_id: SendId,
    key: EnvelopeKey,
}

impl Hop<'_> {
    /// Encrypts, seals, opens, decrypts; returns the plaintext and the libsignal overhead.
    async fn carry(&mut self, plaintext: &[u8]) -> (Vec<u8>, BodyKind, usize) {
        let rng = &mut rand::rng();
        let ptx = ProtocolTxn::new(self.from.txn());
        let message = ptx.encrypt(&self.to_addr, plaintext, SystemTime::now(), rng).await.unwrap();
        ptx.commit().unwrap();
        let kind = match message.message_type() {
            CiphertextMessageType::PreKey => BodyKind::PreKey,
            CiphertextMessageType::Whisper => BodyKind::Signal,
            other => panic!("{other:?}"),
        };
        let body = message.serialize();
        let overhead = body.len() - plaintext.len();
        let envelope = seal(&self.key, &self.send_id, kind, body, rng).unwrap();

        // The relay carries bytes; the receiver re-reads them.
        let envelope = Envelope::from_slice(envelope.as_bytes()).unwrap();
        let (got_kind, got_body) = open(&self.key, &self.send_id, &envelope).unwrap();
        assert_eq!((got_kind, got_body.as_slice()), (kind, body));
        let message = match got_kind {
            BodyKind::PreKey => {
                CiphertextMessage::PreKeySignalMessage(PreKeySignalMessage::try_from(&got_body[..]).unwrap())
            }
            BodyKind::Signal => CiphertextMessage::SignalMessage(SignalMessage::try_from(&got_body[..]).unwrap()),
            BodyKind::Cover => unreachable!(),
        };
        let ptx = ProtocolTxn::new(self.to.txn());
        let plain = ptx.decrypt(&self.from_addr, &message, SystemTime::now(), rng).await.unwrap();
        ptx.commit().unwrap();
        (plain, kind, overhead)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn invite_link_to_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut alice, mut bob) = (profile(tmp.path(), "alice"), profile(tmp.path(), "bob"));
    let rng = &mut rand::rng();

    // Bob invites: a bundle from his store, a fresh mailbox.
    let bundle = {
        let mut txn = bob.txn();
        let bundle = create_prekey_bundle(&mut txn, DeviceId::new(1).unwrap(), KyberKind::OneTime, rng).unwrap();
        txn.commit().unwrap();
        bundle
    };
    let invite = Invite {
        relay: "sotto://relay.example.org:443#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".parse().unwrap(),
        send_id: SendId(rand::random()),
        envelope_key: EnvelopeKey::random(rng),
        invite_id: rand::random(),
        suggested_name: "Bob".into(),
        bundle: PreKeyBundleWire::from_bundle(&bundle).unwrap(),
    };
    let link = invite.to_link().unwrap();
    let qr = qr_text(&link).unwrap();
    assert!(qr.lines().count() > 50);

    // Alice accepts; the bundle she gets back is the one Bob made.
    let accepted = Invite::parse(&format!("<{link}>\n")).unwrap();
    let parsed_bundle = accepted.bundle.to_bundle().unwrap();
    assert_eq!(PreKeyBundleWire::from_bundle(&parsed_bundle).unwrap(), PreKeyBundleWire::from_bundle(&bundle).unwrap());
    {
        let ptx = ProtocolTxn::new(alice.txn());
        ptx.process_prekey_bundle(&addr("bob"), &parsed_bundle, SystemTime::now(), rng).await.unwrap();
        ptx.commit().unwrap();
    }
    let (alice_key, alice_send_id) = (EnvelopeKey::random(rng), SendId(rand::random()));
    let hello = Content {
        id: content::new_content_id(rng),
        seq: 1,
        sent_at_ms: 1,
        expire_seconds: 0,
        body: Some(Body::Hello(Hello {
            invite_id: accepted.invite_id.to_vec(),
            reply: Some(MailboxAddress::new(&accepted.relay, &alice_send_id, &alice_key)),
            sender_key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes().to_vec(),
            profile_name: "Алиса".into(),
        })),
    };

    let mut to_bob = Hop {
        from: &mut alice,
        to_addr: addr("bob"),
        to: &mut bob,
        from_addr: addr("alice"),
        send_id: accepted.send_id,
        key: accepted.envelope_key.clone(),
    };
    let (plain, kind, _) = to_bob.carry(&encode_content(&hello).unwrap()).await;
    assert_eq!(kind, BodyKind::PreKey);
    let got = decode_content(&plain).unwrap();
    assert_eq!(got, hello);
    let Some(Body::Hello(h)) = got.body else { panic!() };
    assert_eq!(h.invite_id, invite.invite_id);
    let (_, reply_send_id, reply_key) = h.reply.as_ref().unwrap().to_parts().unwrap();

    // The largest Content, as PreKey messages (before Bob answers) and then as normal ones.
    let max_text = "字".repeat(MAX_TEXT_BYTES / 3);
    let text = Content {
        id: vec![7; 16],
        seq: 2,
        sent_at_ms: 2,
        expire_seconds: 0,
        body: Some(Body::Text(Text { text: max_text })),
    };
    let text_bytes = encode_content(&text).unwrap();
    let full = vec![0x5A; MAX_CONTENT_BYTES];
    let (mut worst_prekey, mut worst_signal) = (0, 0);
    for plaintext in [&text_bytes, &full] {
        let (plain, kind, overhead) = to_bob.carry(plaintext).await;
        assert_eq!((kind, &plain), (BodyKind::PreKey, plaintext));
        worst_prekey = worst_prekey.max(overhead);
    }
    drop(to_bob);
    let mut to_alice = Hop {
        from: &mut bob,
        to_addr: addr("alice"),
        to: &mut alice,
        from_addr: addr("bob"),
        send_id: reply_send_id,
        key: reply_key,
    };
    let (plain, kind, overhead) = to_alice.carry(&full).await;
    assert_eq!((kind, plain), (BodyKind::Signal, full.clone()));
    worst_signal = worst_signal.max(overhead);
    drop(to_alice);

    // Back and forth, so SPQR's chunks and ratchet steps show up in the sizes.
    for round in 0..12 {
        let hops = [
            Hop {
                from: &mut alice,
                to_addr: addr("bob"),
                to: &mut bob,
                from_addr: addr("alice"),
                send_id: accepted.send_id,
                key: accepted.envelope_key.clone(),
            }
            .carry(&full)
            .await,
            Hop {
                from: &mut bob,
                to_addr: addr("alice"),
                to: &mut alice,
                from_addr: addr("bob"),
                send_id: reply_send_id,
                key: to_parts_key(&h),
            }
            .carry(&full)
            .await,
        ];
        for (plain, kind, overhead) in hops {
            assert_eq!((plain.as_slice(), kind), (full.as_slice(), BodyKind::Signal), "round {round}");
            worst_signal = worst_signal.max(overhead);
        }
    }
    println!("libsignal overhead: PreKey {worst_prekey} bytes, Signal {worst_signal} bytes");
    assert!(worst_prekey <= LIBSIGNAL_OVERHEAD_BOUND && worst_signal <= LIBSIGNAL_OVERHEAD_BOUND);
    assert!(MAX_CONTENT_BYTES + worst_prekey <= MAX_BODY_LEN);
}

fn to_parts_key(h: &Hello) -> EnvelopeKey {
    h.reply.as_ref().unwrap().to_parts().unwrap().2
}
