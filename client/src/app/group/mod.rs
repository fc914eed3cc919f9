//! Private groups whose membership lives only on members' devices (DESIGN §5).
//!
//! A group is a random 16-byte id, a log of membership operations ([`state`]) and nothing
//! else: no server-side object, no group key. Every message to the group is one
//! [`GroupOp`] per member, each encrypted separately over the pairwise libsignal session
//! with that member and sealed into that member's ordinary 1:1 mailbox ([`fanout`]), so the
//! relay sees unrelated envelopes of the one cell size and never the group id.
//!
//! - [`state`]: membership as a pure function of the operation log (the convergence rule).
//! - [`record`]: what the profile keeps per group.
//! - `fanout`: encrypting one copy per member in one transaction.
//! - `receive`: what an incoming group operation does.
//! - `intro`: introductions between members who were not contacts.
//! - `files`: files sent to a group (uploaded once, one pointer per member).
//! - `timer`: the group's disappearing-message timer.
//! - [`error`]: the error type, [`GroupError`].
//!
//! The protocol, step by step, is in `docs/END_TO_END.md` ("Groups").

pub mod error;
mod fanout;
pub(super) mod files;
mod intro;
mod receive;
pub mod record;
pub mod state;
mod timer;

use std::collections::HashMap;

use rand::RngCore;

pub use self::error::GroupError;
pub use self::fanout::FanOutReport;
pub use self::files::FileState;
pub(crate) use self::intro::{introduction_answered_by, introduction_joined};
pub(crate) use self::receive::receive;
use self::record::GroupRecord;
use self::state::{GroupId, MemberId, MemberInfo, Membership, Op, OpKind, member_id, next_clock};
use super::error::AppError;
use super::profile;
use super::records::Contact;
use super::{Client, address_of};
use crate::store::Txn;
use crate::store::signal::{IdentityStatus, ProtocolTxn, identity_status, local_identity};
use crate::wire::content::{AttachmentPointer, Body, GroupOp, GroupOpKind, MAX_TEXT_BYTES};
use crate::wire::group::{GroupMember, LoggedOp};

/// Most members a group can have, its creator included.
pub const MAX_GROUP_SIZE: usize = 100;
/// Most membership operations a group's log keeps; later ones are refused (with a notice).
/// At ~200 bytes each the record stays under ~1 MB.
pub const MAX_GROUP_LOG: usize = 4096;

const _: () = assert!(MAX_GROUP_SIZE <= crate::wire::content::MAX_GROUP_MEMBERS);

/// Something that happened in a group, for the user to see (inside [`super::Notice::Group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupEvent {
    /// This profile was added (by `by`, a contact).
    AddedYou { by: String },
    /// Someone joined.
    Added { name: String },
    /// Someone was removed.
    Removed { name: String },
    /// Someone left.
    Left { name: String },
    /// Someone became an admin.
    Promoted { name: String },
    /// This profile was removed: nothing more arrives from the group.
    RemovedYou,
    /// A session with a member this profile did not know was set up.
    Introduced { name: String },
    /// An operation was ignored: its sender may not perform it.
    NotAllowed { name: String },
    /// A message from someone who is not a member was dropped.
    NotAMember { name: String },
    /// A malformed operation was ignored.
    Malformed { name: String },
    /// An introduction did not match the member it claimed to introduce, and was ignored.
    BadIntroduction,
    /// The membership log is full; the operation was ignored.
    LogFull,
    /// A member set the group's disappearing-message timer (seconds; 0: off).
    TimerChanged { name: String, seconds: u32 },
}

/// One member, as `sotto group members` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The contact's name here, or the name the member who added them suggested.
    pub name: String,
    pub admin: bool,
    /// This device.
    pub me: bool,
    /// Whether this device has a session with them yet (false while the introduction is
    /// under way; group messages for them wait until it is).
    pub connected: bool,
}

impl Client {
    /// Names of the groups this profile is in (or was in), sorted.
    pub fn group_names(&mut self) -> Result<Vec<String>, AppError> {
        let txn = self.profile.store.txn();
        Ok(record::all(&txn)?.into_iter().map(|g| g.name.clone()).collect())
    }

