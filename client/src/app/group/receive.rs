//! What an incoming [`GroupOp`] does. It runs inside the transaction that holds the new
//! ratchet state, so the group change and the decryption commit together.
//!
//! The sender is known by the pairwise session the copy arrived on: its member id is
//! computed here from that session's identity key, never taken from the message. Anything
//! that does not fit the log (an unknown group, a sender who is not a member, an operation
//! its author may not perform, a malformed entry) is ignored with a notice, never an error.

use super::GroupEvent;
use super::fanout::fan_out;
use super::record::{self, GroupRecord, HeldIntro};
use super::state::{GroupId, MemberId, Membership, OpKind, member_id};
use super::{GroupOp, MAX_GROUP_LOG, contact_identity, contacts_by_identity, display_name, my_identity, op_from_parts};
use crate::app::error::AppError;
use crate::app::incoming::Notice;
use crate::app::profile;
use crate::app::records::{Contact, ContactId};
use crate::store::signal::ProtocolTxn;
use crate::wire::content::GroupOpKind;

/// Handles a group operation from the contact `from`, sent at `sent_at_ms`.
pub(crate) async fn receive(
    ptxn: &ProtocolTxn<'_>,
    from: &ContactId,
    g: GroupOp,
    (sent_at_ms, expire_seconds): (u64, u32),
    files: &crate::files::FileSettings,
) -> Result<Vec<Notice>, AppError> {
    let (sender, identity) = {
        let txn = ptxn.txn()?;
        let Some(c) = profile::contact(&txn, from)? else { return Ok(Vec::new()) };
        let Some(identity) = contact_identity(&txn, &c)? else { return Ok(Vec::new()) };
        (c, identity)
    };
    // Checked by `decode_content`; a failure here is a bug, reported as a dropped message.
    let (Ok(gid), Ok(kind)) = (<GroupId>::try_from(g.group_id.as_slice()), GroupOpKind::try_from(g.kind)) else {
        return Ok(vec![dropped(&format!("a group message from \"{}\" was malformed", sender.name))]);
    };
    let sender_id = member_id(&gid, &identity);
    let existing = record::get(&*ptxn.txn()?, &gid)?;
    if kind == GroupOpKind::Sync {
        return on_sync(ptxn, &sender, &sender_id, &gid, existing, &g).await;
    }
    let Some(mut rec) = existing else {
        return Ok(vec![dropped(&format!("\"{}\" sent a message for a group you are not in", sender.name))]);
    };
    let before = rec.membership();
    if !before.is_member(&rec.me) {
        return Ok(vec![dropped(&format!("a message for \"{}\", which you are no longer in", rec.name))]);
    }
    let notices = match kind {
        GroupOpKind::Text => {
            on_text(ptxn, &mut rec, &before, (&sender, &sender_id), g, (sent_at_ms, expire_seconds, files))?
        }
        GroupOpKind::Timer => super::timer::on_timer(&mut rec, &before, (&sender, &sender_id), &g),
        GroupOpKind::Invites => on_invites(ptxn, &mut rec, &before, &sender, &sender_id, &g).await?,
        GroupOpKind::Introduce => on_introduce(ptxn, &mut rec, &before, &sender, &sender_id, &g)?,
        _ => on_op(ptxn, &mut rec, &before, &sender, &sender_id, &g).await?,
    };
    record::put(&mut *ptxn.txn()?, &rec)?;
    Ok(notices)
}

fn on_text(
    ptxn: &ProtocolTxn<'_>,
    rec: &mut GroupRecord,
    m: &Membership,
    (sender, sender_id): (&Contact, &MemberId),
    g: GroupOp,
    (sent_at_ms, expire_seconds, files): (u64, u32, &crate::files::FileSettings),
) -> Result<Vec<Notice>, AppError> {
    if !m.is_member(sender_id) {
        return Ok(vec![group(rec, GroupEvent::NotAMember { name: sender.name.clone() })]);
    }
    let expires = super::timer::received_expiry(&*ptxn.txn()?, rec, expire_seconds);
    if let Some(pointer) = &g.attachment {
        let when = (sent_at_ms, expires);
        return Ok(vec![super::files::on_file(ptxn, rec, sender, pointer, (g.text.clone(), when), files)?]);
    }
    let entry = record::GroupEntry {
        outgoing: false,
        from: sender.name.clone(),
        text: g.text.clone(),
        file_name: None,
        sent_at_ms,
        file_note: None,
    };
    record::put_entry(&mut *ptxn.txn()?, rec, &entry, expires)?;
    Ok(vec![Notice::GroupMessage {
        group: rec.name.clone(),
        from: sender.name.clone(),
        text: g.text,
        file_name: None,
        sent_at_ms,
    }])
}

