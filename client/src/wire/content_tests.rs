//! Tests of `Content`: golden bytes, every check, Unicode kept byte for byte, and proptest
//! round trips and fuzzing of the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use sotto_proto::{BlobReadId, RelayAddress, SendId};

use super::*;
use crate::wire::envelope::EnvelopeKey;

const PIN: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn relay() -> RelayAddress {
    format!("sotto://relay.example.org:443#{PIN}").parse().unwrap()
}

fn ed_key(seed: u8) -> Vec<u8> {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32]).verifying_key().to_bytes().to_vec()
}

fn mailbox_address() -> MailboxAddress {
    MailboxAddress::new(&relay(), &SendId([7; 24]), &EnvelopeKey::from_bytes([9; 32]))
}

fn content(body: Body) -> Content {
    Content { id: (0..16).collect(), seq: 7, sent_at_ms: 1_700_000_000_000, expire_seconds: 0, body: Some(body) }
}

fn text(s: &str) -> Content {
    content(Body::Text(Text { text: s.to_owned() }))
}

fn one_of_each() -> Vec<Content> {
    let attachment = AttachmentPointer {
        blob: Some(BlobAddress::new(&relay(), &BlobReadId([3; 24]))),
        key: vec![4; ATTACHMENT_KEY_LEN],
        digest: vec![5; ATTACHMENT_DIGEST_LEN],
        size: 123_456,
        file_name: "protest.jpg".into(),
        content_type: "image/jpeg".into(),
    };
    let group = GroupOp {
        group_id: vec![1; GROUP_ID_LEN],
        kind: GroupOpKind::Add as i32,
        member_ids: vec![vec![2; MEMBER_ID_LEN]; 3],
        text: String::new(),
        ..Default::default()
    };
    vec![
        text("hello"),
        content(Body::Hello(Hello {
            invite_id: vec![1; INVITE_ID_LEN],
            reply: Some(mailbox_address()),
            sender_key: ed_key(1),
            profile_name: "Amina".into(),
        })),
        content(Body::Welcome(Welcome { sender_key: ed_key(2), profile_name: String::new() })),
        content(Body::Attachment(attachment)),
        content(Body::GroupOp(group)),
        content(Body::Receipt(Receipt { ids: vec![vec![8; CONTENT_ID_LEN]; 5] })),
        content(Body::Rotation(Rotation { new_address: Some(mailbox_address()) })),
        content(Body::ProfileName(ProfileName { name: "Тенгиз".into() })),
        content(Body::Timer(Timer { seconds: 86_400 })),
    ]
}

/// Hand-encoded (independently, in Python) protobuf of a text message.
#[test]
fn golden_text_encoding() {
    let c = text("héllo 世界 ئۇيغۇرچە");
    let want = "0a10000102030405060708090a0b0c0d0e0f10071880d095ffbc3152200a1e68c3a96c6c6f20e4b896e7958c20d8a6db87d98ad8badb87d8b1da86db95";
    assert_eq!(hex::encode(encode_content(&c).unwrap()), want);
    assert_eq!(decode_content(&hex::decode(want).unwrap()).unwrap(), c);
}

#[test]
fn every_body_round_trips() {
    for c in one_of_each() {
        let bytes = encode_content(&c).unwrap();
        assert_eq!(bytes, c.encode_to_vec());
        assert_eq!(decode_content(&bytes).unwrap(), c, "{c:?}");
    }
}

