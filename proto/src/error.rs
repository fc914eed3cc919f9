//! Decoding errors, and the error codes a relay puts in its `Error` responses.

use thiserror::Error;

/// Why a byte string is not a valid cell or frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A cell was not exactly [`crate::limits::CELL_SIZE`] bytes.
    #[error("a cell must be exactly {expected} bytes, got {got}")]
    CellSize { expected: usize, got: usize },
    /// The cell's protocol version is not one this code speaks.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// The body length in the cell header runs past the end of the cell.
    #[error("cell body length {0} exceeds the cell")]
    BodyLength(usize),
    /// Padding after the body was not all zero bytes.
    #[error("cell padding is not zero")]
    NonZeroPadding,
    /// The body ended before a field did.
    #[error("frame is truncated")]
    Truncated,
    /// Bytes were left after the last field of a frame.
    #[error("{count} unexpected bytes after the frame")]
    TrailingBytes { count: usize },
    /// The frame tag names no frame in this direction.
    #[error("unknown frame tag {0:#04x}")]
    UnknownTag(u8),
    /// A presence flag was neither 0 nor 1.
    #[error("invalid flag byte {0:#04x}")]
    BadFlag(u8),
    /// A blob chunk was longer than [`crate::limits::BLOB_CHUNK_SIZE`].
    #[error("blob chunk of {0} bytes is too long")]
    ChunkTooLong(usize),
    /// An envelope was not exactly [`crate::limits::ENVELOPE_SIZE`] bytes.
    #[error("envelope of {0} bytes has the wrong size")]
    EnvelopeSize(usize),
    /// A `BlobGet` asked for no chunks, or more than
    /// [`crate::limits::BLOB_GET_MAX_CHUNKS`].
    #[error("a blob read of {0} chunks is outside 1 to the maximum")]
    ChunkCount(u16),
    /// A declared blob size exceeds [`crate::limits::MAX_BLOB_SIZE`].
    #[error("blob size {0} exceeds the protocol maximum")]
    BlobTooLarge(u64),
}

/// The error codes a relay sends in an `Error` response. The numbers are part of the
/// wire format and never change meaning; `docs/PROTOCOL.md` has the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame could not be parsed (bad tag, truncated, trailing bytes, bad padding).
    Malformed,
    /// A WebSocket message was not exactly one cell long, or was not binary.
    CellSize,
    /// The cell's protocol version is not supported by this relay.
    Version,
    /// A signature is missing or does not verify under the registered key.
    Auth,
    /// No mailbox has this id (never existed, deleted or expired).
    NoMailbox,
    /// The mailbox's queue is at its length or byte quota; try again later.
    QueueFull,
    /// Too many frames on this connection; slow down.
    RateLimited,
    /// A blob is larger than this relay accepts, or the relay's blob quota is spent.
    TooLarge,
    /// No blob has this id (never existed or expired).
    NoBlob,
    /// The blob is not completely uploaded yet.
    BlobIncomplete,
    /// A blob chunk's offset is not where the upload stands, or a non-final chunk is short.
    BadOffset,
    /// The mailbox is already locked to a sender key.
    AlreadySecured,
    /// The message to acknowledge is not in the queue (already acknowledged or expired).
    NoMessage,
    /// The connection is at its limit of subscriptions. (A relay at its connection limit
    /// closes new connections instead: it cannot answer before TLS.)
    Busy,
    /// The relay could not complete the operation (storage failure); nothing was changed.
    Internal,
    /// A code this version does not know; kept so newer relays stay understandable.
    Unknown(u16),
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            Self::Malformed => 1,
            Self::CellSize => 2,
            Self::Version => 3,
            Self::Auth => 4,
            Self::NoMailbox => 5,
            Self::QueueFull => 6,
            Self::RateLimited => 7,
            Self::TooLarge => 8,
            Self::NoBlob => 9,
            Self::BlobIncomplete => 10,
            Self::BadOffset => 11,
            Self::AlreadySecured => 12,
            Self::NoMessage => 13,
            Self::Busy => 14,
            Self::Internal => 15,
            Self::Unknown(n) => n,
        }
    }

    /// The code for a number on the wire; numbers not listed become [`Self::Unknown`].
    pub fn from_u16(n: u16) -> Self {
        match n {
            1 => Self::Malformed,
            2 => Self::CellSize,
            3 => Self::Version,
            4 => Self::Auth,
            5 => Self::NoMailbox,
            6 => Self::QueueFull,
            7 => Self::RateLimited,
            8 => Self::TooLarge,
            9 => Self::NoBlob,
            10 => Self::BlobIncomplete,
            11 => Self::BadOffset,
            12 => Self::AlreadySecured,
            13 => Self::NoMessage,
            14 => Self::Busy,
            15 => Self::Internal,
            n => Self::Unknown(n),
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Self::Malformed => "the relay could not understand a request",
            Self::CellSize => "a message to the relay had the wrong size",
            Self::Version => "the relay speaks another protocol version",
            Self::Auth => "the relay refused a signature",
            Self::NoMailbox => "the mailbox does not exist on the relay",
            Self::QueueFull => "the mailbox is full; try again later",
            Self::RateLimited => "too many requests; slow down",
            Self::TooLarge => "the file is larger than the relay accepts",
            Self::NoBlob => "the file is not on the relay (it may have expired)",
            Self::BlobIncomplete => "the file is not completely uploaded yet",
            Self::BadOffset => "a file piece arrived out of order",
            Self::AlreadySecured => "the mailbox is already locked to a sender",
            Self::NoMessage => "the message is no longer queued",
            Self::Busy => "the relay is busy or shutting down",
            Self::Internal => "the relay had an internal error",
            Self::Unknown(n) => return write!(f, "the relay reported error {n}"),
        };
        f.write_str(text)
    }
}

impl From<&DecodeError> for ErrorCode {
    fn from(e: &DecodeError) -> Self {
        match e {
            DecodeError::CellSize { .. } => Self::CellSize,
            DecodeError::Version(_) => Self::Version,
            DecodeError::BlobTooLarge(_) => Self::TooLarge,
            _ => Self::Malformed,
        }
    }
}