    /// Creates a group called `name` with this profile as its only member and admin. Nothing
    /// is sent: the group exists only here until someone is added.
    pub fn group_create(&mut self, name: &str) -> Result<(), AppError> {
        profile::check_name(name)?;
        let mut txn = self.profile.store.txn();
        if record::by_name(&txn, name).is_ok() {
            return Err(GroupError::NameTaken(name.to_string()).into());
        }
        let mut id: GroupId = [0; 16];
        rand::rng().fill_bytes(&mut id);
        let identity = my_identity(&txn)?;
        let me = member_id(&id, &identity);
        let my_name = profile::settings(&txn)?.name;
        let create = new_op(1, me, OpKind::Create, None, Some(MemberInfo { id: me, identity, name: my_name }));
        let g = GroupRecord {
            id,
            name: name.to_string(),
            me,
            ops: vec![create],
            pending: Vec::new(),
            invited: Vec::new(),
            intros: Vec::new(),
            next_local: 0,
            timer_secs: 0,
            timer_set_at_ms: 0,
        };
        record::put(&mut txn, &g)?;
        txn.commit()?;
        Ok(())
    }

    /// Adds the contact `contact` to `group` (admins only): the operation goes to every
    /// member, the whole log to the new member, who then starts introductions to the
    /// members it does not know.
    pub async fn group_add(&mut self, group: &str, contact: &str) -> Result<FanOutReport, AppError> {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let report = {
            let (mut g, op, target, after) = {
                let txn = ptxn.txn()?;
                let mut g = record::by_name(&txn, group)?;
                let m = g.membership();
                require_admin(&g, &m)?;
                let c = profile::contact_by_name(&txn, contact)?;
                let identity = contact_identity(&txn, &c)?.ok_or_else(|| AppError::NotReady(c.name.clone()))?;
                let target = member_id(&g.id, &identity);
                if m.is_member(&target) {
                    return Err(GroupError::AlreadyMember(g.name.clone(), c.name.clone()).into());
                }
                if m.members.len() >= MAX_GROUP_SIZE {
                    return Err(GroupError::Full.into());
                }
                // Their own profile name if they gave one, else ours for them.
                let name = if c.their_name.trim().is_empty() { c.name.clone() } else { c.their_name.clone() };
                let info = MemberInfo { id: target, identity, name };
                let op = new_op(next_clock(&g.ops), g.me, OpKind::Add, Some(target), Some(info));
                push_op(&mut g, op.clone())?;
                let after = g.membership();
                (g, op, target, after)
            };
            let audience: Vec<MemberId> = after.members.keys().copied().filter(|k| *k != g.me).collect();
            let mut plan: Vec<(MemberId, GroupOp)> =
                audience.iter().filter(|k| **k != target).map(|k| (*k, op_message(&g.id, &op, &audience))).collect();
            plan.extend(sync_messages(&g).into_iter().map(|s| (target, s)));
            let report = fanout::fan_out(&ptxn, &mut g, &after, &plan).await?;
            record::put(&mut *ptxn.txn()?, &g)?;
            report
        };
        ptxn.commit()?;
        self.finish_fan_out(report).await
    }

    /// Removes `member` from `group` (admins only). They are told, and receive nothing
    /// further; what they send to the group is dropped by every member.
    pub async fn group_remove(&mut self, group: &str, member: &str) -> Result<FanOutReport, AppError> {
        self.member_op(group, member, OpKind::Remove).await
    }

    /// Makes `member` an admin of `group` (admins only).
    pub async fn group_promote(&mut self, group: &str, member: &str) -> Result<FanOutReport, AppError> {
        self.member_op(group, member, OpKind::Promote).await
    }

    /// Leaves `group`: every member is told, and this profile receives nothing further.
    pub async fn group_leave(&mut self, group: &str) -> Result<FanOutReport, AppError> {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let report = {
            let mut g = record::by_name(&*ptxn.txn()?, group)?;
            let m = g.membership();
            if !m.is_member(&g.me) {
                return Err(GroupError::NotMember(g.name.clone()).into());
            }
            let op = new_op(next_clock(&g.ops), g.me, OpKind::Leave, None, None);
            push_op(&mut g, op.clone())?;
            let audience: Vec<MemberId> = m.members.keys().copied().filter(|k| *k != g.me).collect();
            let plan: Vec<_> = audience.iter().map(|k| (*k, op_message(&g.id, &op, &audience))).collect();
            let report = fanout::fan_out(&ptxn, &mut g, &m, &plan).await?;
            g.pending.clear();
            record::put(&mut *ptxn.txn()?, &g)?;
            report
        };
        ptxn.commit()?;
        self.finish_fan_out(report).await
    }