#[test]
fn unicode_in_any_script_is_kept_byte_for_byte() {
    let samples = [
        "我们明天在老地方见。请删除这条消息。",           // Chinese
        "ئەسسالامۇ ئەلەيكۇم، ئەتە كۆرۈشەيلى",              // Uyghur (Arabic script)
        "བཀྲ་ཤིས་བདེ་ལེགས། ཁྱེད་རང་སྐུ་གཟུགས་བདེ་པོ་ཡིན་པས།",         // Tibetan, stacked consonants
        "שלום עולם and مرحبا mixed with LTR",             // RTL and LTR mixed
        "\u{202E}txet desrever\u{202C} \u{200F}\u{200E}", // bidi controls
        "👩🏽‍💻👨‍👩‍👧‍👦🏳️‍🌈🇹🇼🇨🇳 ❤️‍🔥",                                  // ZWJ sequences, flags, skin tones
        "e\u{301} é a\u{30A}\u{323} ñ n\u{303}",          // combining marks, NFC next to NFD
        "\u{FEFF}BOM \0 NUL \u{FFFD} \u{10FFFF} \t\r\n",  // BOM, NUL, replacement, max scalar
        "ཨོཾ་མ་ཎི་པདྨེ་ཧཱུྃ  ᠮᠣᠩᠭᠣᠯ ᠪᠢᠴᠢᠭ",                       // Tibetan mantra, vertical Mongolian
        "",
    ];
    for s in samples {
        let bytes = encode_content(&text(s)).unwrap();
        let Some(Body::Text(t)) = decode_content(&bytes).unwrap().body else { panic!("not text") };
        assert_eq!(t.text.as_bytes(), s.as_bytes());
    }
    // The longest text allowed, in four-byte characters.
    let max = "𝄞".repeat(MAX_TEXT_BYTES / 4);
    assert_eq!(max.len(), MAX_TEXT_BYTES);
    let bytes = encode_content(&text(&max)).unwrap();
    assert!(bytes.len() <= MAX_CONTENT_BYTES);
    assert_eq!(decode_content(&bytes).unwrap(), text(&max));
}

fn err(c: &Content) -> WireError {
    let e = c.validate().unwrap_err();
    assert_eq!(decode_content(&c.encode_to_vec()).unwrap_err(), e);
    assert_eq!(encode_content(c).unwrap_err(), e);
    e
}

fn with(i: usize, f: impl FnOnce(&mut Body)) -> Content {
    let mut c = one_of_each().swap_remove(i);
    f(c.body.as_mut().unwrap());
    c
}

