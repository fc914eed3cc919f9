//! Tests of invite links: golden prefix, round trips, forgiving parsing, every refusal, the
//! bundle's checks, the QR code, and proptest fuzzing of the parser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use libsignal_protocol::{IdentityKeyPair, KeyPair, KyberPreKeyId, PreKeyId, SignedPreKeyId};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

const PIN: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// A bundle as libsignal makes one, with a KEM key of `kem_type`.
pub(crate) fn make_bundle(seed: u64, kem_type: kem::KeyType, with_prekey: bool) -> PreKeyBundle {
    let rng = &mut StdRng::seed_from_u64(seed);
    let identity = IdentityKeyPair::generate(rng);
    let pre = KeyPair::generate(rng).public_key;
    let signed = KeyPair::generate(rng).public_key;
    let signed_sig = identity.private_key().calculate_signature(&signed.serialize(), rng).unwrap();
    let kyber = kem::KeyPair::generate(kem_type, rng).public_key;
    let kyber_sig = identity.private_key().calculate_signature(&kyber.serialize(), rng).unwrap();
    PreKeyBundle::new(
        0x1234,
        DeviceId::new(1).unwrap(),
        with_prekey.then(|| (PreKeyId::from(77), pre)),
        SignedPreKeyId::from(88),
        signed,
        signed_sig.to_vec(),
        KyberPreKeyId::from(99),
        kyber,
        kyber_sig.to_vec(),
        *identity.identity_key(),
    )
    .unwrap()
}

fn wire_bundle() -> PreKeyBundleWire {
    PreKeyBundleWire::from_bundle(&make_bundle(1, kem::KeyType::MLKEM1024, true)).unwrap()
}

pub(crate) fn invite() -> Invite {
    Invite {
        relay: format!("sotto://relay.example.org:443#{PIN}").parse().unwrap(),
        send_id: SendId(std::array::from_fn(|i| 0xA0 + i as u8)),
        envelope_key: EnvelopeKey::from_bytes(std::array::from_fn(|i| i as u8)),
        invite_id: [0x11; INVITE_ID_LEN],
        suggested_name: "Amina".into(),
        bundle: wire_bundle(),
    }
}

fn assert_same(a: &Invite, b: &Invite) {
    assert_eq!(a.relay, b.relay);
    assert_eq!(a.send_id, b.send_id);
    assert_eq!(a.envelope_key.as_bytes(), b.envelope_key.as_bytes());
    assert_eq!(a.invite_id, b.invite_id);
    assert_eq!(a.suggested_name, b.suggested_name);
    assert_eq!(a.bundle, b.bundle);
}

/// Everything before the bundle is fixed by the fields above; this prefix was computed
/// independently (Python, protobuf by hand).
#[test]
fn golden_link_prefix() {
    let link = invite().to_link().unwrap();
    let want = "sotto:invite#AQpJc290dG86Ly9yZWxheS5leGFtcGxlLm9yZzo0NDMjQUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOBIYoKGio6SlpqeoqaqrrK2ur7CxsrO0tba3GiAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyIQERERERERERERERERERERESoFQW1p";
    assert!(link.starts_with(want), "{link}");
    // A typical link: ~2.7 KB, dominated by the ML-KEM-1024 key.
    assert!((2_600..2_900).contains(&link.len()), "{}", link.len());
}

#[test]
fn link_round_trips_and_bundle_survives() {
    let original = make_bundle(2, kem::KeyType::MLKEM1024, true);
    let mut inv = invite();
    inv.bundle = PreKeyBundleWire::from_bundle(&original).unwrap();
    let parsed = Invite::parse(&inv.to_link().unwrap()).unwrap();
    assert_same(&inv, &parsed);
    let back = parsed.bundle.to_bundle().unwrap();
    assert_eq!(PreKeyBundleWire::from_bundle(&back).unwrap(), inv.bundle);
    assert!(back.kyber_pre_key_public().unwrap() == original.kyber_pre_key_public().unwrap());
    assert_eq!(back.identity_key().unwrap(), original.identity_key().unwrap());
    assert_eq!(back.pre_key_public().unwrap(), original.pre_key_public().unwrap());
    // Without a one-time prekey, and with an empty name.
    inv.bundle = PreKeyBundleWire::from_bundle(&make_bundle(3, kem::KeyType::MLKEM1024, false)).unwrap();
    inv.suggested_name.clear();
    let parsed = Invite::parse(&inv.to_link().unwrap()).unwrap();
    assert_same(&inv, &parsed);
    assert!(parsed.bundle.to_bundle().unwrap().pre_key_id().unwrap().is_none());
}