/// A membership operation, from its author or passed on by an admin.
async fn on_op(
    ptxn: &ProtocolTxn<'_>,
    rec: &mut GroupRecord,
    before: &Membership,
    sender: &Contact,
    sender_id: &MemberId,
    g: &GroupOp,
) -> Result<Vec<Notice>, AppError> {
    let Ok(kind) = GroupOpKind::try_from(g.kind) else { return Ok(Vec::new()) };
    let target = g.member_ids.first().map(Vec::as_slice);
    let Some(op) = op_from_parts(&rec.id, &g.op_id, g.clock, &g.author, kind, target, g.member.as_ref()) else {
        return Ok(vec![group(rec, GroupEvent::Malformed { name: sender.name.clone() })]);
    };
    if rec.knows(&op.op_id) {
        return Ok(Vec::new());
    }
    if op.author != *sender_id && !before.is_admin(sender_id) {
        return Ok(vec![group(rec, GroupEvent::NotAllowed { name: sender.name.clone() })]);
    }
    if rec.ops.len() >= MAX_GROUP_LOG {
        return Ok(vec![group(rec, GroupEvent::LogFull)]);
    }
    rec.ops.push(op.clone());
    let after = rec.membership();
    let mut notices = describe(ptxn, rec, before, &after)?;
    if after.ignored.contains(&op.op_id) && notices.is_empty() {
        notices.push(group(rec, GroupEvent::NotAllowed { name: sender.name.clone() }));
    }
    // Pass it on to members its author did not know of (added concurrently), so every
    // device ends up with the same operations. Only admins do this.
    if after.is_admin(&rec.me) && op.author != rec.me {
        let known: Vec<MemberId> = g.audience.iter().filter_map(|a| a.as_slice().try_into().ok()).collect();
        let missing: Vec<MemberId> = after
            .members
            .keys()
            .chain(op.target.iter())
            .copied()
            .filter(|k| *k != rec.me && *k != op.author && *k != *sender_id && !known.contains(k))
            .collect();
        if !missing.is_empty() {
            let mut passed = g.clone();
            passed.audience.extend(missing.iter().map(|k| k.to_vec()));
            passed.audience.push(rec.me.to_vec());
            let plan: Vec<_> = missing.iter().map(|k| (*k, passed.clone())).collect();
            // The target of a removal is no longer in `after`, but must hear of it.
            let audience_state = if before.members.len() > after.members.len() { before } else { &after };
            fan_out(ptxn, rec, audience_state, &plan).await?;
        }
    }
    record::set_followup(&mut *ptxn.txn()?);
    Ok(notices)
}

/// Entries of the log, from the member who added this device (or an admin).
async fn on_sync(
    ptxn: &ProtocolTxn<'_>,
    sender: &Contact,
    sender_id: &MemberId,
    gid: &GroupId,
    existing: Option<GroupRecord>,
    g: &GroupOp,
) -> Result<Vec<Notice>, AppError> {
    let mut rec = match existing {
        Some(r) => r,
        None => {
            let txn = ptxn.txn()?;
            let name = record::unique_name(&txn, &g.group_name)?;
            let me = member_id(gid, &my_identity(&txn)?);
            GroupRecord {
                id: *gid,
                name,
                me,
                ops: Vec::new(),
                pending: Vec::new(),
                invited: Vec::new(),
                intros: Vec::new(),
                next_local: 0,
                timer_secs: 0,
                timer_set_at_ms: 0,
            }
        }
    };
    let before = rec.membership();
    // Once this device is a member, only admins may send it log entries.
    if before.is_member(&rec.me) && !before.is_admin(sender_id) {
        return Ok(vec![group(&rec, GroupEvent::NotAllowed { name: sender.name.clone() })]);
    }
    let mut malformed = false;
    for e in &g.log {
        let kind = GroupOpKind::try_from(e.kind).unwrap_or(GroupOpKind::Unspecified);
        let Some(op) = op_from_parts(&rec.id, &e.op_id, e.clock, &e.author, kind, Some(&e.target), e.member.as_ref())
        else {
            malformed = true;
            continue;
        };
        if !rec.knows(&op.op_id) && rec.ops.len() < MAX_GROUP_LOG {
            rec.ops.push(op);
        }
    }
    // The group's timer setting travels with the log (from an admin, or to a newcomer).
    super::timer::apply(&mut rec, g.clock, g.timer_seconds);
    let after = rec.membership();
    let mut notices = Vec::new();
    if malformed {
        notices.push(group(&rec, GroupEvent::Malformed { name: sender.name.clone() }));
    }
    if !before.is_member(&rec.me) && after.is_member(&rec.me) {
        notices.push(group(&rec, GroupEvent::AddedYou { by: sender.name.clone() }));
    } else if before.is_member(&rec.me) {
        notices.extend(describe(ptxn, &rec, &before, &after)?);
    }
    let mut txn = ptxn.txn()?;
    record::put(&mut txn, &rec)?;
    record::set_followup(&mut txn);
    Ok(notices)
}

