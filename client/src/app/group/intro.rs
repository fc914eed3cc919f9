//! Introductions between members who are not contacts, and the other group work that needs
//! the network (making mailboxes), done after the transaction that received the cause.
//!
//! Of two members who do not know each other, the one added later in the log's total order
//! (the "newcomer") makes a one-time invite (fresh mailbox, fresh prekey bundle, as
//! `sotto invite` does) for the other, bound to that member's identity key, and sends it in
//! an `Invites` message to the member who added it. That member passes it on in an
//! `Introduce` message over its session with the other member, who checks that the bundle's
//! identity key is the one the log gives for the newcomer and accepts it like an invite link
//! (PQXDH, its own fresh mailbox, `Hello`). The newcomer's device accepts that `Hello` only
//! under the identity key it was told to expect. Every step is an ordinary message through
//! the relay's queues, so each side can be offline while the others act.

use super::fanout::{fan_out, send_waiting};
use super::record::{self, GroupRecord};
use super::state::{GroupId, MemberId, MemberInfo, Membership};
use super::{GroupEvent, contacts_by_identity, is_ready};
use libsignal_protocol::CiphertextMessage;

use crate::app::error::AppError;
use crate::app::incoming::Notice;
use crate::app::records::PendingInvite;
use crate::app::{Client, profile};
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{GroupOp, GroupOpKind, MAX_CONTENT_BYTES};
use crate::wire::group::{GroupInvite, MAX_GROUP_INVITES};
use crate::wire::invite::Invite;

/// Room left in a `Content` for its own fields around an `Invites` message.
const CONTENT_FRAMING: usize = 128;

/// Runs the group work that is due (see `record::FOLLOWUP_KEY`).
pub(super) async fn followups(c: &mut Client) -> Result<Vec<Notice>, AppError> {
    let groups = {
        let txn = c.profile.store.txn();
        if !record::followup_due(&txn)? {
            return Ok(Vec::new());
        }
        record::all(&txn)?
    };
    let mut notices = Vec::new();
    let mut unfinished = false;
    for g in groups {
        unfinished |= accept_intros(c, &g.id, &mut notices).await?;
        unfinished |= make_invites(c, &g.id).await?;
        let ptxn = ProtocolTxn::new(c.profile.store.txn());
        // Bound first: a borrow in the `if let` would live through its block.
        let fresh = record::get(&*ptxn.txn()?, &g.id)?;
        if let Some(mut g) = fresh {
            if send_waiting(&ptxn, &mut g).await? > 0 {
                record::put(&mut *ptxn.txn()?, &g)?;
            }
            unfinished |= !g.intros.is_empty();
        }
        ptxn.commit()?;
    }
    if !unfinished {
        let mut txn = c.profile.store.txn();
        record::clear_followup(&mut txn);
        txn.commit()?;
    }
    Ok(notices)
}

/// Accepts the introductions held for `group`; returns whether some must wait (for the
/// member to appear in the log, or for a relay).
async fn accept_intros(c: &mut Client, group: &GroupId, notices: &mut Vec<Notice>) -> Result<bool, AppError> {
    let Some(g) = read(c, group)? else { return Ok(false) };
    let m = g.membership();
    if g.intros.is_empty() || !m.is_member(&g.me) {
        return Ok(false);
    }
    let mut waiting = false;
    for intro in g.intros.clone() {
        let Some(x) = m.members.get(&intro.member) else {
            // Passed on before this device saw the member's Add: kept until it does.
            waiting = true;
            continue;
        };
        let already = {
            let txn = c.profile.store.txn();
            contacts_by_identity(&txn)?.contains_key(&x.info.identity)
        };
        let outcome = if already { Ok(None) } else { accept_one(c, &intro.link, &x.info).await };
        match outcome {
            Ok(Some(name)) => notices.push(event(&g, GroupEvent::Introduced { name })),
            Ok(None) => {}
            Err(AppError::Link(_) | AppError::Refused(_) | AppError::Queued(_)) => {
                waiting = true;
                continue;
            }
            Err(_) => notices.push(event(&g, GroupEvent::BadIntroduction)),
        }
        let mut txn = c.profile.store.txn();
        if let Some(mut fresh) = record::get(&txn, group)? {
            fresh.intros.retain(|h| h.member != intro.member);
            record::put(&mut txn, &fresh)?;
        }
        txn.commit()?;
    }
    Ok(waiting)
}

/// Accepts one introduction; returns the new contact's name.
async fn accept_one(c: &mut Client, link: &str, member: &MemberInfo) -> Result<Option<String>, AppError> {
    let invite = Invite::parse(link)?;
    if invite.bundle.identity_key != member.identity {
        return Err(AppError::Wire(crate::wire::WireError::BadKey("introduction identity key")));
    }
    let name = {
        let txn = c.profile.store.txn();
        profile::unique_name(&txn, &member.name)?
    };
    let id = c.start_contact(&invite, &name).await?;
    // Listen on the new mailbox now: the newcomer's answer may come while this process runs.
    let mailbox = {
        let txn = c.profile.store.txn();
        let recv = profile::contact(&txn, &id)?.map(|k| k.my_recv_id);
        match recv {
            Some(r) => profile::own_mailbox(&txn, &r)?,
            None => None,
        }
    };
    if let Some(m) = mailbox {
        let _ = c.subscribe_one(&m).await;
    }
    Ok(Some(name))
}