    async fn member_op(&mut self, group: &str, member: &str, kind: OpKind) -> Result<FanOutReport, AppError> {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let report = {
            let (mut g, m, target) = {
                let txn = ptxn.txn()?;
                let g = record::by_name(&txn, group)?;
                let m = g.membership();
                require_admin(&g, &m)?;
                let target = find_member(&txn, &g, &m, member)?;
                (g, m, target)
            };
            let op = new_op(next_clock(&g.ops), g.me, kind, Some(target), None);
            push_op(&mut g, op.clone())?;
            // The removed member is told too: it is in the audience of the removal.
            let audience: Vec<MemberId> = m.members.keys().copied().filter(|k| *k != g.me).collect();
            let plan: Vec<_> = audience.iter().map(|k| (*k, op_message(&g.id, &op, &audience))).collect();
            let report = fanout::fan_out(&ptxn, &mut g, &m, &plan).await?;
            if kind == OpKind::Remove {
                g.pending.retain(|p| p.member != target);
            }
            record::put(&mut *ptxn.txn()?, &g)?;
            report
        };
        ptxn.commit()?;
        self.finish_fan_out(report).await
    }

    /// The members of `group`, this profile first, then by name.
    pub fn group_members(&mut self, group: &str) -> Result<Vec<MemberView>, AppError> {
        let txn = self.profile.store.txn();
        let g = record::by_name(&txn, group)?;
        let m = g.membership();
        let contacts = contacts_by_identity(&txn)?;
        let mut out: Vec<MemberView> = m
            .members
            .iter()
            .map(|(id, s)| {
                let contact = contacts.get(&s.info.identity);
                Ok(MemberView {
                    name: display_name(&txn, &contacts, s.info.identity.as_slice(), &s.info.name)?,
                    admin: s.admin,
                    me: *id == g.me,
                    connected: *id == g.me || contact.is_some_and(is_ready),
                })
            })
            .collect::<Result<_, AppError>>()?;
        out.sort_by(|a, b| (!a.me, &a.name).cmp(&(!b.me, &b.name)));
        Ok(out)
    }

    /// Sends `body` (a text or a file) to every other member of `group`: one copy per
    /// member, each encrypted over the pairwise session, all committed to the outbox in one
    /// transaction and then sent pipelined. Members still being introduced get their copy
    /// as soon as the session exists.
    pub async fn group_send(&mut self, group: &str, body: Body) -> Result<FanOutReport, AppError> {
        let report = self.group_queue(group, body).await?;
        self.finish_fan_out(report).await
    }

    /// The first half of [`Self::group_send`]: every copy encrypted and committed to the
    /// outbox in one transaction, nothing sent yet ([`Self::flush_outbox`] sends them, as
    /// does any later command that reaches the relay).
    pub async fn group_queue(&mut self, group: &str, body: Body) -> Result<FanOutReport, AppError> {
        let (text, attachment): (String, Option<AttachmentPointer>) = match body {
            Body::Text(t) => (t.text.clone(), None),
            Body::Attachment(a) => (String::new(), Some(a.clone())),
            _ => return Err(GroupError::UnsupportedBody.into()),
        };
        if text.len() > MAX_TEXT_BYTES {
            return Err(AppError::TooLong(text.len(), MAX_TEXT_BYTES));
        }
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let report = {
            let mut g = record::by_name(&*ptxn.txn()?, group)?;
            let m = g.membership();
            if !m.is_member(&g.me) {
                return Err(GroupError::NotMember(g.name.clone()).into());
            }
            let op = GroupOp {
                group_id: g.id.to_vec(),
                kind: GroupOpKind::Text as i32,
                text,
                attachment,
                ..Default::default()
            };
            let plan: Vec<_> = m.members.keys().filter(|k| **k != g.me).map(|k| (*k, op.clone())).collect();
            let report = fanout::fan_out(&ptxn, &mut g, &m, &plan).await?;
            let entry = record::GroupEntry {
                outgoing: true,
                from: String::new(),
                text: op.text.clone(),
                file_name: op.attachment.as_ref().map(|a| a.file_name.clone()),
                sent_at_ms: super::now_ms(),
                file_note: op.attachment.as_ref().map(|a| crate::files::describe(&a.file_name, a.size)),
            };
            let mut txn = ptxn.txn()?;
            let expires = timer::sent_expiry(&txn, &g);
            record::put_entry(&mut txn, &mut g, &entry, expires)?;
            record::put(&mut txn, &g)?;
            report
        };
        ptxn.commit()?;
        Ok(report)
    }

