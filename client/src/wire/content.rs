//! What travels inside the ratchet: the protobuf `Content` (DESIGN §5).
//!
//! Every plaintext a client hands to libsignal is one encoded [`Content`]. Protobuf (via
//! `prost`, written by hand: no build script) lets later versions add fields; a field this
//! version does not know is ignored, and a body it does not know is [`WireError::NoBody`].
//! Decoding through [`decode_content`] is checked: lengths, limits, UTF-8, relay addresses and
//! keys, so the rest of the client handles only well-formed values. The schema:
//!
//! ```text
//! message Content  { bytes id = 1; uint64 seq = 2; uint64 sent_at_ms = 3; uint32 expire_seconds = 4;
//!                    oneof body { Text text = 10; Hello hello = 11; Welcome welcome = 12;
//!                      AttachmentPointer attachment = 13; GroupOp group_op = 14; Receipt receipt = 15;
//!                      Rotation rotation = 16; ProfileName profile_name = 17; Timer timer = 18; } }
//! message MailboxAddress { string relay = 1; bytes send_id = 2; bytes envelope_key = 3; }
//! message BlobAddress    { string relay = 1; bytes read_id = 2; }
//! message Text           { string text = 1; }
//! message Hello          { bytes invite_id = 1; MailboxAddress reply = 2; bytes sender_key = 3; string profile_name = 4; }
//! message Welcome        { bytes sender_key = 1; string profile_name = 2; }
//! message AttachmentPointer { BlobAddress blob = 1; bytes key = 2; bytes digest = 3; uint64 size = 4;
//!                             string file_name = 5; string content_type = 6; }
//! message GroupOp        { bytes group_id = 1; Kind kind = 2; repeated bytes member_ids = 3; string text = 4;
//!                          ... }   (the fields groups added: see `wire::group`)
//! message Receipt        { repeated bytes ids = 1; }
//! message Rotation       { MailboxAddress new_address = 1; }
//! message ProfileName    { string name = 1; }
//! message Timer          { uint32 seconds = 1; }
//! ```
//!
//! Size: a `Content` must fit in one envelope even inside a PreKey message (libsignal keeps
//! sending PreKey messages until the peer answers). An envelope carries [`MAX_BODY_LEN`] =
//! 16,213 bytes of libsignal ciphertext; a PreKey message costs the plaintext plus ~1.9 KB
//! (1,569-byte ML-KEM-1024 ciphertext, two 33-byte keys, ids, the inner SignalMessage's ~100
//! bytes and up to 16 bytes of CBC padding; measured in `wire::tests`). Allowing
//! [`LIBSIGNAL_OVERHEAD_BOUND`] = 3,000 bytes for it leaves [`MAX_CONTENT_BYTES`] = 12,288 for
//! the encoded `Content`, of which text gets [`MAX_TEXT_BYTES`] = 12,000 and the fields around
//! it at most ~60 bytes.
//!
//! `Debug` never prints text, names, ids or keys; keys in decoded messages are zeroized on drop.

use std::str::FromStr;

use prost::Message;
use sotto_proto::limits::{ID_LEN, MAX_BLOB_SIZE, PUBLIC_KEY_LEN};
use sotto_proto::{BlobReadId, RelayAddress, SendId};
use zeroize::Zeroize;

use super::envelope::{ENVELOPE_KEY_LEN, EnvelopeKey, MAX_BODY_LEN};
use super::error::WireError;
use super::group::{GroupInvite, GroupMember, LoggedOp, validate_group_op};

