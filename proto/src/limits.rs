//! Every size on the wire, as named constants.
//!
//! The cell size is the one number everything else follows from. Every frame in both
//! directions is exactly one cell, so an observer of the TLS stream learns only how many
//! cells passed and when. See `docs/PROTOCOL.md` ("Why 16 KiB cells") for the reasoning.

/// The protocol version carried in the first byte of every cell.
/// Version 2 changed blob transfers: a `BlobPut` is answered only when asked (or at the
/// end, or on refusal) and a `BlobGet` asks for a run of chunks.
pub const PROTOCOL_VERSION: u8 = 2;

/// The largest plaintext a TLS 1.3 record carries (RFC 8446 §5.1: 2^14 bytes).
pub const TLS_MAX_FRAGMENT: usize = 16_384;

/// The largest WebSocket header for a cell: 2 bytes, a 16-bit extended length and the
/// 4-byte mask every client-to-server frame carries (RFC 6455 §5.2).
pub const WS_MAX_HEADER: usize = 8;

/// The size of every cell on the wire, in both directions. A cell plus its WebSocket
/// header fits one TLS record, so each cell sent and flushed on its own is one record of
/// one length per direction.
pub const CELL_SIZE: usize = TLS_MAX_FRAGMENT - WS_MAX_HEADER;

/// Cell header: protocol version (1 byte) and body length (2 bytes, big-endian).
pub const CELL_HEADER_LEN: usize = 3;

/// The largest frame body a cell can carry; the rest of the cell is zero padding.
pub const MAX_BODY_LEN: usize = CELL_SIZE - CELL_HEADER_LEN;

/// Mailbox and blob ids: 24 random bytes (192 bits), unguessable and never reused.
pub const ID_LEN: usize = 24;

/// Ed25519 public keys.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Ed25519 signatures.
pub const SIGNATURE_LEN: usize = 64;

/// The per-connection server nonce that owner and sender signatures cover.
pub const NONCE_LEN: usize = 32;

/// The size of every end-to-end envelope. The client pads every message to exactly this
/// size before the relay sees it. Room is left in the cell for the largest header that
/// travels with an envelope (a `Send` with its sender signature).
pub const ENVELOPE_SIZE: usize = 16_256;

/// The largest piece of a blob that one cell carries.
pub const BLOB_CHUNK_SIZE: usize = 16_256;

/// The most chunks one `BlobGet` asks for: 64 × 16,256 bytes, about 1 MiB. Each chunk
/// answered costs the connection one frame of its rate limit, as a request would.
pub const BLOB_GET_MAX_CHUNKS: u16 = 64;

/// The hard ceiling on a blob's declared size (4 GiB); a relay's configuration sets a
/// lower one.
pub const MAX_BLOB_SIZE: u64 = 4 << 30;

/// The longest relay address accepted, in bytes.
pub const MAX_ADDRESS_LEN: usize = 512;

/// The longest host name in an address (RFC 1035 §2.3.4).
pub const MAX_HOST_LEN: usize = 253;

/// The longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

// The largest frames must fit their cell; checked at compile time.
const _: () = {
    // Send: corr, tag, send id, envelope, flag, signature.
    assert!(4 + 1 + ID_LEN + ENVELOPE_SIZE + 1 + SIGNATURE_LEN <= MAX_BODY_LEN);
    // Deliver: tag, recv id, seq, envelope.
    assert!(1 + ID_LEN + 8 + ENVELOPE_SIZE <= MAX_BODY_LEN);
    // BlobPut: corr, tag, write id, offset, answer flag, length, data.
    assert!(4 + 1 + ID_LEN + 8 + 1 + 2 + BLOB_CHUNK_SIZE <= MAX_BODY_LEN);
    // BlobData: tag, corr, offset, size, length, data.
    assert!(1 + 4 + 8 + 8 + 2 + BLOB_CHUNK_SIZE <= MAX_BODY_LEN);
    assert!(MAX_BODY_LEN <= u16::MAX as usize);
};