/// Invites a new member made for members it does not know: passed on, each to its member.
async fn on_invites(
    ptxn: &ProtocolTxn<'_>,
    rec: &mut GroupRecord,
    m: &Membership,
    sender: &Contact,
    sender_id: &MemberId,
    g: &GroupOp,
) -> Result<Vec<Notice>, AppError> {
    let Some(new_member) = m.members.get(sender_id) else {
        return Ok(vec![group(rec, GroupEvent::NotAMember { name: sender.name.clone() })]);
    };
    let mut plan = Vec::new();
    for inv in &g.invites {
        let Ok(target) = <MemberId>::try_from(inv.member_id.as_slice()) else { continue };
        if target == *sender_id || target == rec.me || !m.is_member(&target) {
            continue;
        }
        let introduce = GroupOp {
            group_id: rec.id.to_vec(),
            kind: GroupOpKind::Introduce as i32,
            member: Some(super::member_to_wire(&new_member.info)),
            invites: vec![crate::wire::group::GroupInvite { member_id: sender_id.to_vec(), link: inv.link.clone() }],
            ..Default::default()
        };
        plan.push((target, introduce));
    }
    fan_out(ptxn, rec, m, &plan).await?;
    Ok(Vec::new())
}

/// An introduction: kept, and accepted by the follow-up work (it needs the network).
fn on_introduce(
    ptxn: &ProtocolTxn<'_>,
    rec: &mut GroupRecord,
    m: &Membership,
    sender: &Contact,
    sender_id: &MemberId,
    g: &GroupOp,
) -> Result<Vec<Notice>, AppError> {
    if !m.is_member(sender_id) {
        return Ok(vec![group(rec, GroupEvent::NotAMember { name: sender.name.clone() })]);
    }
    for inv in &g.invites {
        let Ok(member) = <MemberId>::try_from(inv.member_id.as_slice()) else { continue };
        let room = rec.intros.len() < super::MAX_GROUP_SIZE;
        if member != rec.me && room && !rec.intros.iter().any(|h| h.member == member) {
            rec.intros.push(HeldIntro { member, link: inv.link.clone() });
        }
    }
    record::set_followup(&mut *ptxn.txn()?);
    Ok(Vec::new())
}

/// Notices for what changed between two memberships.
fn describe(
    ptxn: &ProtocolTxn<'_>,
    rec: &GroupRecord,
    before: &Membership,
    after: &Membership,
) -> Result<Vec<Notice>, AppError> {
    let txn = ptxn.txn()?;
    let contacts = contacts_by_identity(&txn)?;
    let mut out = Vec::new();
    let name_of = |s: &super::state::MemberState| display_name(&txn, &contacts, &s.info.identity, &s.info.name);
    for (id, s) in &after.members {
        match before.members.get(id) {
            None => out.push(group(rec, GroupEvent::Added { name: name_of(s)? })),
            Some(b) if s.admin && !b.admin => out.push(group(rec, GroupEvent::Promoted { name: name_of(s)? })),
            Some(_) => {}
        }
    }
    for (id, s) in &before.members {
        if !after.is_member(id) {
            if *id == rec.me {
                out.push(group(rec, GroupEvent::RemovedYou));
            } else {
                let left = rec.ops.iter().any(|o| o.kind == OpKind::Leave && o.author == *id);
                let name = name_of(s)?;
                out.push(group(rec, if left { GroupEvent::Left { name } } else { GroupEvent::Removed { name } }));
            }
        }
    }
    Ok(out)
}

fn group(rec: &GroupRecord, event: GroupEvent) -> Notice {
    Notice::Group { group: rec.name.clone(), event }
}

fn dropped(reason: &str) -> Notice {
    Notice::Dropped { reason: reason.to_string() }
}
