//! The application's error type: what went wrong, in words a user can act on.

use sotto_proto::ErrorCode;
use thiserror::Error;

use crate::relay::LinkError;
use crate::store::StoreError;
use crate::wire::WireError;

/// Why a command could not be carried out.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppError {
    /// The profile store failed (wrong passphrase, locked, corrupt, disk error).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// A relay could not be used.
    #[error("{0}")]
    Link(#[from] LinkError),
    /// A relay refused an operation.
    #[error("the relay refused: {0}")]
    Refused(ErrorCode),
    /// An end-to-end message or invite could not be read.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// An invite link could not be used.
    #[error("{0}")]
    Invite(#[from] crate::wire::InviteError),
    /// The Signal protocol failed.
    #[error("encryption failed: {0}")]
    Signal(String),
    /// No contact has this name.
    #[error("no contact is called \"{0}\" (see `sotto contacts`)")]
    NoSuchContact(String),
    /// The contact has not finished joining (their first message has not arrived yet).
    #[error("\"{0}\" has not answered yet; messages can be sent once their first message arrives")]
    NotReady(String),
    /// The contact's safety number changed; nothing is sent until the user accepts it.
    #[error(
        "the safety number of \"{0}\" changed: nothing is sent to them until you compare it \
         with them and accept it (`sotto verify \"{0}\" --accept`)"
    )]
    IdentityChanged(String),
    /// A name that cannot be used.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// The invite was already accepted by someone (its mailbox is locked) or has expired.
    #[error("this invite was already used or has expired; ask for a new one")]
    InviteUsed,
    /// A short invite link whose sealed invite the relay no longer has: it expired (short
    /// links last as long as the relay keeps blobs, 48 hours by default), or the link was
    /// damaged in a way that still parses.
    #[error("this invite link has expired or is damaged; ask for a new one")]
    InviteGone,
    /// A message longer than one envelope can carry.
    #[error("the message is too long ({0} bytes; at most {1})")]
    TooLong(usize, usize),
    /// A setting out of range (timer, cover rate).
    #[error("{0}")]
    InvalidSetting(String),
    /// A file could not be sent or received.
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    /// A group command could not be carried out.
    #[error("{0}")]
    Group(#[from] super::group::GroupError),
    /// The message was saved but could not reach the relay yet.
    #[error(
        "the relay cannot be reached right now; the message is queued and will be sent by the next command that reaches it ({0})"
    )]
    Queued(LinkError),
}

impl From<libsignal_protocol::FingerprintError> for AppError {
    fn from(e: libsignal_protocol::FingerprintError) -> Self {
        Self::Signal(e.to_string())
    }
}

impl From<libsignal_protocol::SignalProtocolError> for AppError {
    fn from(e: libsignal_protocol::SignalProtocolError) -> Self {
        Self::Signal(e.to_string())
    }
}