#[test]
fn parsing_forgives_what_people_and_chat_apps_do() {
    let inv = invite();
    let link = inv.to_link().unwrap();
    let wrapped: String =
        link.as_bytes().chunks(60).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n");
    let (head, tail) = link.split_at(INVITE_PREFIX.len());
    for pasted in [
        format!("  {link}\n"),
        format!("<{link}>"),
        format!(" < {link} > "),
        wrapped,
        format!("{}{tail}", head.to_uppercase()),
        format!("{head}{}", tail.replacen('A', "A \r\n\t", 3)),
    ] {
        assert_same(&inv, &Invite::parse(&pasted).unwrap());
    }
}

#[test]
fn every_refusal_says_what_is_wrong() {
    use ForeignLink::*;
    let cases = [
        ("", NotAnInvite(Empty)),
        ("   ", NotAnInvite(Empty)),
        ("https://example.org/invite#AQ", NotAnInvite(WebLink)),
        ("HTTP://example.org", NotAnInvite(WebLink)),
        ("www.example.org", NotAnInvite(WebLink)),
        (&format!("sotto://relay.example.org:443#{PIN}"), NotAnInvite(RelayAddress)),
        ("sotto:invit", NotAnInvite(Other)),
        ("hello there", NotAnInvite(Other)),
        ("sotto:invite#", InviteError::Garbled(WireError::MissingField("version"))),
        ("sotto:invite#AQ=", InviteError::Garbled(WireError::Base64)),
        ("sotto:invite#A", InviteError::Garbled(WireError::Base64)),
        ("sotto:invite#AQ+/", InviteError::Garbled(WireError::Base64)),
        ("sotto:invite#AQ", InviteError::Garbled(WireError::MissingField("bundle"))),
        ("sotto:invite#Ag", InviteError::UnsupportedVersion(2)),
        ("sotto:invite#AA", InviteError::UnsupportedVersion(0)),
    ];
    use InviteError::NotAnInvite;
    for (text, want) in cases {
        assert_eq!(Invite::parse(text).unwrap_err(), want, "{text:?}");
    }
    let long = format!("sotto:invite#{}", "A".repeat(MAX_LINK_LEN));
    assert_eq!(Invite::parse(&long).unwrap_err(), InviteError::TooLong(long.len()));
    // Messages for people.
    let msg = Invite::parse("https://x.org").unwrap_err().to_string();
    assert_eq!(msg, "this is a web link, not a Sotto invite; an invite link starts with sotto:invite#");
    assert!(Invite::parse("sotto:invite#AQ").unwrap_err().to_string().contains("damaged or incomplete"));
    assert!(Invite::parse("sotto:invite#Ag").unwrap_err().to_string().contains("newer version"));
}

