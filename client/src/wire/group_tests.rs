//! The fields groups added to `GroupOp`: round trips, every limit, and decoding that stays
//! total on mutated input.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use prost::Message;

use super::*;
use crate::wire::content::{
    ATTACHMENT_DIGEST_LEN, ATTACHMENT_KEY_LEN, BlobAddress, Body, CONTENT_ID_LEN, Content, MAX_CONTENT_BYTES,
    decode_content, encode_content,
};
use crate::wire::error::WireError;

fn identity(seed: u8) -> Vec<u8> {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(u64::from(seed));
    libsignal_protocol::IdentityKeyPair::generate(&mut rng).identity_key().serialize().to_vec()
}

fn member(seed: u8) -> GroupMember {
    GroupMember { member_id: vec![seed; MEMBER_ID_LEN], identity_key: identity(seed), name: format!("m{seed} 成员") }
}

fn logged(seed: u8) -> LoggedOp {
    LoggedOp {
        op_id: vec![seed; OP_ID_LEN],
        clock: u64::from(seed) + 1,
        author: vec![1; MEMBER_ID_LEN],
        kind: GroupOpKind::Add as i32,
        target: vec![seed; MEMBER_ID_LEN],
        member: Some(member(seed)),
    }
}

fn wrap(g: GroupOp) -> Content {
    Content { id: vec![3; CONTENT_ID_LEN], seq: 1, sent_at_ms: 5, expire_seconds: 0, body: Some(Body::GroupOp(g)) }
}

fn full_op() -> GroupOp {
    GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Add as i32,
        member_ids: vec![vec![2; MEMBER_ID_LEN]],
        clock: 42,
        op_id: vec![4; OP_ID_LEN],
        author: vec![1; MEMBER_ID_LEN],
        member: Some(member(2)),
        audience: vec![vec![5; MEMBER_ID_LEN]; 99],
        ..Default::default()
    }
}

fn err(g: GroupOp) -> WireError {
    decode_content(&wrap(g).encode_to_vec()).unwrap_err()
}

#[test]
fn every_new_field_round_trips() {
    let sync = GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Sync as i32,
        log: (0..MAX_SYNC_OPS as u8).map(logged).collect(),
        group_name: "ئۇيغۇر 群".into(),
        ..Default::default()
    };
    let invites = GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Invites as i32,
        invites: vec![GroupInvite { member_id: vec![6; MEMBER_ID_LEN], link: "sotto:invite#abc".into() }; 3],
        ..Default::default()
    };
    let file = GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Text as i32,
        attachment: Some(AttachmentPointer {
            blob: Some(BlobAddress { relay: "sotto://relay.example.org:443".into(), read_id: vec![1; 24] }),
            key: vec![2; ATTACHMENT_KEY_LEN],
            digest: vec![3; ATTACHMENT_DIGEST_LEN],
            size: 10,
            file_name: "a.jpg".into(),
            content_type: "image/jpeg".into(),
        }),
        ..Default::default()
    };
    for g in [full_op(), sync, invites, file] {
        let c = wrap(g);
        let bytes = encode_content(&c).unwrap();
        assert!(bytes.len() <= MAX_CONTENT_BYTES);
        assert_eq!(decode_content(&bytes).unwrap(), c);
    }
}

#[test]
fn a_full_sync_message_with_longest_names_fits_one_content() {
    let mut log: Vec<LoggedOp> = (0..MAX_SYNC_OPS as u8).map(logged).collect();
    for e in &mut log {
        e.member.as_mut().unwrap().name = "n".repeat(crate::wire::content::MAX_NAME_BYTES);
        e.clock = u64::MAX;
    }
    let g = GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Sync as i32,
        log,
        group_name: "g".repeat(crate::wire::content::MAX_NAME_BYTES),
        ..Default::default()
    };
    assert!(encode_content(&wrap(g)).is_ok());
}

