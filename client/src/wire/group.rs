//! The parts of a [`GroupOp`] that groups added to the placeholder: who a member is, one entry
//! of the membership log, and one introduction (an invite link for one member).
//!
//! Checks here are structural (lengths, limits, key encodings) and total; whether an operation
//! makes sense (its author may perform it, its target is a member) is decided by the
//! application against the group's log (`app::group`), which ignores nonsense with a notice.
//!
//! ```text
//! message GroupOp  { bytes group_id = 1; Kind kind = 2; repeated bytes member_ids = 3; string text = 4;
//!                    uint64 clock = 5; bytes op_id = 6; bytes author = 7; GroupMember member = 8;
//!                    repeated bytes audience = 9; repeated LoggedOp log = 10; string group_name = 11;
//!                    repeated GroupInvite invites = 12; AttachmentPointer attachment = 13;
//!                    uint32 timer_seconds = 14; }
//! message GroupMember { bytes member_id = 1; bytes identity_key = 2; string name = 3; }
//! message LoggedOp    { bytes op_id = 1; uint64 clock = 2; bytes author = 3; Kind kind = 4;
//!                       bytes target = 5; GroupMember member = 6; }
//! message GroupInvite { bytes member_id = 1; string link = 2; }
//! ```

use prost::Message;

use super::content::{
    AttachmentPointer, GROUP_ID_LEN, GroupOp, GroupOpKind, MAX_GROUP_MEMBERS, MAX_NAME_BYTES, MAX_TEXT_BYTES,
    MAX_TIMER_SECONDS, MEMBER_ID_LEN, at_most, exact,
};
use super::error::WireError;
use super::invite::MAX_LINK_LEN;

/// Length of a membership operation's id.
pub const OP_ID_LEN: usize = 16;
/// Length of a serialized libsignal identity key (type byte and 32-byte Curve25519 key).
pub const IDENTITY_KEY_LEN: usize = 33;
/// Most log entries in one [`GroupOpKind::Sync`] message; a longer log is sent in several.
/// 24 entries at their largest (~390 bytes, with a 256-byte name) fit one `Content`.
pub const MAX_SYNC_OPS: usize = 24;
/// Most introductions in one message. An invite link is at most [`MAX_LINK_LEN`] and
/// typically ~3.7 KB, so about three fit in one `Content`; the size check decides.
pub const MAX_GROUP_INVITES: usize = 8;

/// A member as the group knows them: their per-group member id, their libsignal identity
/// key (which the member id is derived from) and the name the member who added them
/// suggests.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct GroupMember {
    /// [`MEMBER_ID_LEN`] bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    /// [`IDENTITY_KEY_LEN`] bytes, a valid libsignal identity key.
    #[prost(bytes = "vec", tag = "2")]
    pub identity_key: Vec<u8>,
    /// Suggested name (may be empty), at most [`MAX_NAME_BYTES`].
    #[prost(string, tag = "3")]
    pub name: String,
}

/// One membership operation as kept in the log and sent to a new member.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct LoggedOp {
    /// [`OP_ID_LEN`] random bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub op_id: Vec<u8>,
    /// The author's Lamport clock when it made the operation.
    #[prost(uint64, tag = "2")]
    pub clock: u64,
    /// The author's member id.
    #[prost(bytes = "vec", tag = "3")]
    pub author: Vec<u8>,
    /// Create, Add, Remove, Leave or Promote.
    #[prost(enumeration = "GroupOpKind", tag = "4")]
    pub kind: i32,
    /// The member concerned (empty for Create and Leave).
    #[prost(bytes = "vec", tag = "5")]
    pub target: Vec<u8>,
    /// For Create (the creator) and Add (the new member): who they are.
    #[prost(message, optional, tag = "6")]
    pub member: Option<GroupMember>,
}

/// An introduction: a one-time invite link made by one member for another.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct GroupInvite {
    /// The member the invite is meant for (made by the new member, forwarded to them) or,
    /// in an `Introduce`, the member who made it.
    #[prost(bytes = "vec", tag = "1")]
    pub member_id: Vec<u8>,
    /// A `sotto:invite#…` link, at most [`MAX_LINK_LEN`] bytes.
    #[prost(string, tag = "2")]
    pub link: String,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupMember { .. }")
    }
}

impl std::fmt::Debug for LoggedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedOp").field("clock", &self.clock).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GroupInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupInvite { .. }")
    }
}

