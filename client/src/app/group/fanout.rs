//! Fan-out: one copy of a group operation or message per member, each encrypted over the
//! pairwise session with that member and sealed for that member's mailbox.
//!
//! All copies go into the outbox in the caller's one transaction (one commit, one sync for
//! the whole group), and the outbox is then sent pipelined (`app::flush`). The relay sees
//! only ordinary 1:1 envelopes: nothing in them names the group or says that they belong
//! together. A member this device has no session with yet (their introduction is under
//! way) gets the copy as soon as the session exists: it waits, sealed in the profile, in
//! the group's record.

use std::collections::HashMap;

use prost::Message;

use super::record::{GroupRecord, PendingCopy};
use super::state::{MemberId, Membership};
use super::{contacts_by_identity, is_ready};
use crate::app::error::AppError;
use crate::app::outgoing::{content_of, queue};
use crate::app::profile;
use crate::app::records::{Contact, ContactId};
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{Body, GroupOp};

/// Most copies one group keeps waiting for introductions to finish; beyond it a copy is
/// not kept (and counted in [`FanOutReport::not_kept`]).
pub const MAX_PENDING_COPIES: usize = 4096;

/// What a fan-out did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOutReport {
    /// Copies encrypted and put in the outbox.
    pub copies: usize,
    /// Copies waiting for a session with their member (introduction under way).
    pub waiting: usize,
    /// Copies not kept because too many were already waiting.
    pub not_kept: usize,
}

/// Encrypts and queues each `(member, op)` of `plan` in `ptxn`; members of `m` without a
/// session get a waiting copy in `g`. Members not in `m` are skipped.
pub(super) async fn fan_out(
    ptxn: &ProtocolTxn<'_>,
    g: &mut GroupRecord,
    m: &Membership,
    plan: &[(MemberId, GroupOp)],
) -> Result<FanOutReport, AppError> {
    let mut contacts = contacts_by_identity(&*ptxn.txn()?)?;
    let mut report = FanOutReport::default();
    let mut touched: HashMap<ContactId, Vec<u8>> = HashMap::new();
    for (member, op) in plan {
        let Some(state) = m.members.get(member) else { continue };
        if *member == g.me {
            continue;
        }
        match contacts.get_mut(&state.info.identity).filter(|c| is_ready(c)) {
            Some(c) => {
                send_copy(ptxn, c, op, super::timer::lifetime(g, op)).await?;
                touched.insert(c.id, state.info.identity.clone());
                report.copies += 1;
            }
            None if g.pending.len() < MAX_PENDING_COPIES => {
                g.pending.push(PendingCopy { member: *member, op: op.encode_to_vec() });
                report.waiting += 1;
            }
            None => report.not_kept += 1,
        }
    }
    let mut txn = ptxn.txn()?;
    for identity in touched.values() {
        if let Some(c) = contacts.get(identity) {
            profile::put_contact(&mut txn, c)?;
        }
    }
    Ok(report)
}

/// One copy for one contact: the next sequence number, encrypted, sealed, into the outbox.
/// `lifetime` (seconds, 0: none) travels with it; its outbox entry dies with it. The caller
/// saves the contact (its sequence number moved).
pub(super) async fn send_copy(
    ptxn: &ProtocolTxn<'_>,
    c: &mut Contact,
    op: &GroupOp,
    lifetime: u32,
) -> Result<(), AppError> {
    let seq = c.next_seq;
    c.next_seq += 1;
    let mut content = content_of(seq, Body::GroupOp(op.clone()));
    content.expire_seconds = lifetime;
    queue(ptxn, c, &content, None).await
}

/// Sends the waiting copies whose member now has a session; drops those for members who
/// left. Returns how many were sent.
pub(super) async fn send_waiting(ptxn: &ProtocolTxn<'_>, g: &mut GroupRecord) -> Result<usize, AppError> {
    if g.pending.is_empty() {
        return Ok(0);
    }
    let m = g.membership();
    let mut contacts = contacts_by_identity(&*ptxn.txn()?)?;
    let mut sent = 0;
    let mut keep = Vec::new();
    let mut touched = Vec::new();
    for p in std::mem::take(&mut g.pending) {
        let Some(state) = m.members.get(&p.member) else { continue };
        let Some(c) = contacts.get_mut(&state.info.identity).filter(|c| is_ready(c)) else {
            keep.push(p);
            continue;
        };
        // A copy that no longer decodes (it was written by this device) is dropped.
        let Ok(op) = GroupOp::decode(p.op.as_slice()) else { continue };
        send_copy(ptxn, c, &op, super::timer::lifetime(g, &op)).await?;
        touched.push(state.info.identity.clone());
        sent += 1;
    }
    g.pending = keep;
    let mut txn = ptxn.txn()?;
    for identity in touched {
        if let Some(c) = contacts.get(&identity) {
            profile::put_contact(&mut txn, c)?;
        }
    }
    Ok(sent)
}