#[test]
fn every_check_has_its_error() {
    use WireError::*;
    let mut c = text("x");
    c.id.pop();
    assert_eq!(err(&c), FieldLength { field: "id", len: 15, want: 16 });
    c.body = None;
    c.id.push(0);
    assert_eq!(err(&c), NoBody);
    let long = "a".repeat(MAX_TEXT_BYTES + 1);
    assert_eq!(err(&text(&long)), FieldTooLong { field: "text", len: MAX_TEXT_BYTES + 1, max: MAX_TEXT_BYTES });

    let hello = |f: fn(&mut Hello)| {
        with(1, |b| {
            if let Body::Hello(h) = b {
                f(h)
            }
        })
    };
    assert!(matches!(err(&hello(|h| h.invite_id.push(0))), FieldLength { field: "hello.invite_id", .. }));
    assert_eq!(err(&hello(|h| h.reply = None)), MissingField("hello.reply"));
    let bad_relay = hello(|h| h.reply.as_mut().unwrap().relay = "https://relay.example.org".into());
    assert_eq!(err(&bad_relay), RelayAddress(sotto_proto::AddressError::Scheme));
    assert!(matches!(
        err(&hello(|h| {
            h.reply.as_mut().unwrap().send_id.pop();
        })),
        FieldLength { field: "send_id", .. }
    ));
    assert!(matches!(
        err(&hello(|h| h.reply.as_mut().unwrap().envelope_key.push(1))),
        FieldLength { field: "envelope_key", .. }
    ));
    assert!(matches!(err(&hello(|h| h.sender_key.truncate(31))), FieldLength { field: "hello.sender_key", .. }));
    // Not a point on the curve (y = 2 has no x).
    let mut off_curve = vec![0u8; 32];
    off_curve[0] = 2;
    assert!(ed25519_dalek::VerifyingKey::from_bytes(&off_curve.clone().try_into().unwrap()).is_err());
    let c = with(1, |b| {
        if let Body::Hello(h) = b {
            h.sender_key = off_curve.clone()
        }
    });
    assert_eq!(err(&c), BadKey("hello.sender_key"));
    let c = hello(|h| h.profile_name = "n".repeat(MAX_NAME_BYTES + 1));
    assert!(matches!(err(&c), FieldTooLong { field: "hello.profile_name", .. }));

    let c = with(2, |b| {
        if let Body::Welcome(w) = b {
            w.sender_key.clear()
        }
    });
    assert!(matches!(err(&c), FieldLength { field: "welcome.sender_key", len: 0, .. }));

    let att = |f: fn(&mut AttachmentPointer)| {
        with(3, |b| {
            if let Body::Attachment(a) = b {
                f(a)
            }
        })
    };
    assert_eq!(err(&att(|a| a.blob = None)), MissingField("attachment.blob"));
    assert!(matches!(
        err(&att(|a| a.blob.as_mut().unwrap().read_id.clear())),
        FieldLength { field: "blob.read_id", .. }
    ));
    assert!(matches!(
        err(&att(|a| {
            a.key.pop();
        })),
        FieldLength { field: "attachment.key", .. }
    ));
    assert!(matches!(err(&att(|a| a.digest.clear())), FieldLength { field: "attachment.digest", .. }));
    assert!(matches!(err(&att(|a| a.size = u64::MAX)), OutOfRange { field: "attachment.size", .. }));
    assert!(matches!(err(&att(|a| a.file_name = "f".repeat(300))), FieldTooLong { field: "attachment.file_name", .. }));
    assert!(matches!(
        err(&att(|a| a.content_type = "t".repeat(256))),
        FieldTooLong { field: "attachment.content_type", .. }
    ));

    let grp = |f: fn(&mut GroupOp)| {
        with(4, |b| {
            if let Body::GroupOp(g) = b {
                f(g)
            }
        })
    };
    assert!(matches!(err(&grp(|g| g.group_id.clear())), FieldLength { field: "group_op.group_id", .. }));
    assert_eq!(err(&grp(|g| g.kind = 0)), MissingField("group_op.kind"));
    assert_eq!(err(&grp(|g| g.kind = 99)), UnknownEnum { field: "group_op.kind", value: 99 });
    assert!(matches!(err(&grp(|g| g.member_ids[1].push(0))), FieldLength { field: "group_op.member_ids", .. }));
    let c = grp(|g| g.member_ids = vec![vec![0; MEMBER_ID_LEN]; MAX_GROUP_MEMBERS + 1]);
    assert!(matches!(err(&c), FieldTooLong { field: "group_op.member_ids", .. }));
    // Each part within its limit, the whole too big for an envelope.
    let c = grp(|g| {
        g.member_ids = vec![vec![0; MEMBER_ID_LEN]; MAX_GROUP_MEMBERS];
        g.text = "t".repeat(MAX_TEXT_BYTES);
    });
    assert!(matches!(err(&c), InputTooLong { what: "content", .. }));

    let c = with(5, |b| {
        if let Body::Receipt(r) = b {
            r.ids.push(vec![1; 17])
        }
    });
    assert!(matches!(err(&c), FieldLength { field: "receipt.ids", len: 17, .. }));
    let c = with(5, |b| {
        if let Body::Receipt(r) = b {
            r.ids = vec![vec![0; 16]; MAX_RECEIPT_IDS + 1]
        }
    });
    assert!(matches!(err(&c), FieldTooLong { field: "receipt.ids", .. }));
    let c = with(6, |b| {
        if let Body::Rotation(r) = b {
            r.new_address = None
        }
    });
    assert_eq!(err(&c), MissingField("rotation.new_address"));
    let c = with(7, |b| {
        if let Body::ProfileName(p) = b {
            p.name = "名".repeat(86)
        }
    });
    assert!(matches!(err(&c), FieldTooLong { field: "profile_name.name", len: 258, .. }));
    let c = with(8, |b| {
        if let Body::Timer(t) = b {
            t.seconds = MAX_TIMER_SECONDS + 1
        }
    });
    assert!(matches!(err(&c), OutOfRange { field: "timer.seconds", .. }));
}