#[test]
fn a_link_cut_anywhere_is_garbled() {
    let link = invite().to_link().unwrap();
    for cut in INVITE_PREFIX.len() + 1..link.len() {
        match Invite::parse(&link[..cut]) {
            Err(InviteError::Garbled(_)) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

/// Builds a link from an `InviteWire` changed by `f`, to reach each field check.
fn link_with(f: impl FnOnce(&mut InviteWire)) -> String {
    let inv = invite();
    let mut wire = InviteWire {
        relay: inv.relay.to_string(),
        send_id: inv.send_id.0.to_vec(),
        envelope_key: inv.envelope_key.as_bytes().to_vec(),
        invite_id: inv.invite_id.to_vec(),
        suggested_name: inv.suggested_name.clone(),
        bundle: Some(inv.bundle.clone()),
    };
    f(&mut wire);
    let mut payload = vec![INVITE_VERSION];
    payload.extend_from_slice(&wire.encode_to_vec());
    format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(payload))
}

fn garbled(f: impl FnOnce(&mut InviteWire)) -> WireError {
    match Invite::parse(&link_with(f)) {
        Err(InviteError::Garbled(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_field_is_checked() {
    use WireError::*;
    assert_eq!(garbled(|w| w.relay = "relay.example.org".into()), RelayAddress(sotto_proto::AddressError::Scheme));
    assert!(matches!(
        garbled(|w| {
            w.send_id.pop();
        }),
        FieldLength { field: "send_id", .. }
    ));
    assert!(matches!(garbled(|w| w.envelope_key.push(0)), FieldLength { field: "envelope_key", .. }));
    assert!(matches!(garbled(|w| w.invite_id.clear()), FieldLength { field: "invite_id", .. }));
    assert!(matches!(garbled(|w| w.suggested_name = "x".repeat(257)), FieldTooLong { field: "suggested_name", .. }));
    assert_eq!(garbled(|w| w.bundle = None), MissingField("bundle"));
    let b = |f: fn(&mut PreKeyBundleWire)| garbled(|w| f(w.bundle.as_mut().unwrap()));
    assert!(matches!(b(|b| b.device_id = 0), OutOfRange { field: "bundle.device_id", value: 0 }));
    assert!(matches!(b(|b| b.device_id = 128), OutOfRange { field: "bundle.device_id", .. }));
    assert!(matches!(b(|b| b.device_id = 257), OutOfRange { field: "bundle.device_id", .. }));
    assert!(matches!(b(|b| b.identity_key.push(0)), FieldLength { field: "bundle.identity_key", .. }));
    assert_eq!(b(|b| b.identity_key[0] = 0x07), BadKey("bundle.identity_key"));
    // libsignal itself would accept (and ignore) a trailing byte here; we do not.
    assert!(matches!(b(|b| b.signed_prekey_public.push(0)), FieldLength { field: "bundle.signed_prekey_public", .. }));
    assert!(matches!(
        b(|b| b.prekey.as_mut().unwrap().public.push(0)),
        FieldLength { field: "bundle.prekey.public", .. }
    ));
    assert_eq!(b(|b| b.prekey.as_mut().unwrap().public[0] = 0), BadKey("bundle.prekey.public"));
    assert!(matches!(
        b(|b| {
            b.signed_prekey_signature.pop();
        }),
        FieldLength { field: "bundle.signed_prekey_signature", .. }
    ));
    assert!(matches!(
        b(|b| {
            b.kyber_prekey_public.pop();
        }),
        FieldLength { field: "bundle.kyber_prekey_public", .. }
    ));
    assert!(matches!(
        b(|b| b.kyber_prekey_signature.clear()),
        FieldLength { field: "bundle.kyber_prekey_signature", .. }
    ));
    assert_eq!(b(|b| b.kyber_prekey_public[0] = 0x42), BadKey("bundle.kyber_prekey_public"));
    assert!(matches!(b(|b| b.signed_prekey_signature[5] ^= 1), Bundle(_)));
    assert!(matches!(b(|b| b.kyber_prekey_public[100] ^= 1), Bundle(_)));
    assert!(matches!(b(|b| b.kyber_prekey_signature[63] ^= 0x40), Bundle(_)));
    // Unknown fields are ignored: a later v1 may add some.
    let inv = Invite::parse(&link_with(|w| w.suggested_name = "Zhang Wei 张伟".into())).unwrap();
    assert_eq!(inv.suggested_name, "Zhang Wei 张伟");
}

#[test]
fn pre_standard_kyber_is_refused() {
    let old = make_bundle(4, kem::KeyType::Kyber1024, true);
    let err = PreKeyBundleWire::from_bundle(&old).unwrap_err();
    assert_eq!(err, WireError::Bundle("the post-quantum prekey is not ML-KEM-1024"));
    let mut inv = invite();
    inv.bundle.kyber_prekey_public = old.kyber_pre_key_public().unwrap().serialize().into();
    assert!(matches!(inv.to_link(), Err(WireError::Bundle(_))));
}

#[test]
fn to_link_refuses_what_parse_would() {
    let mut inv = invite();
    inv.suggested_name = "n".repeat(MAX_SUGGESTED_NAME_BYTES + 1);
    assert!(matches!(inv.to_link(), Err(WireError::FieldTooLong { field: "suggested_name", .. })));
    inv.suggested_name = "n".repeat(MAX_SUGGESTED_NAME_BYTES);
    assert!(inv.to_link().is_ok());
}

#[test]
fn debug_prints_nothing_secret() {
    assert_eq!(format!("{:?}", invite()), "Invite { .. }");
    assert_eq!(format!("{:?}", wire_bundle()), "PreKeyBundleWire { .. }");
}

/// Reads the modules back from the text and compares them with the code.
#[test]
fn qr_code_of_a_typical_link() {
    let link = invite().to_link().unwrap();
    let text = qr_text(&link).unwrap();
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).unwrap();
    let (width, size) = (code.width(), code.width() + 2 * QR_QUIET_ZONE);
    println!(
        "link: {} bytes; QR: {:?}, {width}x{width} modules, {size} columns x {} lines",
        link.len(),
        code.version(),
        size.div_ceil(2)
    );
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    assert_eq!(lines.len(), size.div_ceil(2));
    let light = |x: usize, y: usize| {
        let c = lines[y / 2][x];
        if y % 2 == 0 { matches!(c, '█' | '▀') } else { matches!(c, '█' | '▄') }
    };
    let colors = code.to_colors();
    for y in 0..size {
        for x in 0..size {
            let inside = (QR_QUIET_ZONE..QR_QUIET_ZONE + width).contains(&x)
                && (QR_QUIET_ZONE..QR_QUIET_ZONE + width).contains(&y);
            let want_light = !inside || colors[(y - QR_QUIET_ZONE) * width + (x - QR_QUIET_ZONE)] == Color::Light;
            assert_eq!(light(x, y), want_light, "module ({x}, {y})");
        }
    }
    assert!(lines.iter().all(|l| l.len() == size));
    // Too long for any QR code: a typed error.
    assert_eq!(qr_text(&"x".repeat(3_000)), Err(WireError::QrTooLong { len: 3_000 }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(
        host in "[a-z]([a-z0-9-]{0,18}[a-z0-9])?(\\.[a-z]{2,6}){1,2}",
        port in 1u16..,
        pin: Option<[u8; 32]>,
        send_id: [u8; 24],
        key: [u8; 32],
        invite_id: [u8; 16],
        name in "\\PC{0,60}",
    ) {
        let pin = pin.map(|p| format!("#{}", URL_SAFE_NO_PAD.encode(p))).unwrap_or_default();
        let inv = Invite {
            relay: format!("sotto://{host}:{port}{pin}").parse().unwrap(),
            send_id: SendId(send_id),
            envelope_key: EnvelopeKey::from_bytes(key),
            invite_id,
            suggested_name: name,
            bundle: wire_bundle(),
        };
        prop_assume!(inv.suggested_name.len() <= MAX_SUGGESTED_NAME_BYTES);
        assert_same(&inv, &Invite::parse(&inv.to_link().unwrap()).unwrap());
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,300}") {
        let _ = Invite::parse(&text);
        let _ = Invite::parse(&format!("sotto:invite#{text}"));
    }

    #[test]
    fn parse_of_mutated_link_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = URL_SAFE_NO_PAD.decode(&invite().to_link().unwrap()[INVITE_PREFIX.len()..]).unwrap();
        for (pos, x) in flips {
            let n = bytes.len();
            bytes[pos % n] ^= x;
        }
        let _ = Invite::parse(&format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)));
    }
}
