//! The ordering rule: devices that hold the same operations agree, whatever the arrival
//! order; the documented tie-breaks and authorisation hold.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

const G: GroupId = [7; 16];

fn info(n: u8) -> MemberInfo {
    let identity = vec![5, n, n, n];
    MemberInfo { id: member_id(&G, &identity), identity, name: format!("m{n}") }
}

fn id(n: u8) -> MemberId {
    info(n).id
}

fn op(clock: u64, author: u8, kind: OpKind, target: Option<u8>, salt: u8) -> Op {
    let member = match kind {
        OpKind::Create => Some(info(author)),
        OpKind::Add => target.map(info),
        _ => None,
    };
    Op { op_id: [salt; 16], clock, author: id(author), kind, target: target.map(id), member }
}

fn members(m: &Membership) -> Vec<(MemberId, bool)> {
    m.members.iter().map(|(k, v)| (*k, v.admin)).collect()
}

#[test]
fn creator_is_admin_and_adds() {
    let log = vec![op(1, 0, OpKind::Create, None, 1), op(2, 0, OpKind::Add, Some(1), 2)];
    let m = replay(&log);
    assert!(m.is_admin(&id(0)));
    assert!(m.is_member(&id(1)) && !m.is_admin(&id(1)));
    assert_eq!(m.members[&id(1)].added_by, id(0));
    assert!(m.ignored.is_empty());
}

#[test]
fn non_admins_cannot_add_remove_or_promote() {
    let log = vec![
        op(1, 0, OpKind::Create, None, 1),
        op(2, 0, OpKind::Add, Some(1), 2),
        op(3, 1, OpKind::Add, Some(2), 3),
        op(3, 1, OpKind::Remove, Some(0), 4),
        op(3, 1, OpKind::Promote, Some(1), 5),
    ];
    let m = replay(&log);
    assert_eq!(m.members.len(), 2);
    assert!(!m.is_admin(&id(1)));
    assert_eq!(m.ignored, [[3; 16], [4; 16], [5; 16]].into_iter().collect());
}

#[test]
fn removal_wins_over_add_at_equal_clocks() {
    // Two admins: 0 adds 2 while 1 removes 2, both at clock 5.
    let base = vec![
        op(1, 0, OpKind::Create, None, 1),
        op(2, 0, OpKind::Add, Some(1), 2),
        op(3, 0, OpKind::Promote, Some(1), 3),
        op(4, 0, OpKind::Add, Some(2), 4),
    ];
    let mut log = base.clone();
    log.push(op(5, 1, OpKind::Remove, Some(2), 5));
    log.push(op(5, 0, OpKind::Add, Some(2), 6));
    assert!(!replay(&log).is_member(&id(2)));
    // A later add (higher clock) brings them back.
    log.push(op(6, 0, OpKind::Add, Some(2), 7));
    assert!(replay(&log).is_member(&id(2)));
}

#[test]
fn a_removed_admin_can_do_nothing_after_its_removal() {
    let log = vec![
        op(1, 0, OpKind::Create, None, 1),
        op(2, 0, OpKind::Add, Some(1), 2),
        op(3, 0, OpKind::Promote, Some(1), 3),
        op(4, 0, OpKind::Remove, Some(1), 4),
        // 1 did not know yet, and added 3 at a later clock: ignored.
        op(6, 1, OpKind::Add, Some(3), 5),
    ];
    let m = replay(&log);
    assert!(!m.is_member(&id(1)) && !m.is_member(&id(3)));
    assert!(m.ignored.contains(&[5; 16]));
}

#[test]
fn a_second_create_and_a_forged_member_are_ignored() {
    let mut forged = op(2, 0, OpKind::Add, Some(1), 3);
    forged.member = Some(info(2)); // says target 1, describes 2
    let log = vec![op(1, 0, OpKind::Create, None, 1), op(1, 5, OpKind::Create, None, 2), forged];
    let m = replay(&log);
    assert_eq!(m.members.len(), 1);
    assert!(m.is_admin(&id(0)) || m.is_admin(&id(5)));
    assert_eq!(m.ignored.len(), 2);
}

#[test]
fn leave_removes_the_author_only() {
    let log = vec![
        op(1, 0, OpKind::Create, None, 1),
        op(2, 0, OpKind::Add, Some(1), 2),
        op(3, 1, OpKind::Leave, None, 3),
        op(3, 4, OpKind::Leave, None, 4),
    ];
    let m = replay(&log);
    assert_eq!(m.members.len(), 1);
    assert!(m.ignored.contains(&[4; 16]));
}

fn arb_op() -> impl Strategy<Value = Op> {
    (1u64..8, 0u8..5, 0usize..5, 0u8..5, any::<u8>()).prop_map(|(clock, author, kind, target, salt)| {
        let kind = [OpKind::Create, OpKind::Add, OpKind::Promote, OpKind::Remove, OpKind::Leave][kind];
        op(clock, author, kind, Some(target), salt)
    })
}

proptest! {
    /// Devices that received the same operations in different orders, with duplicates,
    /// hold the same membership.
    #[test]
    fn same_operations_same_membership(
        ops in proptest::collection::vec(arb_op(), 1..40),
        seed in any::<u64>(),
    ) {
        let mut a = vec![op(0, 0, OpKind::Create, None, 0)];
        // Operation ids are unique (random in real use).
        a.extend(ops.iter().cloned().enumerate().map(|(i, mut o)| { o.op_id = [0; 16]; o.op_id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes()); o }));
        let mut b = a.clone();
        // A deterministic shuffle, then duplicates, as a device that got some twice.
        let n = b.len();
        for i in 0..n {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % n as u64) as usize;
            b.swap(i, j);
        }
        let dup: Vec<Op> = b.iter().take(3).cloned().collect();
        b.extend(dup);
        let dedup = |mut v: Vec<Op>| { v.sort_by_key(|o| o.op_id); v.dedup_by_key(|o| o.op_id); v };
        prop_assert_eq!(members(&replay(&dedup(a))), members(&replay(&dedup(b))));
    }
}