/// Length of a [`Content`] id: random, for deduplication of at-least-once delivery.
pub const CONTENT_ID_LEN: usize = 16;
/// Length of an invite id (in [`Hello`] and in invite links).
pub const INVITE_ID_LEN: usize = 16;
/// Length of a group id.
pub const GROUP_ID_LEN: usize = 16;
/// Length of a member id in a [`GroupOp`]: a per-group hash of the member's identity key
/// (see `app::group`).
pub const MEMBER_ID_LEN: usize = 16;
/// Length of an attachment's key (chunked XChaCha20-Poly1305).
pub const ATTACHMENT_KEY_LEN: usize = 32;
/// Length of an attachment's digest (SHA-256 of the uploaded blob).
pub const ATTACHMENT_DIGEST_LEN: usize = 32;
/// Most libsignal adds to a plaintext (PreKey message, the worst case); see the module docs.
pub const LIBSIGNAL_OVERHEAD_BOUND: usize = 3_000;
/// Longest encoded [`Content`]: what fits in an envelope after [`LIBSIGNAL_OVERHEAD_BOUND`].
pub const MAX_CONTENT_BYTES: usize = 12_288;
/// Longest message text, in UTF-8 bytes (a [`Text`] or a [`GroupOp`]'s text).
pub const MAX_TEXT_BYTES: usize = 12_000;
/// Longest profile name or file name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest attachment media type, in bytes (RFC 6838: 127 for type and for subtype, and `/`).
pub const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Most ids in one [`Receipt`].
pub const MAX_RECEIPT_IDS: usize = 512;
/// Most member ids in one [`GroupOp`].
pub const MAX_GROUP_MEMBERS: usize = 256;
/// Longest disappearing-message timer: one year (0 turns the timer off).
pub const MAX_TIMER_SECONDS: u32 = 365 * 24 * 60 * 60;

const _: () = assert!(MAX_CONTENT_BYTES + LIBSIGNAL_OVERHEAD_BOUND <= MAX_BODY_LEN);
const _: () = assert!(MAX_TEXT_BYTES + 64 <= MAX_CONTENT_BYTES);

/// `Debug` that names the type and nothing else.
macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), " { .. }"))
            }
        }
    )*};
}

/// One message inside the ratchet.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Content {
    /// [`CONTENT_ID_LEN`] random bytes; the receiver drops a second copy with the same id.
    #[prost(bytes = "vec", tag = "1")]
    pub id: Vec<u8>,
    /// The sender's counter in this conversation.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// When it was sent, by the sender's clock, in milliseconds since the Unix epoch.
    #[prost(uint64, tag = "3")]
    pub sent_at_ms: u64,
    /// Seconds after which this content disappears from both sides (0: the receiver's
    /// conversation timer applies), at most [`MAX_TIMER_SECONDS`].
    #[prost(uint32, tag = "4")]
    pub expire_seconds: u32,
    /// What it says.
    #[prost(oneof = "Body", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18")]
    pub body: Option<Body>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content").field("seq", &self.seq).field("body", &self.body).finish_non_exhaustive()
    }
}

/// What a [`Content`] says. `Debug` shows only the variant.
// A decoded body is built once and moved a few times; boxing the larger variants would
// change every constructor for no measurable gain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, prost::Oneof)]
#[prost(skip_debug)]
pub enum Body {
    /// A text message.
    #[prost(message, tag = "10")]
    Text(Text),
    /// The invitee's first message.
    #[prost(message, tag = "11")]
    Hello(Hello),
    /// The inviter's answer to a [`Hello`].
    #[prost(message, tag = "12")]
    Welcome(Welcome),
    /// A file, uploaded as an encrypted blob.
    #[prost(message, tag = "13")]
    Attachment(AttachmentPointer),
    /// A group operation.
    #[prost(message, tag = "14")]
    GroupOp(GroupOp),
    /// Delivery receipts.
    #[prost(message, tag = "15")]
    Receipt(Receipt),
    /// A move of the conversation to a fresh mailbox of the sender's.
    #[prost(message, tag = "16")]
    Rotation(Rotation),
    /// The sender's new profile name.
    #[prost(message, tag = "17")]
    ProfileName(ProfileName),
    /// The disappearing-message timer.
    #[prost(message, tag = "18")]
    Timer(Timer),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text(_) => "Text",
            Self::Hello(_) => "Hello",
            Self::Welcome(_) => "Welcome",
            Self::Attachment(_) => "Attachment",
            Self::GroupOp(_) => "GroupOp",
            Self::Receipt(_) => "Receipt",
            Self::Rotation(_) => "Rotation",
            Self::ProfileName(_) => "ProfileName",
            Self::Timer(_) => "Timer",
        })
    }
}

/// Where to send to someone: a relay, a mailbox's send id and its envelope key.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct MailboxAddress {
    /// The relay, as a `sotto://` address.
    #[prost(string, tag = "1")]
    pub relay: String,
    /// The mailbox's send id ([`ID_LEN`] bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub send_id: Vec<u8>,
    /// The mailbox's envelope key ([`ENVELOPE_KEY_LEN`] bytes). Zeroized on drop.
    #[prost(bytes = "vec", tag = "3")]
    pub envelope_key: Vec<u8>,
}