#[test]
fn malformed_bytes_have_typed_errors() {
    let too_long = vec![0u8; MAX_CONTENT_BYTES + 1];
    assert!(matches!(decode_content(&too_long), Err(WireError::InputTooLong { .. })));
    // Text that is not UTF-8.
    let mut bytes = text("abc").encode_to_vec();
    let n = bytes.len();
    bytes[n - 1] = 0xFF;
    assert!(matches!(decode_content(&bytes), Err(WireError::Protobuf(_))));
    // Truncated anywhere: an error, never a panic.
    let good = one_of_each()[1].encode_to_vec();
    for cut in 0..good.len() {
        assert!(decode_content(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A body from a later version (field 99) is "nothing understood"; unknown plain fields are
    // ignored.
    let mut future = text("x").encode_to_vec();
    let unknown_body = [0x9A, 0x06, 0x01, 0x00]; // field 99, length-delimited, 1 byte
    let mut head = text("x");
    head.body = None;
    let only_future = [&head.encode_to_vec()[..], &unknown_body[..]].concat();
    assert_eq!(decode_content(&only_future), Err(WireError::NoBody));
    future.extend_from_slice(&[0xA0, 0x06, 0x05]); // field 100, varint 5
    assert_eq!(decode_content(&future).unwrap(), text("x"));
}

#[test]
fn debug_prints_no_content() {
    for c in one_of_each() {
        let shown = format!("{c:?}");
        for secret in ["hello", "Amina", "protest", "relay", "Тенгиз", "[9, 9"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    assert_eq!(format!("{:?}", text("secret")), "Content { seq: 7, body: Some(Text), .. }");
    let parts = mailbox_address().to_parts().unwrap();
    assert_eq!(parts.0, relay());
    assert_eq!(parts.1, SendId([7; 24]));
    assert_eq!(parts.2.as_bytes(), &[9; 32]);
    assert_eq!(new_content_id(&mut rand::rng()).len(), CONTENT_ID_LEN);
}

fn arb_body() -> impl Strategy<Value = Body> {
    let bytes = |n: usize| proptest::collection::vec(any::<u8>(), n);
    let name = || "\\PC{0,60}";
    let address = || {
        (bytes(24), bytes(32)).prop_map(|(s, k)| MailboxAddress {
            relay: relay().to_string(),
            send_id: s,
            envelope_key: k,
        })
    };
    prop_oneof![
        "\\PC{0,3000}".prop_map(|text| Body::Text(Text { text })),
        (bytes(16), address(), any::<u8>(), name()).prop_map(|(invite_id, reply, seed, profile_name)| Body::Hello(
            Hello { invite_id, reply: Some(reply), sender_key: ed_key(seed), profile_name }
        )),
        (any::<u8>(), name())
            .prop_map(|(seed, profile_name)| Body::Welcome(Welcome { sender_key: ed_key(seed), profile_name })),
        (bytes(24), bytes(32), bytes(32), 0..=MAX_BLOB_SIZE, name(), "[a-z]{1,20}/[a-z0-9.+-]{1,40}").prop_map(
            |(read_id, key, digest, size, file_name, content_type)| Body::Attachment(AttachmentPointer {
                blob: Some(BlobAddress { relay: relay().to_string(), read_id }),
                key,
                digest,
                size,
                file_name,
                content_type,
            })
        ),
        (bytes(16), 1..=9i32, proptest::collection::vec(bytes(16), 0..40), "\\PC{0,200}").prop_map(
            |(group_id, kind, member_ids, text)| {
                Body::GroupOp(GroupOp { group_id, kind, member_ids, text, ..Default::default() })
            }
        ),
        proptest::collection::vec(bytes(16), 0..MAX_RECEIPT_IDS).prop_map(|ids| Body::Receipt(Receipt { ids })),
        address().prop_map(|a| Body::Rotation(Rotation { new_address: Some(a) })),
        name().prop_map(|name| Body::ProfileName(ProfileName { name })),
        (0..=MAX_TIMER_SECONDS).prop_map(|seconds| Body::Timer(Timer { seconds })),
    ]
}

proptest! {
    #[test]
    fn round_trip(
        id in proptest::collection::vec(any::<u8>(), 16),
        seq: u64,
        sent_at_ms: u64,
        expire_seconds in 0..=MAX_TIMER_SECONDS,
        body in arb_body(),
    ) {
        let c = Content { id, seq, sent_at_ms, expire_seconds, body: Some(body) };
        let bytes = encode_content(&c).unwrap();
        prop_assert!(bytes.len() <= MAX_CONTENT_BYTES);
        prop_assert_eq!(decode_content(&bytes).unwrap(), c);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let _ = decode_content(&bytes);
    }

    #[test]
    fn decode_of_mutated_content_never_panics(i in 0usize..9, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = one_of_each()[i].encode_to_vec();
        for (pos, x) in flips {
            let n = bytes.len();
            bytes[pos % n] ^= x;
        }
        if let Ok(c) = decode_content(&bytes) {
            prop_assert!(c.validate().is_ok());
        }
    }
}