#[test]
fn every_limit_is_enforced() {
    use WireError::*;
    fn with(f: impl FnOnce(&mut GroupOp)) -> GroupOp {
        let mut g = full_op();
        f(&mut g);
        g
    }
    assert!(matches!(err(with(|g| g.op_id = vec![1; 5])), FieldLength { field: "group_op.op_id", .. }));
    assert!(matches!(err(with(|g| g.author = vec![1; 17])), FieldLength { field: "group_op.author", .. }));
    assert!(matches!(
        err(with(|g| g.member.as_mut().unwrap().identity_key.pop().map(drop).unwrap_or(()))),
        FieldLength { field: "group_op.member", .. }
    ));
    // 33 bytes but not an identity key (wrong type byte).
    assert_eq!(err(with(|g| g.member.as_mut().unwrap().identity_key[0] = 0x99)), BadKey("group_op.member"));
    assert!(matches!(
        err(with(|g| g.member.as_mut().unwrap().name = "x".repeat(257))),
        FieldTooLong { field: "group_op.member", .. }
    ));
    assert!(matches!(
        err(with(|g| g.audience = vec![vec![0; MEMBER_ID_LEN]; MAX_GROUP_MEMBERS + 1])),
        FieldTooLong { field: "group_op.audience", .. }
    ));
    assert!(matches!(err(with(|g| g.audience[3].push(1))), FieldLength { field: "group_op.audience", .. }));
    assert!(matches!(
        err(with(|g| g.log = (0..=MAX_SYNC_OPS as u8).map(logged).collect())),
        FieldTooLong { field: "group_op.log", .. }
    ));
    assert!(matches!(
        err(with(|g| g.log = vec![LoggedOp { op_id: vec![1; 3], ..logged(1) }])),
        FieldLength { field: "group_op.log.op_id", .. }
    ));
    assert_eq!(
        err(with(|g| g.log = vec![LoggedOp { kind: GroupOpKind::Text as i32, ..logged(1) }])),
        UnknownEnum { field: "group_op.log.kind", value: 6 }
    );
    assert_eq!(
        err(with(|g| g.log = vec![LoggedOp { kind: 77, ..logged(1) }])),
        UnknownEnum { field: "group_op.log.kind", value: 77 }
    );
    assert!(matches!(err(with(|g| g.group_name = "x".repeat(257))), FieldTooLong { field: "group_op.group_name", .. }));
    assert!(matches!(
        err(with(|g| g.invites = vec![GroupInvite { member_id: vec![1; 16], link: String::new() }; 9])),
        FieldTooLong { field: "group_op.invites", .. }
    ));
    assert!(matches!(
        err(with(|g| g.invites = vec![GroupInvite { member_id: vec![1; 15], link: String::new() }])),
        FieldLength { field: "group_op.invites.member_id", .. }
    ));
    assert!(matches!(
        err(with(|g| g.invites = vec![GroupInvite { member_id: vec![1; 16], link: "l".repeat(8 * 1024 + 1) }])),
        FieldTooLong { field: "group_op.invites.link", .. }
    ));
    // A file only on a group message.
    let mut g = with(|g| g.kind = GroupOpKind::Add as i32);
    g.attachment = Some(AttachmentPointer::default());
    assert_eq!(err(g), UnknownEnum { field: "group_op.kind", value: GroupOpKind::Add as i32 });
    // Three invites of the largest size are too big for one Content.
    let big = GroupInvite { member_id: vec![1; 16], link: "l".repeat(8 * 1024) };
    assert!(matches!(err(with(|g| g.invites = vec![big.clone(); 3])), InputTooLong { what: "content", .. }));
}

proptest! {
    #[test]
    fn decoding_mutated_group_ops_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        which in 0usize..2,
    ) {
        let g = if which == 0 { full_op() } else {
            GroupOp { group_id: vec![9; 16], kind: GroupOpKind::Sync as i32, log: (0..4).map(logged).collect(), ..Default::default() }
        };
        let mut bytes = wrap(g).encode_to_vec();
        for (pos, x) in flips {
            let n = bytes.len();
            bytes[pos % n] ^= x;
        }
        if let Ok(c) = decode_content(&bytes) {
            prop_assert!(c.validate().is_ok());
        }
    }
}

#[test]
fn a_group_timer_round_trips_and_is_bounded() {
    let timer = GroupOp {
        group_id: vec![9; GROUP_ID_LEN],
        kind: GroupOpKind::Timer as i32,
        clock: 1_700_000_000_000,
        timer_seconds: crate::wire::content::MAX_TIMER_SECONDS,
        ..Default::default()
    };
    let back = decode_content(&wrap(timer.clone()).encode_to_vec()).unwrap();
    assert!(matches!(back.body, Some(Body::GroupOp(g)) if g == timer));
    let too_long = GroupOp { timer_seconds: crate::wire::content::MAX_TIMER_SECONDS + 1, ..timer };
    assert!(matches!(err(too_long), WireError::OutOfRange { field: "group_op.timer_seconds", .. }));
}