    /// The messages of `group`, in the order they were sent.
    pub fn group_history(&mut self, group: &str) -> Result<Vec<record::GroupEntry>, AppError> {
        let txn = self.profile.store.txn();
        let g = record::by_name(&txn, group)?;
        record::history(&txn, &g.id)
    }

    /// Sends a text to `group`; see [`Self::group_send`].
    pub async fn group_send_text(&mut self, group: &str, text: &str) -> Result<FanOutReport, AppError> {
        self.group_send(group, Body::Text(crate::wire::content::Text { text: text.to_string() })).await
    }

    /// Flushes what a fan-out queued; a relay out of reach leaves it queued.
    async fn finish_fan_out(&mut self, report: FanOutReport) -> Result<FanOutReport, AppError> {
        let flush = self.flush_outbox().await?;
        match flush.last_error {
            Some(e) => Err(AppError::Queued(e)),
            None => Ok(report),
        }
    }

    /// Does the group work that needs the network, if any is due: introductions to make and
    /// accept, and copies that were waiting for a session. Returns what to show.
    pub async fn group_followups(&mut self) -> Result<Vec<super::Notice>, AppError> {
        intro::followups(self).await
    }
}

/// A new operation by `author`.
fn new_op(clock: u64, author: MemberId, kind: OpKind, target: Option<MemberId>, member: Option<MemberInfo>) -> Op {
    let mut op_id = [0u8; 16];
    rand::rng().fill_bytes(&mut op_id);
    Op { op_id, clock, author, kind, target, member }
}

/// Appends an operation, within [`MAX_GROUP_LOG`].
fn push_op(g: &mut GroupRecord, op: Op) -> Result<(), AppError> {
    if g.ops.len() >= MAX_GROUP_LOG {
        return Err(GroupError::LogFull.into());
    }
    g.ops.push(op);
    Ok(())
}

fn require_admin(g: &GroupRecord, m: &Membership) -> Result<(), AppError> {
    if !m.is_member(&g.me) {
        return Err(GroupError::NotMember(g.name.clone()).into());
    }
    if !m.is_admin(&g.me) {
        return Err(GroupError::NotAdmin(g.name.clone()).into());
    }
    Ok(())
}

/// The member `name` refers to: a contact's name, or the name shown by `group members`.
fn find_member(txn: &Txn<'_>, g: &GroupRecord, m: &Membership, name: &str) -> Result<MemberId, AppError> {
    let contacts = contacts_by_identity(txn)?;
    for (id, s) in &m.members {
        if display_name(txn, &contacts, &s.info.identity, &s.info.name)? == name {
            return Ok(*id);
        }
    }
    Err(GroupError::NoSuchMember(g.name.clone(), name.to_string()).into())
}

/// This profile's serialized identity key.
fn my_identity(txn: &Txn<'_>) -> Result<Vec<u8>, AppError> {
    Ok(local_identity(txn)?.identity_key().serialize().to_vec())
}

/// The identity key trusted for a contact, if a session was ever set up.
fn contact_identity(txn: &Txn<'_>, c: &Contact) -> Result<Option<Vec<u8>>, AppError> {
    Ok(match identity_status(txn, &address_of(&c.id))? {
        IdentityStatus::Unknown => None,
        IdentityStatus::Trusted(k) | IdentityStatus::Changed { trusted: k, .. } => Some(k.serialize().to_vec()),
    })
}

/// Contacts by their trusted identity key. Of two contacts with one key (introduced twice),
/// the first by name wins, so every device picks the same one each time.
fn contacts_by_identity(txn: &Txn<'_>) -> Result<HashMap<Vec<u8>, Contact>, AppError> {
    let mut out = HashMap::new();
    for c in profile::contacts(txn)? {
        if let Some(k) = contact_identity(txn, &c)? {
            out.entry(k).or_insert(c);
        }
    }
    Ok(out)
}

/// Whether group copies can be sent to this contact now.
fn is_ready(c: &Contact) -> bool {
    c.peer.is_some() && !c.identity_changed
}

/// How this device names a member: the contact's name, else the suggested name made
/// unique against the contacts here.
fn display_name(
    txn: &Txn<'_>,
    contacts: &HashMap<Vec<u8>, Contact>,
    identity: &[u8],
    suggested: &str,
) -> Result<String, AppError> {
    if let Ok(mine) = local_identity(txn)
        && mine.identity_key().serialize().as_ref() == identity
    {
        return Ok(profile::settings(txn)?.name).map(|n| if n.is_empty() { "me".into() } else { n });
    }
    match contacts.get(identity) {
        Some(c) => Ok(c.name.clone()),
        None => profile::unique_name(txn, suggested),
    }
}