impl Drop for MailboxAddress {
    fn drop(&mut self) {
        self.envelope_key.zeroize();
    }
}

impl MailboxAddress {
    /// The wire form of a mailbox address.
    pub fn new(relay: &RelayAddress, send_id: &SendId, key: &EnvelopeKey) -> Self {
        Self { relay: relay.to_string(), send_id: send_id.0.to_vec(), envelope_key: key.as_bytes().to_vec() }
    }

    /// The typed parts, checked.
    pub fn to_parts(&self) -> Result<(RelayAddress, SendId, EnvelopeKey), WireError> {
        let relay = RelayAddress::from_str(&self.relay)?;
        let send_id = SendId(fixed("send_id", &self.send_id)?);
        let key = EnvelopeKey::from_slice("envelope_key", &self.envelope_key)?;
        Ok((relay, send_id, key))
    }
}

/// Where a blob is: its relay and read id.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct BlobAddress {
    /// The relay, as a `sotto://` address.
    #[prost(string, tag = "1")]
    pub relay: String,
    /// The blob's read id ([`ID_LEN`] bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub read_id: Vec<u8>,
}

impl BlobAddress {
    /// The wire form of a blob address.
    pub fn new(relay: &RelayAddress, read_id: &BlobReadId) -> Self {
        Self { relay: relay.to_string(), read_id: read_id.0.to_vec() }
    }

    /// The typed parts, checked.
    pub fn to_parts(&self) -> Result<(RelayAddress, BlobReadId), WireError> {
        Ok((RelayAddress::from_str(&self.relay)?, BlobReadId(fixed("blob.read_id", &self.read_id)?)))
    }
}

/// A text message: any Unicode, kept byte for byte.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Text {
    /// The text, at most [`MAX_TEXT_BYTES`] of UTF-8.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The invitee's first message, in the PreKey message that starts the session.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Hello {
    /// The invite being accepted ([`INVITE_ID_LEN`] bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub invite_id: Vec<u8>,
    /// The invitee's fresh mailbox for the inviter to answer into.
    #[prost(message, optional, tag = "2")]
    pub reply: Option<MailboxAddress>,
    /// The Ed25519 key the invitee signs its sends into the inviter's mailbox with.
    #[prost(bytes = "vec", tag = "3")]
    pub sender_key: Vec<u8>,
    /// The invitee's profile name (may be empty).
    #[prost(string, tag = "4")]
    pub profile_name: String,
}

/// The inviter's answer to a [`Hello`].
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Welcome {
    /// The Ed25519 key the inviter signs its sends into the invitee's mailbox with.
    #[prost(bytes = "vec", tag = "1")]
    pub sender_key: Vec<u8>,
    /// The inviter's profile name (may be empty).
    #[prost(string, tag = "2")]
    pub profile_name: String,
}

/// A file: where its encrypted blob is, and how to decrypt and check it.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct AttachmentPointer {
    /// Where the blob is.
    #[prost(message, optional, tag = "1")]
    pub blob: Option<BlobAddress>,
    /// The blob's key ([`ATTACHMENT_KEY_LEN`] bytes). Zeroized on drop.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// SHA-256 of the blob as uploaded ([`ATTACHMENT_DIGEST_LEN`] bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub digest: Vec<u8>,
    /// The file's size in bytes, before padding.
    #[prost(uint64, tag = "4")]
    pub size: u64,
    /// The file's name (may be empty), at most [`MAX_NAME_BYTES`].
    #[prost(string, tag = "5")]
    pub file_name: String,
    /// The media type, e.g. `image/jpeg` (may be empty), at most [`MAX_CONTENT_TYPE_BYTES`].
    #[prost(string, tag = "6")]
    pub content_type: String,
}

impl Drop for AttachmentPointer {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// What a [`GroupOp`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum GroupOpKind {
    /// Not set: invalid on the wire.
    Unspecified = 0,
    /// Creates the group with the members listed.
    Create = 1,
    /// Adds the members listed.
    Add = 2,
    /// Removes the members listed.
    Remove = 3,
    /// The sender leaves.
    Leave = 4,
    /// Makes the members listed administrators.
    Promote = 5,
    /// A message to the group: text, or a file.
    Text = 6,
    /// Part of the membership log, sent by the member who added the receiver.
    Sync = 7,
    /// Invites a new member made for members it does not know yet, sent to its adder.
    Invites = 8,
    /// An invite forwarded by the adder to the member it was made for.
    Introduce = 9,
    /// The group's disappearing-message timer changed (see `app::group::timer`).
    Timer = 10,
}

