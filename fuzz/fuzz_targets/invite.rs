//! Any text parses to an invite or an error (an invite arrives pasted from anywhere); a parsed
//! invite re-links to a link that parses to the same invite.
//!
//! Random text almost never gets past the base64 and protobuf layers to a valid prekey bundle
//! (a 1,569-byte ML-KEM key among others), so the input is also used as an edit (splice) of a
//! valid invite's payload, re-encoded as a link: that reaches every field check, and the round
//! trip of invites that still parse.
//!
//! The input is also read as the payload of a compact QR invite (`SOTTO:INVITE:` and base32),
//! and as an edit of a valid one: any payload parses or is refused with an error, and a parsed
//! one re-encodes to the same text.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use libsignal_protocol::{
    DeviceId, IdentityKeyPair, KeyPair, KyberPreKeyId, PreKeyBundle, PreKeyId, SignedPreKeyId, kem,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sotto_client::wire::content::INVITE_ID_LEN;
use sotto_client::wire::envelope::EnvelopeKey;
use data_encoding::BASE32_NOPAD;
use sotto_client::wire::invite::{INVITE_PREFIX, Invite, PreKeyBundleWire};
use sotto_client::wire::invite_qr::QR_INVITE_PREFIX;
use sotto_client::wire::{InviteLink, ShortInvite};
use sotto_proto::{BlobReadId, SendId};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    let mut link = String::from(INVITE_PREFIX);
    URL_SAFE_NO_PAD.encode_string(splice(template(), data), &mut link);
    check(&link);
    check(&format!("{QR_INVITE_PREFIX}{}", BASE32_NOPAD.encode(data)));
    check(&format!("{QR_INVITE_PREFIX}{}", BASE32_NOPAD.encode(&splice(compact_template(), data))));
});

fn check(text: &str) {
    // Either form of link: a short one re-links to itself.
    if let Ok(InviteLink::Short(short)) = InviteLink::parse(text) {
        let link = short.to_link();
        let Ok(InviteLink::Short(again)) = InviteLink::parse(&link) else { panic!("short link did not re-parse") };
        assert_eq!(again.to_link(), link);
        // Its compact form reads back to the same invite, and is canonical: a compact text
        // that parsed is exactly what the invite encodes to (in capitals, without spaces).
        let compact = short.to_qr_link();
        let Ok(InviteLink::Short(back)) = InviteLink::parse(&compact) else { panic!("compact form did not re-parse") };
        assert_eq!(back.to_link(), link);
        assert_eq!(back.to_qr_link(), compact);
        if text.starts_with(QR_INVITE_PREFIX) {
            assert_eq!(text, compact);
        }
    }
    let Ok(invite) = Invite::parse(text) else { return };
    // `parse` checked everything `to_link` refuses, so a parsed invite always re-links.
    let link = invite.to_link().unwrap();
    let again = Invite::parse(&link).unwrap();
    // `Invite` has no `PartialEq` (its key is secret): compare field by field.
    assert_eq!(again.relay, invite.relay);
    assert_eq!(again.send_id, invite.send_id);
    assert_eq!(again.envelope_key.as_bytes(), invite.envelope_key.as_bytes());
    assert_eq!(again.invite_id, invite.invite_id);
    assert_eq!(again.suggested_name, invite.suggested_name);
    assert!(again.bundle == invite.bundle, "bundle changed in a round trip");
    // The canonical link is a fixed point.
    assert_eq!(again.to_link().unwrap(), link);
}

/// `data` = offset (u16, big-endian, modulo the length + 1) || bytes to remove (u8) || bytes
/// to insert there.
fn splice(payload: &[u8], data: &[u8]) -> Vec<u8> {
    let [hi, lo, remove, insert @ ..] = data else { return payload.to_vec() };
    let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (payload.len() + 1);
    let end = (at + usize::from(*remove)).min(payload.len());
    [&payload[..at], insert, &payload[end..]].concat()
}

/// The payload of a valid compact invite (a pinned relay by name).
fn compact_template() -> &'static [u8] {
    static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let relay = "sotto://relay.example.org:443#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".parse().unwrap();
        let short = ShortInvite::new(relay, BlobReadId([9; 24]), zeroize::Zeroizing::new([0x42; 32]));
        let link = short.to_qr_link();
        BASE32_NOPAD.decode(&link.as_bytes()[QR_INVITE_PREFIX.len()..]).unwrap()
    })
}

/// The payload (version and protobuf) of a valid invite, made once from fixed keys.
fn template() -> &'static [u8] {
    static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let rng = &mut StdRng::seed_from_u64(1);
        let identity = IdentityKeyPair::generate(rng);
        let sign = |key: &[u8], rng: &mut StdRng| identity.private_key().calculate_signature(key, rng).unwrap();
        let signed = KeyPair::generate(rng).public_key;
        let signed_sig = sign(&signed.serialize(), rng);
        let kyber = kem::KeyPair::generate(kem::KeyType::MLKEM1024, rng).public_key;
        let kyber_sig = sign(&kyber.serialize(), rng);
        let bundle = PreKeyBundle::new(
            0x1234,
            DeviceId::new(1).unwrap(),
            Some((PreKeyId::from(77), KeyPair::generate(rng).public_key)),
            SignedPreKeyId::from(88),
            signed,
            signed_sig.to_vec(),
            KyberPreKeyId::from(99),
            kyber,
            kyber_sig.to_vec(),
            *identity.identity_key(),
        )
        .unwrap();
        let invite = Invite {
            relay: "sotto://relay.example.org:443#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".parse().unwrap(),
            send_id: SendId(std::array::from_fn(|i| 0xA0 + i as u8)),
            envelope_key: EnvelopeKey::from_bytes(std::array::from_fn(|i| i as u8)),
            invite_id: [0x11; INVITE_ID_LEN],
            suggested_name: "Amina".into(),
            bundle: PreKeyBundleWire::from_bundle(&bundle).unwrap(),
        };
        let link = invite.to_link().unwrap();
        URL_SAFE_NO_PAD.decode(&link[INVITE_PREFIX.len()..]).unwrap()
    })
}
