//! Why a wire format could not be built or read.
//!
//! Decoders in [`crate::wire`] are total: every input gives a value or one of these errors,
//! never a panic. [`WireError`] is for code (logs, tests, the peer's misbehaviour);
//! [`InviteError`] is what a person sees when an invite link they pasted does not work, so
//! its messages say what to do. Neither carries a key, an id or message text.

use sotto_proto::AddressError;
use thiserror::Error;

/// Why an envelope, a `Content`, an invite or a QR code could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WireError {
    /// A body to seal is longer than fits in one envelope.
    #[error("message body of {len} bytes does not fit in an envelope (at most {max})")]
    BodyTooLong {
        /// The body's length.
        len: usize,
        /// The most that fits.
        max: usize,
    },
    /// The envelope failed authentication: it was altered, truncated, sealed under another
    /// key, or addressed to another mailbox.
    #[error("the envelope was tampered with or is not for this mailbox")]
    Tampered,
    /// The envelope authenticated but names a body kind this version does not know.
    #[error("the envelope carries an unknown kind of body ({0})")]
    BadKind(u8),
    /// The envelope authenticated but declares a body longer than its space.
    #[error("the envelope declares a body of {0} bytes, more than it can hold")]
    BadLength(usize),
    /// The envelope authenticated but its padding is not all zero bytes.
    #[error("the envelope's padding is not zero")]
    NonZeroPadding,
    /// Encryption itself failed (cannot happen for envelope-sized input).
    #[error("encryption failed")]
    Crypto,
    /// Input longer than the format allows, checked before parsing.
    #[error("{what} is {len} bytes, more than the {max} allowed")]
    InputTooLong {
        /// What was being decoded.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not valid protobuf for the expected message (or a string that is not UTF-8).
    #[error("malformed protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// Not valid base64url (without padding).
    #[error("malformed base64")]
    Base64,
    /// A `Content` with no body, or one this version does not understand.
    #[error("the message has no content this version understands")]
    NoBody,
    /// A required field is missing (a nested message left out, or an enum left unset).
    #[error("the field {0} is missing")]
    MissingField(&'static str),
    /// A fixed-length byte field has the wrong length.
    #[error("the field {field} is {len} bytes, it must be {want}")]
    FieldLength {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        want: usize,
    },
    /// A variable-length field (text, name, list) exceeds its limit.
    #[error("the field {field} has {len}, more than the {max} allowed")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes, or its number of items for a list.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A number outside its allowed range.
    #[error("the field {field} is out of range ({value})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// An enum field holds a value this version does not know.
    #[error("the field {field} has an unknown value ({value})")]
    UnknownEnum {
        /// The field.
        field: &'static str,
        /// The value found.
        value: i32,
    },
    /// A public key field that is not a valid key of its kind (e.g. not an Ed25519 point).
    #[error("the field {0} is not a valid public key")]
    BadKey(&'static str),
    /// A relay address that does not parse.
    #[error("bad relay address: {0}")]
    RelayAddress(#[from] AddressError),
    /// A key, signature or prekey bundle that libsignal rejects, or an ML-KEM prekey of
    /// another type than ML-KEM-1024.
    #[error("bad prekey bundle: {0}")]
    Bundle(&'static str),
    /// A compact (QR) invite whose payload cannot be read.
    #[error("malformed compact invite: {0}")]
    QrInvite(#[from] super::invite_qr::QrInviteError),
    /// Text too long for any QR code.
    #[error("the link is too long for a QR code ({len} bytes)")]
    QrTooLong {
        /// The link's length.
        len: usize,
    },
}

/// What a pasted text looks like when it is not an invite link, to tell the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignLink {
    /// Nothing (only spaces).
    Empty,
    /// A web address (`http://`, `https://`).
    WebLink,
    /// A Sotto relay address (`sotto://…`).
    RelayAddress,
    /// Anything else.
    Other,
}

impl std::fmt::Display for ForeignLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "nothing was pasted",
            Self::WebLink => "this is a web link, not a Sotto invite",
            Self::RelayAddress => "this is a relay address (sotto://…), not an invite",
            Self::Other => "this is not a Sotto invite",
        })
    }
}

/// Why an invite link cannot be used. The messages are meant for people.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InviteError {
    /// The text is not an invite link at all.
    #[error("{0}; an invite link starts with sotto:invite#")]
    NotAnInvite(ForeignLink),
    /// The link is damaged or incomplete, e.g. cut off by a chat app. The detail is for logs.
    #[error("the invite link is damaged or incomplete (perhaps cut off when it was copied); ask for it again")]
    Garbled(#[source] WireError),
    /// The link was made by a newer (or unknown) version of Sotto.
    #[error("the invite was made by a newer version of Sotto (format {0}); update Sotto and try again")]
    UnsupportedVersion(u8),
    /// Longer than any invite link can be: something else was pasted with it.
    #[error("the invite link is too long ({0} characters); paste only the link")]
    TooLong(usize),
}

impl From<WireError> for InviteError {
    fn from(e: WireError) -> Self {
        Self::Garbled(e)
    }
}

impl From<prost::DecodeError> for InviteError {
    fn from(e: prost::DecodeError) -> Self {
        Self::Garbled(WireError::Protobuf(e))
    }
}