/// A group operation or message; the protocol is in `docs/END_TO_END.md` and `app::group`.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct GroupOp {
    /// The group ([`GROUP_ID_LEN`] bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// What it does.
    #[prost(enumeration = "GroupOpKind", tag = "2")]
    pub kind: i32,
    /// The members concerned (each [`MEMBER_ID_LEN`] bytes), at most [`MAX_GROUP_MEMBERS`].
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub member_ids: Vec<Vec<u8>>,
    /// Text, for [`GroupOpKind::Text`] (and an optional note otherwise).
    #[prost(string, tag = "4")]
    pub text: String,
    /// The author's Lamport clock, for membership operations.
    #[prost(uint64, tag = "5")]
    pub clock: u64,
    /// A membership operation's id ([`super::group::OP_ID_LEN`] bytes), or empty.
    #[prost(bytes = "vec", tag = "6")]
    pub op_id: Vec<u8>,
    /// The author's member id ([`MEMBER_ID_LEN`] bytes), or empty.
    #[prost(bytes = "vec", tag = "7")]
    pub author: Vec<u8>,
    /// For Create and Add: who the member is.
    #[prost(message, optional, tag = "8")]
    pub member: Option<GroupMember>,
    /// Members the author sent a membership operation to, so admins can pass it on to
    /// members the author did not know of.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub audience: Vec<Vec<u8>>,
    /// For Sync: entries of the membership log.
    #[prost(message, repeated, tag = "10")]
    pub log: Vec<LoggedOp>,
    /// For Sync: the name the sender gives the group (a suggestion).
    #[prost(string, tag = "11")]
    pub group_name: String,
    /// For Invites and Introduce: invite links.
    #[prost(message, repeated, tag = "12")]
    pub invites: Vec<GroupInvite>,
    /// For Text: a file instead of (or with) text.
    #[prost(message, optional, tag = "13")]
    pub attachment: Option<AttachmentPointer>,
    /// For Timer: how long the group's messages live, in seconds (0: off); `clock` holds
    /// the setter's clock in milliseconds when it was set.
    #[prost(uint32, tag = "14")]
    pub timer_seconds: u32,
}

/// Delivery receipts: the ids of the contents received.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Receipt {
    /// Content ids, each [`CONTENT_ID_LEN`] bytes, at most [`MAX_RECEIPT_IDS`].
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub ids: Vec<Vec<u8>>,
}

/// A move of the conversation to a fresh mailbox of the sender's.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Rotation {
    /// Where to send from now on.
    #[prost(message, optional, tag = "1")]
    pub new_address: Option<MailboxAddress>,
}

/// The sender's new profile name.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct ProfileName {
    /// The name (may be empty), at most [`MAX_NAME_BYTES`].
    #[prost(string, tag = "1")]
    pub name: String,
}

/// The disappearing-message timer for the conversation.
#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
pub struct Timer {
    /// Seconds after sending (sender) or receiving (receiver) that messages disappear; 0 turns
    /// it off. At most
    /// [`MAX_TIMER_SECONDS`].
    #[prost(uint32, tag = "1")]
    pub seconds: u32,
}

redacted_debug!(
    MailboxAddress,
    BlobAddress,
    Text,
    Hello,
    Welcome,
    AttachmentPointer,
    GroupOp,
    Receipt,
    Rotation,
    ProfileName,
    Timer
);

