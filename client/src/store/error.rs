//! The one error type of the profile store, and its mapping into libsignal's error type.
//!
//! Messages never carry record contents, keys or contact names: an error may be shown to the
//! user or logged, and a log is exactly what a seized phone must not leak.

use std::path::PathBuf;

use libsignal_protocol::SignalProtocolError;

use super::db::Table;

/// Everything that can go wrong while creating, opening, reading or writing a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation on the profile directory failed (permissions, full disk, ...).
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What the store was doing, in words (e.g. "read the profile header").
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The embedded database (sled) reported an error, including its own I/O errors.
    #[error("database error: {0}")]
    Database(#[from] sled::Error),

    /// `open` was pointed at a directory that holds no profile.
    #[error("no profile found in {} (create one with `sotto init --relay ADDRESS`)", .0.display())]
    NoProfile(PathBuf),

    /// The profile is already open (in this or another program).
    #[error("the profile in {} is already open", .0.display())]
    Locked(PathBuf),

    /// `create` was pointed at a directory that already holds a profile; it is left untouched.
    #[error("a profile already exists in {}", .0.display())]
    AlreadyExists(PathBuf),

    /// The profile header is not one this version can read (truncated, unknown magic or
    /// version, out-of-range key-derivation parameters).
    #[error("the profile header is damaged or from an unknown version: {0}")]
    CorruptHeader(&'static str),

    /// The passphrase does not unwrap the master key. Nothing on disk was changed.
    ///
    /// A header whose authenticated fields were altered also ends up here: the two cases are
    /// indistinguishable by design, since the header's integrity is bound to the passphrase.
    #[error("wrong passphrase")]
    WrongPassphrase,

    /// Key-derivation parameters outside the accepted range.
    #[error("invalid key-derivation parameters: {0}")]
    InvalidKdfParams(&'static str),

    /// A stored value failed authentication: it was modified, or moved from another place
    /// (another key or table). The record is not returned.
    #[error("a record in table {table:?} failed authentication (tampered or moved)")]
    Tampered {
        /// The table the record was read from.
        table: Table,
    },

    /// A value authenticated correctly but its contents could not be decoded; this indicates a
    /// bug or a version mismatch rather than an attack.
    #[error("a record could not be decoded: {0}")]
    CorruptRecord(&'static str),

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,

    /// Sealing a value failed (cannot happen with valid key sizes; kept rather than panicking).
    #[error("encrypting a record failed")]
    Seal,

    /// The profile has no local identity yet (see `signal::init_identity`).
    #[error("the profile has no identity key yet")]
    NoIdentity,

    /// The profile already has a local identity; replacing it would break every session.
    #[error("the profile already has an identity key")]
    IdentityExists,

    /// No unused prekey id could be found (the id space is practically exhausted).
    #[error("no free prekey id")]
    NoFreePreKeyId,

    /// The keyring of epoch keys is damaged (neither of its two copies opens). Messages with
    /// a timer cannot be read; nothing else is affected.
    #[error("the keyring of message keys is damaged")]
    CorruptKeyring,

    /// The keyring holds as many epoch keys as it can (only with a clock far off).
    #[error("too many disappearing-message keys are alive at once; check the system clock")]
    KeyringFull,

    /// The duress passphrase must differ from the profile's passphrase.
    #[error("the duress passphrase must differ from the profile's passphrase")]
    DuressIsPassphrase,

    /// The store's transaction cell was borrowed re-entrantly (a programming error).
    #[error("the store transaction is already in use")]
    Busy,

    /// libsignal failed to serialize or parse one of its own records.
    #[error("signal protocol error: {0}")]
    Signal(#[from] SignalProtocolError),
}

/// The error libsignal receives when one of our stores fails.
///
/// libsignal requires callback errors to be `UnwindSafe`, which `std::io::Error` and
/// `sled::Error` are not, so the store error is carried as its message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreCallbackError {
    /// `true` if the failure was a record that failed authentication.
    pub tampered: bool,
    /// The store error's message.
    pub message: String,
}

impl StoreError {
    /// Converts into libsignal's error, for the store trait implementations.
    pub(crate) fn into_signal(self, method: &'static str) -> SignalProtocolError {
        match self {
            StoreError::Signal(e) => e,
            other => SignalProtocolError::ApplicationCallbackError(
                method,
                Box::new(StoreCallbackError {
                    tampered: matches!(other, StoreError::Tampered { .. }),
                    message: other.to_string(),
                }),
            ),
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { action, path, source }
    }
}

impl From<StoreError> for SignalProtocolError {
    fn from(e: StoreError) -> Self {
        e.into_signal("sotto store")
    }
}
