//! Files and images: encrypted on this device, uploaded as an expiring blob, and
//! fetched, checked and saved by the recipient.
//!
//! - [`format`]: the blob format (STREAM over XChaCha20-Poly1305, Padmé, SHA-256 digest).
//! - [`hasher`]: the digest, computed on its own thread beside the encryption.
//! - [`upload`]: sending a file's segments to a relay with several chunks in flight,
//!   resuming where the relay says it stopped.
//! - [`download`]: fetching, checking and decrypting into a temporary file, resuming by
//!   offset, then moving it under its final name.
//! - [`names`]: safe names for received files.
//!
//! Blob chunks travel as ordinary cells on the profile's relay connection: to anyone
//! watching the wire, an upload is a burst of cells like any burst of messages. The
//! pointer (relay, read id, key, digest, size, name) travels only inside the ratchet.
//! Memory stays bounded whatever the size: a fixed window of chunks is in flight and the
//! file is never held whole.

pub mod download;
pub mod format;
pub mod hasher;
pub mod names;
pub mod upload;

use std::path::PathBuf;

use sotto_proto::ErrorCode;
use thiserror::Error;

use crate::relay::LinkError;

/// Largest file sent or accepted by default: 1 GiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// Chunks of one transfer in flight at once: sent but not yet answered on an upload,
/// asked for but not yet arrived on a download. Enough to keep a loopback or
/// long-distance link busy (128 × 16 KiB = 2 MiB per round trip) while bounding memory.
pub const WINDOW: usize = 128;

/// An upload asks the relay to answer one `BlobPut` in this many (and the last): one
/// answer cell per 32 chunk cells instead of one each, so the answers cost 3% of the
/// upload's traffic instead of as much again. A window holds several such runs.
pub const ANSWER_EVERY: u64 = 32;

/// Chunks asked for by one `BlobGet` on a download (the protocol's maximum, ~1 MiB).
pub const GET_CHUNKS: u16 = sotto_proto::limits::BLOB_GET_MAX_CHUNKS;

// Both run lengths must divide the window, or it would never fill.
const _: () = assert!(WINDOW as u64 % ANSWER_EVERY == 0 && WINDOW % GET_CHUNKS as usize == 0);

/// Why a file could not be sent or received.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than allowed.
    #[error("the file is too large ({size} bytes; at most {max})")]
    TooLarge { size: u64, max: u64 },
    /// A chunk failed authentication, was out of place, or its padding was not zero:
    /// someone changed the stored file.
    #[error("the file was altered on the way (it failed its integrity check) and was not saved")]
    Tampered,
    /// The relay's copy ends early or has the wrong size.
    #[error("the file arrived incomplete (cut short on the way) and was not saved")]
    Truncated,
    /// Every chunk decrypted but the whole does not match the digest the sender signed.
    #[error("the file does not match the digest its sender gave and was not saved")]
    DigestMismatch,
    /// The pointer from the sender is unusable.
    #[error("the file's description is invalid ({0})")]
    BadPointer(&'static str),
    /// Encryption failed (cannot happen with a valid key; reported rather than assumed).
    #[error("encryption failed")]
    Crypto,
    /// The relay could not be reached or the link failed.
    #[error("{0}")]
    Link(#[from] LinkError),
    /// The relay refused.
    #[error("the relay refused the file transfer: {0}")]
    Refused(ErrorCode),
    /// The relay answered something that makes no sense here.
    #[error("the relay answered unexpectedly during a file transfer")]
    Protocol,
    /// No free name could be found in the downloads directory.
    #[error("no free file name in {0}")]
    NoFreeName(PathBuf),
}

impl From<sotto_proto::attachment::AttachmentError> for FileError {
    fn from(e: sotto_proto::attachment::AttachmentError) -> Self {
        use sotto_proto::attachment::AttachmentError as A;
        match e {
            A::Tampered => Self::Tampered,
            A::Truncated => Self::Truncated,
            A::OutOfRange => Self::Crypto,
        }
    }
}

impl FileError {
    /// Whether trying again later may succeed (the link, not the file, failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Link(_) | Self::Refused(ErrorCode::RateLimited | ErrorCode::Internal))
    }

    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| Self::Io { what, source }
    }
}

/// Where a transfer stands, for a progress bar. Called from the task doing the work.
pub trait Progress: Send + Sync {
    /// The transfer has `total` bytes and `done` of them are already there (a resume).
    fn start(&self, total: u64, done: u64);
    /// `done` bytes are transferred.
    fn set(&self, done: u64);
    /// The transfer ended (well or not).
    fn finish(&self);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64, _: u64) {}
    fn set(&self, _: u64) {}
    fn finish(&self) {}
}

/// Makes a [`Progress`] for each download, given the file's name and size.
pub type ProgressFactory = std::sync::Arc<dyn Fn(&str, u64) -> Box<dyn Progress> + Send + Sync>;

/// What the profile does with files.
#[derive(Clone)]
pub struct FileSettings {
    /// Where received files are saved.
    pub downloads: PathBuf,
    /// Largest file sent or accepted.
    pub max_file_size: u64,
    /// Progress bars for downloads, if wanted.
    pub progress: Option<ProgressFactory>,
}

impl FileSettings {
    /// Defaults: files up to [`DEFAULT_MAX_FILE_SIZE`], saved in `downloads`.
    pub fn new(downloads: PathBuf) -> Self {
        Self { downloads, max_file_size: DEFAULT_MAX_FILE_SIZE, progress: None }
    }
}

/// A guess at a media type from a file name's extension, for the pointer (receivers may
/// use it to show images inline). Empty when unknown.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "zip" => "application/zip",
        _ => "",
    }
}

/// How a file appears in a conversation's history: `[file] NAME (SIZE)`.
pub fn describe(name: &str, size: u64) -> String {
    format!("[file] {name} ({})", human_size(size))
}

/// A size in bytes as a person reads it: `512 B`, `1.5 KiB`, `200.0 MiB`, `1.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