/// Makes the invites this device owes as the newcomer, and sends them to its introducer.
/// Returns whether some could not be made yet.
async fn make_invites(c: &mut Client, group: &GroupId) -> Result<bool, AppError> {
    let Some(g) = read(c, group)? else { return Ok(false) };
    let m = g.membership();
    let Some(mine) = m.members.get(&g.me) else { return Ok(false) };
    let needed: Vec<(MemberId, MemberInfo)> = {
        let txn = c.profile.store.txn();
        let contacts = contacts_by_identity(&txn)?;
        m.members
            .iter()
            .filter(|(id, s)| {
                **id != g.me
                    && s.position < mine.position
                    && !contacts.contains_key(&s.info.identity)
                    && !g.invited.contains(id)
            })
            .map(|(id, s)| (*id, s.info.clone()))
            .collect()
    };
    if needed.is_empty() {
        return Ok(false);
    }
    let mut made = Vec::new();
    let mut unfinished = false;
    for (id, info) in needed {
        let name = {
            let txn = c.profile.store.txn();
            profile::unique_name(&txn, &info.name)?
        };
        match c.make_invite(Some(&name), None, info.identity.clone(), super::super::InviteForm::Full).await {
            Ok((link, mailbox)) => {
                // Listen on it now: the answer may come while this process runs.
                let _ = c.subscribe_one(&mailbox).await;
                made.push(GroupInvite { member_id: id.to_vec(), link });
            }
            Err(_) => {
                unfinished = true;
                break;
            }
        }
    }
    if made.is_empty() {
        return Ok(unfinished);
    }
    let ptxn = ProtocolTxn::new(c.profile.store.txn());
    let fresh = record::get(&*ptxn.txn()?, group)?;
    if let Some(mut g) = fresh {
        let m = g.membership();
        g.invited.extend(made.iter().filter_map(|i| <MemberId>::try_from(i.member_id.as_slice()).ok()));
        let introducer = introducer(&ptxn, &g, &m)?;
        let plan: Vec<_> = invites_messages(&g.id, made).into_iter().map(|op| (introducer, op)).collect();
        fan_out(&ptxn, &mut g, &m, &plan).await?;
        record::put(&mut *ptxn.txn()?, &g)?;
    }
    ptxn.commit()?;
    Ok(unfinished)
}

/// Who passes this device's invites on: the member who added it, or failing that (it left
/// or was removed) an admin this device has a session with.
fn introducer(ptxn: &ProtocolTxn<'_>, g: &GroupRecord, m: &Membership) -> Result<MemberId, AppError> {
    let adder = m.members.get(&g.me).map_or(g.me, |s| s.added_by);
    if m.is_member(&adder) && adder != g.me {
        return Ok(adder);
    }
    let contacts = contacts_by_identity(&*ptxn.txn()?)?;
    Ok(m.members
        .iter()
        .find(|(id, s)| **id != g.me && s.admin && contacts.get(&s.info.identity).is_some_and(is_ready))
        .map_or(adder, |(id, _)| *id))
}

/// Invites packed into as few messages as fit in a `Content`.
fn invites_messages(group: &GroupId, invites: Vec<GroupInvite>) -> Vec<GroupOp> {
    use prost::Message;
    let empty = || GroupOp { group_id: group.to_vec(), kind: GroupOpKind::Invites as i32, ..Default::default() };
    let mut out = Vec::new();
    let mut current = empty();
    for inv in invites {
        let mut trial = current.clone();
        trial.invites.push(inv.clone());
        let full = trial.invites.len() > MAX_GROUP_INVITES || trial.encoded_len() + CONTENT_FRAMING > MAX_CONTENT_BYTES;
        if full && !current.invites.is_empty() {
            out.push(std::mem::replace(&mut current, empty()));
            current.invites.push(inv);
        } else {
            current = trial;
        }
    }
    if !current.invites.is_empty() {
        out.push(current);
    }
    out
}

fn read(c: &mut Client, group: &GroupId) -> Result<Option<GroupRecord>, AppError> {
    let txn = c.profile.store.txn();
    record::get(&txn, group)
}

fn event(g: &GroupRecord, event: GroupEvent) -> Notice {
    Notice::Group { group: g.name.clone(), event }
}

/// Whether the first message on an invite's mailbox may be read: always for an ordinary
/// invite; for an introduction only if it comes from the identity key the group gave.
pub(crate) fn introduction_answered_by(invite: &PendingInvite, message: &CiphertextMessage) -> bool {
    if invite.expect_identity.is_empty() {
        return true;
    }
    match message {
        CiphertextMessage::PreKeySignalMessage(m) => m.identity_key().serialize().as_ref() == invite.expect_identity,
        _ => false,
    }
}

/// An introduction was answered: the copies waiting for that member can go now.
pub(crate) fn introduction_joined(ptxn: &ProtocolTxn<'_>, invite: &PendingInvite) -> Result<(), AppError> {
    if !invite.expect_identity.is_empty() {
        record::set_followup(&mut *ptxn.txn()?);
    }
    Ok(())
}
