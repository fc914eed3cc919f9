//! Membership as a pure function of the operation log.
//!
//! Every device keeps the set of membership operations it has seen. Membership is computed
//! by applying them in one total order, the same on every device:
//!
//! 1. the author's Lamport clock, lowest first;
//! 2. at equal clocks, by kind: Create, Add, Promote, Remove, Leave (so a removal or a
//!    departure is applied after an add or a promotion made at the same clock, and wins);
//! 3. then the author's member id, the target's member id and the operation id, bytewise.
//!
//! An operation is applied only if its author may perform it at that point of the order:
//! Create only as the first applied operation; Add, Promote and Remove only by an admin who
//! is a member; Leave by any member. Anything else is ignored (and reported). Since the
//! result depends only on the set, two devices holding the same operations agree on the
//! membership, whatever order the operations arrived in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::wire::content::{GROUP_ID_LEN, MEMBER_ID_LEN};

/// A group id: random, known only to members, never sent to a relay outside the ratchet.
pub type GroupId = [u8; GROUP_ID_LEN];
/// A member id: [`member_id`] of the group id and the member's identity key.
pub type MemberId = [u8; MEMBER_ID_LEN];
/// An operation id: random.
pub type OpId = [u8; 16];

/// Domain separation for [`member_id`].
const MEMBER_ID_DOMAIN: &[u8] = b"sotto group member v1";

/// A member's id in one group: the first 16 bytes of SHA-256 over a domain tag, the group id
/// and the member's serialized identity key. Each receiver computes it from the identity key
/// of the session a message arrived on, so nobody can act under another member's id; and it
/// differs from group to group, so ids do not link a person's groups.
pub fn member_id(group: &GroupId, identity_key: &[u8]) -> MemberId {
    let mut h = Sha256::new();
    h.update(MEMBER_ID_DOMAIN);
    h.update(group);
    h.update(identity_key);
    let digest = h.finalize();
    let mut id = [0u8; MEMBER_ID_LEN];
    id.copy_from_slice(&digest[..MEMBER_ID_LEN]);
    id
}

/// What a membership operation does. The declaration order is the tie-break at equal
/// clocks (rule 2 of the module docs); do not reorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OpKind {
    Create,
    Add,
    Promote,
    Remove,
    Leave,
}

/// Who a member is: id, identity key, and the name the member who added them suggests.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct MemberInfo {
    pub id: MemberId,
    pub identity: Vec<u8>,
    pub name: String,
}

/// One membership operation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct Op {
    pub op_id: OpId,
    pub clock: u64,
    pub author: MemberId,
    #[zeroize(skip)]
    pub kind: OpKind,
    /// The member concerned (Add, Promote, Remove).
    pub target: Option<MemberId>,
    /// Who the member is (Create: the author; Add: the target).
    pub member: Option<MemberInfo>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op").field("clock", &self.clock).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Op {
    /// The position in the total order (module docs).
    fn order_key(&self) -> (u64, OpKind, MemberId, MemberId, OpId) {
        (self.clock, self.kind, self.author, self.target.unwrap_or_default(), self.op_id)
    }
}

/// A member, as the log makes them.
#[derive(Clone, PartialEq, Eq)]
pub struct MemberState {
    pub info: MemberInfo,
    pub admin: bool,
    /// The member whose Add made them a member (the creator: themselves).
    pub added_by: MemberId,
    /// Where their effective Create or Add stands in the total order: of two members who
    /// do not know each other, the later one makes the introduction.
    pub position: usize,
}

/// The outcome of [`replay`].
#[derive(Clone, Default)]
pub struct Membership {
    pub members: BTreeMap<MemberId, MemberState>,
    /// Operations that were not applied because their author could not perform them.
    pub ignored: BTreeSet<OpId>,
}

impl Membership {
    /// Whether `id` is a member.
    pub fn is_member(&self, id: &MemberId) -> bool {
        self.members.contains_key(id)
    }

    /// Whether `id` is a member and an admin.
    pub fn is_admin(&self, id: &MemberId) -> bool {
        self.members.get(id).is_some_and(|m| m.admin)
    }
}

/// Applies `ops` in the total order and returns the membership.
pub fn replay(ops: &[Op]) -> Membership {
    let mut order: Vec<&Op> = ops.iter().collect();
    order.sort_by_key(|o| o.order_key());
    let mut m = Membership::default();
    let mut created = false;
    for (position, op) in order.into_iter().enumerate() {
        if !apply(&mut m, &mut created, op, position) {
            m.ignored.insert(op.op_id);
        }
    }
    m
}

/// Applies one operation if its author may; returns whether it was applied.
fn apply(m: &mut Membership, created: &mut bool, op: &Op, position: usize) -> bool {
    match op.kind {
        OpKind::Create => {
            let Some(info) = op.member.as_ref().filter(|i| i.id == op.author) else { return false };
            if *created {
                return false;
            }
            *created = true;
            m.members.insert(op.author, MemberState { info: info.clone(), admin: true, added_by: op.author, position });
            true
        }
        OpKind::Add => {
            let (Some(target), Some(info)) = (op.target, op.member.as_ref()) else { return false };
            if info.id != target || !m.is_admin(&op.author) {
                return false;
            }
            m.members.entry(target).or_insert_with(|| MemberState {
                info: info.clone(),
                admin: false,
                added_by: op.author,
                position,
            });
            true
        }
        OpKind::Promote => match (op.target, m.is_admin(&op.author)) {
            (Some(t), true) => match m.members.get_mut(&t) {
                Some(member) => {
                    member.admin = true;
                    true
                }
                None => false,
            },
            _ => false,
        },
        OpKind::Remove => match (op.target, m.is_admin(&op.author)) {
            (Some(t), true) => m.members.remove(&t).is_some(),
            _ => false,
        },
        OpKind::Leave => m.members.remove(&op.author).is_some(),
    }
}

/// The clock for a new operation: one more than any seen.
pub fn next_clock(ops: &[Op]) -> u64 {
    ops.iter().map(|o| o.clock).max().unwrap_or(0).saturating_add(1)
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