fn kind_to_wire(k: OpKind) -> GroupOpKind {
    match k {
        OpKind::Create => GroupOpKind::Create,
        OpKind::Add => GroupOpKind::Add,
        OpKind::Promote => GroupOpKind::Promote,
        OpKind::Remove => GroupOpKind::Remove,
        OpKind::Leave => GroupOpKind::Leave,
    }
}

fn kind_from_wire(k: GroupOpKind) -> Option<OpKind> {
    Some(match k {
        GroupOpKind::Create => OpKind::Create,
        GroupOpKind::Add => OpKind::Add,
        GroupOpKind::Promote => OpKind::Promote,
        GroupOpKind::Remove => OpKind::Remove,
        GroupOpKind::Leave => OpKind::Leave,
        _ => return None,
    })
}

fn member_to_wire(i: &MemberInfo) -> GroupMember {
    GroupMember { member_id: i.id.to_vec(), identity_key: i.identity.clone(), name: i.name.clone() }
}

/// A membership operation as sent to the members in `audience`.
fn op_message(group: &GroupId, op: &Op, audience: &[MemberId]) -> GroupOp {
    GroupOp {
        group_id: group.to_vec(),
        kind: kind_to_wire(op.kind) as i32,
        member_ids: op.target.iter().map(|t| t.to_vec()).collect(),
        clock: op.clock,
        op_id: op.op_id.to_vec(),
        author: op.author.to_vec(),
        member: op.member.as_ref().map(member_to_wire),
        audience: audience.iter().map(|a| a.to_vec()).collect(),
        ..Default::default()
    }
}

/// The whole log, in as many Sync messages as it needs.
fn sync_messages(g: &GroupRecord) -> Vec<GroupOp> {
    let entries: Vec<LoggedOp> = g
        .ops
        .iter()
        .map(|op| LoggedOp {
            op_id: op.op_id.to_vec(),
            clock: op.clock,
            author: op.author.to_vec(),
            kind: kind_to_wire(op.kind) as i32,
            target: op.target.map(|t| t.to_vec()).unwrap_or_default(),
            member: op.member.as_ref().map(member_to_wire),
        })
        .collect();
    entries
        .chunks(crate::wire::group::MAX_SYNC_OPS)
        .map(|chunk| GroupOp {
            group_id: g.id.to_vec(),
            kind: GroupOpKind::Sync as i32,
            log: chunk.to_vec(),
            group_name: g.name.clone(),
            // The group's timer setting travels with the log.
            clock: g.timer_set_at_ms,
            timer_seconds: g.timer_secs,
            ..Default::default()
        })
        .collect()
}

/// A log entry or operation from the wire, checked for consistency: ids of the right
/// length, a target where the kind needs one, and a member description whose id is the
/// one its identity key gives. `None` if anything is off.
fn op_from_parts(
    group: &GroupId,
    op_id: &[u8],
    clock: u64,
    author: &[u8],
    kind: GroupOpKind,
    target: Option<&[u8]>,
    member: Option<&GroupMember>,
) -> Option<Op> {
    let kind = kind_from_wire(kind)?;
    let op_id: [u8; 16] = op_id.try_into().ok()?;
    let author: MemberId = author.try_into().ok()?;
    let target: Option<MemberId> = match target {
        Some(t) if !t.is_empty() => Some(t.try_into().ok()?),
        _ => None,
    };
    let member = match member {
        Some(m) => {
            let id: MemberId = m.member_id.as_slice().try_into().ok()?;
            if member_id(group, &m.identity_key) != id {
                return None;
            }
            Some(MemberInfo { id, identity: m.identity_key.clone(), name: m.name.clone() })
        }
        None => None,
    };
    let consistent = match kind {
        OpKind::Create => member.as_ref().is_some_and(|m| m.id == author) && target.is_none(),
        OpKind::Add => target.is_some() && member.as_ref().is_some_and(|m| Some(m.id) == target),
        OpKind::Promote | OpKind::Remove => target.is_some(),
        OpKind::Leave => target.is_none(),
    };
    consistent.then_some(Op { op_id, clock, author, kind, target, member })
}
