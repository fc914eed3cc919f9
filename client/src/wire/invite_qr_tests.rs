#![allow(clippy::unwrap_used, clippy::expect_used)]

use qrcode::{EcLevel, QrCode, Version};

use super::*;
use crate::wire::invite::qr_text_with_quiet_zone;
use crate::wire::invite::tests::invite as sample_invite;

/// The pin `AAECAwQF…` (bytes 0 to 31).
const PIN: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn short(relay: &str) -> ShortInvite {
    ShortInvite::new(relay.parse().unwrap(), BlobReadId([9; 24]), Zeroizing::new([0x42; 32]))
}

/// The payload behind a compact link.
fn payload_of(link: &str) -> Vec<u8> {
    BASE32_NOPAD.decode(&link.as_bytes()[QR_INVITE_PREFIX.len()..]).unwrap()
}

fn link_of(payload: &[u8]) -> String {
    format!("{QR_INVITE_PREFIX}{}", BASE32_NOPAD.encode(payload))
}

fn error_of(link: &str) -> InviteError {
    match InviteLink::parse(link) {
        Ok(_) => panic!("{link} parsed"),
        Err(e) => e,
    }
}

fn qr_error(link: &str) -> QrInviteError {
    match error_of(link) {
        InviteError::Garbled(WireError::QrInvite(e)) => e,
        e => panic!("{link}: {e:?}"),
    }
}

/// Golden vectors, computed independently (Python's `base64.b32encode` of the payload laid
/// out by hand): the format is fixed, not whatever this code happens to write.
#[test]
fn golden_vectors() {
    let ipv4 = short(&format!("sotto://127.0.0.1:4433#{PIN}"));
    let want = "SOTTO:INVITE:AOAX6AAAAEIVCAABAIBQIBIGA4EASCQLBQGQ4DYQCEJBGFAVCYLRQGI2DMOB2HQ7BEEQSCIJBEEQSCIJBEEQSCIJBEEQ\
                SCIJBEEQSCKCIJBEEQSCIJBEEQSCIJBEEQSCIJBEEQSCIJBEEQSCIJBEEQSCII";
    assert_eq!(ipv4.to_qr_link(), want);
    let name = short("sotto://relay.example.org");
    let want = "SOTTO:INVITE:AMBRC4TFNRQXSLTFPBQW24DMMUXG64THAG5QSCIJBEEQSCIJBEEQSCIJBEEQSCIJBEEQSCIJBFBEEQSCIJBEEQSCIJBEE\
                QSCIJBEEQSCIJBEEQSCIJBEEQSCIJBEE";
    assert_eq!(name.to_qr_link(), want);
    // Read back, in any case, with what chat apps add around and inside it.
    for text in [want.to_string(), want.to_lowercase(), format!("  <{}\n{}>\n", &want[..60], &want[60..])] {
        let InviteLink::Short(s) = InviteLink::parse(&text).unwrap() else { panic!("not short") };
        assert_eq!(s.relay, name.relay);
        assert_eq!(s.read_id, BlobReadId([9; 24]));
        assert_eq!(s.key(), &[0x42; 32]);
        assert_eq!(s.to_qr_link(), want);
    }
}

#[test]
fn a_compact_link_opens_the_same_blob_as_the_short_link() {
    let invite = sample_invite();
    let (blob, key) = ShortInvite::seal(&invite, &mut rand::rng()).unwrap();
    let s = ShortInvite::new(invite.relay.clone(), BlobReadId([7; 24]), key);
    let compact = s.to_qr_link();
    assert_eq!(qr_form(&s.to_link()), compact);
    let InviteLink::Short(parsed) = InviteLink::parse(&compact).unwrap() else { panic!("not short") };
    assert_eq!(parsed.to_link(), s.to_link());
    assert_eq!(parsed.open(&blob).unwrap().to_link().unwrap(), invite.to_link().unwrap());
    // A full link is drawn as it is.
    let full = invite.to_link().unwrap();
    assert_eq!(qr_form(&full), full);
}

/// The arithmetic of `docs/END_TO_END.md`: every character is alphanumeric, so a pinned
/// relay by IPv4, IPv6 or a name of up to 20 characters makes a version 6 code (41 modules),
/// 43×22 cells with a one-module quiet zone: inside the invite popup at 80×24 (78×22).
#[test]
fn the_compact_link_makes_a_version_6_code_that_fits_80x24() {
    let alnum = |c: char| c.is_ascii_digit() || c.is_ascii_uppercase() || " $%*+-./:".contains(c);
    let cases = [
        format!("sotto://127.0.0.1:4433#{PIN}"),
        format!("sotto://[2001:db8::1]:443#{PIN}"),
        format!("sotto://relay.example.org:443#{PIN}"),
        format!("sotto://{}.org:443#{PIN}", "r".repeat(16)),
    ];
    for relay in &cases {
        let link = short(relay).to_qr_link();
        assert!(link.chars().all(alnum), "{link}");
        let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).unwrap();
        assert_eq!(code.version(), Version::Normal(6), "{relay}: {} characters", link.len());
        let drawn = qr_text_with_quiet_zone(&link, 1).unwrap();
        assert_eq!(drawn.lines().count(), 22);
        assert!(drawn.lines().all(|l| l.chars().count() == 43));
    }
    assert_eq!(short(&cases[0]).to_qr_link().len(), 167);
    // One character more than 20 in the name needs version 7 (45 modules, 24 rows).
    let long = short(&format!("sotto://{}.org:443#{PIN}", "r".repeat(17))).to_qr_link();
    let code = QrCode::with_error_correction_level(long.as_bytes(), EcLevel::L).unwrap();
    assert_eq!(code.version(), Version::Normal(7));
    // The short link, for comparison (base64url, mostly byte mode): version 8, 49 modules.
    let link = short(&cases[0]).to_link();
    let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::L).unwrap();
    assert_eq!(code.version(), Version::Normal(8), "{} characters", link.len());
}

