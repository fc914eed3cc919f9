//! The client's end-to-end wire formats (DESIGN §3, §5): pure code, no I/O.
//!
//! - [`envelope`]: the fixed-size sealed envelope the relay carries, hiding which libsignal
//!   message it holds and how long it is.
//! - [`content`]: the protobuf `Content` that travels inside the ratchet.
//! - [`group`]: the parts of a group operation: members, log entries, introductions.
//! - [`invite`]: one-time invite links (`sotto:invite#…`), the prekey bundle they carry, and
//!   their QR code for the terminal.
//! - [`invite_short`]: short links that point to the full invite, sealed in a blob.
//! - [`invite_qr`]: the compact form of a short link that QR codes hold.
//! - [`error`]: [`WireError`] for code, [`InviteError`] for people.
//!
//! Every decoder is total (a value or a typed error, never a panic), rejects trailing or
//! non-canonical bytes where the format allows it, and enforces limits that are named
//! constants. Keys zeroize on drop and never print through `Debug`.

pub mod content;
pub mod envelope;
pub mod error;
pub mod group;
pub mod invite;
pub mod invite_qr;
pub mod invite_short;

#[cfg(test)]
mod tests;

pub use content::{Body, Content, MailboxAddress, decode_content, encode_content};
pub use envelope::{BodyKind, ENVELOPE_KEY_LEN, EnvelopeKey, MAX_BODY_LEN, open, seal};
pub use error::{ForeignLink, InviteError, WireError};
pub use invite::{Invite, PreKeyBundleWire, qr_text};
pub use invite_short::{InviteLink, ShortInvite};