/// Whether `kind` is a membership operation (kept in the log).
pub fn is_membership(kind: GroupOpKind) -> bool {
    matches!(
        kind,
        GroupOpKind::Create | GroupOpKind::Add | GroupOpKind::Remove | GroupOpKind::Leave | GroupOpKind::Promote
    )
}

/// Structural checks of a [`GroupOp`]: every id its length, every list and string within
/// its limit, keys valid, nested entries valid. Called from `Content::validate`.
pub(crate) fn validate_group_op(g: &GroupOp) -> Result<(), WireError> {
    exact("group_op.group_id", &g.group_id, GROUP_ID_LEN)?;
    let kind = kind_of("group_op.kind", g.kind)?;
    at_most("group_op.member_ids", g.member_ids.len(), MAX_GROUP_MEMBERS)?;
    g.member_ids.iter().try_for_each(|m| exact("group_op.member_ids", m, MEMBER_ID_LEN))?;
    at_most("group_op.text", g.text.len(), MAX_TEXT_BYTES)?;
    optional_exact("group_op.op_id", &g.op_id, OP_ID_LEN)?;
    optional_exact("group_op.author", &g.author, MEMBER_ID_LEN)?;
    if let Some(m) = &g.member {
        member("group_op.member", m)?;
    }
    at_most("group_op.audience", g.audience.len(), MAX_GROUP_MEMBERS)?;
    g.audience.iter().try_for_each(|m| exact("group_op.audience", m, MEMBER_ID_LEN))?;
    at_most("group_op.log", g.log.len(), MAX_SYNC_OPS)?;
    g.log.iter().try_for_each(logged)?;
    at_most("group_op.group_name", g.group_name.len(), MAX_NAME_BYTES)?;
    at_most("group_op.invites", g.invites.len(), MAX_GROUP_INVITES)?;
    for i in &g.invites {
        exact("group_op.invites.member_id", &i.member_id, MEMBER_ID_LEN)?;
        at_most("group_op.invites.link", i.link.len(), MAX_LINK_LEN)?;
    }
    if g.timer_seconds > MAX_TIMER_SECONDS {
        return Err(WireError::OutOfRange { field: "group_op.timer_seconds", value: u64::from(g.timer_seconds) });
    }
    if let Some(a) = &g.attachment {
        // Only a group message carries a file.
        if kind != GroupOpKind::Text {
            return Err(WireError::UnknownEnum { field: "group_op.kind", value: g.kind });
        }
        attachment(a)?;
    }
    Ok(())
}

fn kind_of(field: &'static str, value: i32) -> Result<GroupOpKind, WireError> {
    match GroupOpKind::try_from(value) {
        Ok(GroupOpKind::Unspecified) => Err(WireError::MissingField(field)),
        Ok(k) => Ok(k),
        Err(_) => Err(WireError::UnknownEnum { field, value }),
    }
}

fn optional_exact(field: &'static str, bytes: &[u8], want: usize) -> Result<(), WireError> {
    if bytes.is_empty() { Ok(()) } else { exact(field, bytes, want) }
}

fn member(field: &'static str, m: &GroupMember) -> Result<(), WireError> {
    exact(field, &m.member_id, MEMBER_ID_LEN)?;
    exact(field, &m.identity_key, IDENTITY_KEY_LEN)?;
    libsignal_protocol::IdentityKey::decode(&m.identity_key).map_err(|_| WireError::BadKey(field))?;
    at_most(field, m.name.len(), MAX_NAME_BYTES)
}

fn logged(op: &LoggedOp) -> Result<(), WireError> {
    exact("group_op.log.op_id", &op.op_id, OP_ID_LEN)?;
    exact("group_op.log.author", &op.author, MEMBER_ID_LEN)?;
    let kind = kind_of("group_op.log.kind", op.kind)?;
    if !is_membership(kind) {
        return Err(WireError::UnknownEnum { field: "group_op.log.kind", value: op.kind });
    }
    optional_exact("group_op.log.target", &op.target, MEMBER_ID_LEN)?;
    match &op.member {
        Some(m) => member("group_op.log.member", m),
        None => Ok(()),
    }
}

fn attachment(a: &AttachmentPointer) -> Result<(), WireError> {
    // The same checks as an attachment on its own, through the one implementation.
    let probe = super::content::Content {
        id: vec![0; super::content::CONTENT_ID_LEN],
        seq: 0,
        sent_at_ms: 0,
        expire_seconds: 0,
        body: Some(super::content::Body::Attachment(a.clone())),
    };
    probe.validate()
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