impl Content {
    /// Checks everything [`decode_content`] checks, for a `Content` built in code.
    pub fn validate(&self) -> Result<(), WireError> {
        exact("id", &self.id, CONTENT_ID_LEN)?;
        if self.expire_seconds > MAX_TIMER_SECONDS {
            return Err(WireError::OutOfRange { field: "expire_seconds", value: u64::from(self.expire_seconds) });
        }
        match self.body.as_ref().ok_or(WireError::NoBody)? {
            Body::Text(t) => at_most("text", t.text.len(), MAX_TEXT_BYTES),
            Body::Hello(h) => {
                exact("hello.invite_id", &h.invite_id, INVITE_ID_LEN)?;
                mailbox("hello.reply", h.reply.as_ref())?;
                ed25519_key("hello.sender_key", &h.sender_key)?;
                at_most("hello.profile_name", h.profile_name.len(), MAX_NAME_BYTES)
            }
            Body::Welcome(w) => {
                ed25519_key("welcome.sender_key", &w.sender_key)?;
                at_most("welcome.profile_name", w.profile_name.len(), MAX_NAME_BYTES)
            }
            Body::Attachment(a) => {
                a.blob.as_ref().ok_or(WireError::MissingField("attachment.blob"))?.to_parts()?;
                exact("attachment.key", &a.key, ATTACHMENT_KEY_LEN)?;
                exact("attachment.digest", &a.digest, ATTACHMENT_DIGEST_LEN)?;
                if a.size > MAX_BLOB_SIZE {
                    return Err(WireError::OutOfRange { field: "attachment.size", value: a.size });
                }
                at_most("attachment.file_name", a.file_name.len(), MAX_NAME_BYTES)?;
                at_most("attachment.content_type", a.content_type.len(), MAX_CONTENT_TYPE_BYTES)
            }
            Body::GroupOp(g) => validate_group_op(g),
            Body::Receipt(r) => {
                at_most("receipt.ids", r.ids.len(), MAX_RECEIPT_IDS)?;
                r.ids.iter().try_for_each(|id| exact("receipt.ids", id, CONTENT_ID_LEN))
            }
            Body::Rotation(r) => mailbox("rotation.new_address", r.new_address.as_ref()),
            Body::ProfileName(p) => at_most("profile_name.name", p.name.len(), MAX_NAME_BYTES),
            Body::Timer(t) if t.seconds > MAX_TIMER_SECONDS => {
                Err(WireError::OutOfRange { field: "timer.seconds", value: u64::from(t.seconds) })
            }
            Body::Timer(_) => Ok(()),
        }?;
        content_size(self.encoded_len())
    }
}

/// Encodes a `Content` after checking it as [`decode_content`] would, so a client never sends
/// what its peer must refuse.
pub fn encode_content(content: &Content) -> Result<Vec<u8>, WireError> {
    content.validate()?;
    Ok(content.encode_to_vec())
}

/// Decodes and checks a `Content`: at most [`MAX_CONTENT_BYTES`], a body this version knows,
/// every fixed-length field exactly its length, every limit kept, relay addresses and keys
/// valid. Unknown fields are ignored (a later version may add some).
pub fn decode_content(bytes: &[u8]) -> Result<Content, WireError> {
    content_size(bytes.len())?;
    let content = Content::decode(bytes)?;
    content.validate()?;
    Ok(content)
}

/// A fresh random [`Content`] id.
pub fn new_content_id<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut id = vec![0u8; CONTENT_ID_LEN];
    rng.fill_bytes(&mut id);
    id
}

fn content_size(len: usize) -> Result<(), WireError> {
    if len <= MAX_CONTENT_BYTES {
        Ok(())
    } else {
        Err(WireError::InputTooLong { what: "content", len, max: MAX_CONTENT_BYTES })
    }
}

pub(crate) fn exact(field: &'static str, bytes: &[u8], want: usize) -> Result<(), WireError> {
    if bytes.len() == want { Ok(()) } else { Err(WireError::FieldLength { field, len: bytes.len(), want }) }
}

pub(crate) fn at_most(field: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len <= max { Ok(()) } else { Err(WireError::FieldTooLong { field, len, max }) }
}

pub(crate) fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::FieldLength { field, len: bytes.len(), want: N })
}

fn mailbox(field: &'static str, address: Option<&MailboxAddress>) -> Result<(), WireError> {
    address.ok_or(WireError::MissingField(field))?.to_parts().map(drop)
}

fn ed25519_key(field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    let key: [u8; PUBLIC_KEY_LEN] = fixed(field, bytes)?;
    ed25519_dalek::VerifyingKey::from_bytes(&key).map(drop).map_err(|_| WireError::BadKey(field))
}

// `ID_LEN` and `ENVELOPE_KEY_LEN` are checked through `SendId`/`EnvelopeKey`; named here so the
// docs above link.
const _: () = assert!(ID_LEN == 24 && ENVELOPE_KEY_LEN == 32);

#[cfg(test)]
#[path = "content_tests.rs"]
mod tests;