#[test]
fn no_pin_and_every_host_kind_round_trip() {
    for relay in ["sotto://10.1.2.3:1", "sotto://[::1]:65535", "sotto://a.b", &format!("sotto://x.org#{PIN}")] {
        let s = short(relay);
        let InviteLink::Short(back) = InviteLink::parse(&s.to_qr_link()).unwrap() else { panic!("not short") };
        assert_eq!(back.relay, s.relay, "{relay}");
        assert_eq!(back.to_qr_link(), s.to_qr_link());
    }
}

#[test]
fn every_malformed_compact_link_has_its_own_error() {
    let good = payload_of(&short(&format!("sotto://127.0.0.1:4433#{PIN}")).to_qr_link());
    let with = |i: usize, b: u8| {
        let mut p = good.clone();
        p[i] = b;
        link_of(&p)
    };
    // Not base32: a letter outside the alphabet, an impossible length, trailing bits set.
    assert_eq!(qr_error(&format!("{QR_INVITE_PREFIX}AOAX1AAA")), QrInviteError::Base32);
    assert_eq!(qr_error(&format!("{QR_INVITE_PREFIX}AOA")), QrInviteError::Base32);
    assert_eq!(qr_error(&format!("{QR_INVITE_PREFIX}AB")), QrInviteError::Base32);
    assert_eq!(qr_error(&format!("{QR_INVITE_PREFIX}AOAX6AAA====")), QrInviteError::Base32);
    // Version.
    assert_eq!(error_of(QR_INVITE_PREFIX), InviteError::Garbled(WireError::MissingField("version")));
    assert_eq!(error_of(&with(0, 2)), InviteError::UnsupportedVersion(2));
    assert_eq!(error_of(&with(0, 4)), InviteError::UnsupportedVersion(4));
    // Flags.
    assert_eq!(qr_error(&with(1, 0x80)), QrInviteError::HostKind(0));
    assert_eq!(qr_error(&with(1, 0x81 | 0x04)), QrInviteError::ReservedFlags(0x04));
    assert_eq!(qr_error(&with(1, 0xFD)), QrInviteError::ReservedFlags(0x7C));
    // Cut anywhere: the field it ends in is named.
    for n in 1..good.len() {
        let e = qr_error(&link_of(&good[..n]));
        assert!(matches!(e, QrInviteError::Truncated(_)), "cut at {n}: {e:?}");
    }
    assert_eq!(qr_error(&link_of(&good[..good.len() - 1])), QrInviteError::Truncated("the blob key"));
    assert_eq!(qr_error(&link_of(&good[..7])), QrInviteError::Truncated("the port"));
    assert_eq!(qr_error(&link_of(&[&good[..], &[0, 0]].concat())), QrInviteError::TrailingBytes(2));
    // Port 0.
    let mut p = good.clone();
    p[6..8].copy_from_slice(&[0, 0]);
    assert_eq!(
        error_of(&link_of(&p)),
        InviteError::Garbled(WireError::RelayAddress(sotto_proto::AddressError::InvalidPort))
    );
    // Host names: invalid, not UTF-8, empty, and non-canonical spellings.
    let named = |name: &[u8]| {
        let mut p = vec![QR_INVITE_VERSION, HOST_NAME, u8::try_from(name.len()).unwrap()];
        p.extend_from_slice(name);
        p.extend_from_slice(&443u16.to_be_bytes());
        p.extend_from_slice(&[9; 24]);
        p.extend_from_slice(&[0x42; 32]);
        link_of(&p)
    };
    let address = |e| InviteError::Garbled(WireError::RelayAddress(e));
    assert!(InviteLink::parse(&named(b"relay.example.org")).is_ok());
    assert_eq!(error_of(&named(b"bad_host.org")), address(sotto_proto::AddressError::InvalidHost));
    assert_eq!(error_of(&named(b"r\xffy.org")), address(sotto_proto::AddressError::InvalidHost));
    assert_eq!(error_of(&named(b"")), address(sotto_proto::AddressError::MissingHost));
    assert_eq!(error_of(&named(b"a.org/x")), address(sotto_proto::AddressError::UnexpectedPart));
    for name in [&b"Relay.example.org"[..], b"relay.example.org.", b"10.0.0.1", b"[::1]"] {
        assert_eq!(qr_error(&named(name)), QrInviteError::NonCanonicalHost, "{}", String::from_utf8_lossy(name));
    }
    // Too long to be anything we made.
    let long = format!("{QR_INVITE_PREFIX}{}", "A".repeat(MAX_LINK_LEN));
    assert!(matches!(error_of(&long), InviteError::TooLong(_)));
    // Neither prefix: still told what it is.
    assert!(matches!(error_of("SOTTO:INVITEX"), InviteError::NotAnInvite(_)));
}
