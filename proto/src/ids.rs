//! Ids, keys, signatures, envelopes and blob chunks.
//!
//! None of these print their bytes through `Debug`: logs must never carry an id or a
//! key, and a stray `{:?}` should not be able to break that rule.

use crate::error::DecodeError;
use crate::limits::{BLOB_CHUNK_SIZE, ENVELOPE_SIZE, ID_LEN, NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};

macro_rules! opaque_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

opaque_bytes!(
    /// The id a mailbox's owner uses to subscribe, acknowledge and delete.
    RecvId,
    ID_LEN
);
opaque_bytes!(
    /// The id a contact uses to send into a mailbox. Unrelated to the [`RecvId`].
    SendId,
    ID_LEN
);
opaque_bytes!(
    /// The capability to upload a blob's chunks.
    BlobWriteId,
    ID_LEN
);
opaque_bytes!(
    /// The capability to download a completed blob. Unrelated to the [`BlobWriteId`].
    BlobReadId,
    ID_LEN
);
opaque_bytes!(
    /// An Ed25519 public key (a mailbox owner's or a sender's), fresh for each mailbox.
    PublicKey,
    PUBLIC_KEY_LEN
);
opaque_bytes!(
    /// An Ed25519 signature.
    Signature,
    SIGNATURE_LEN
);
opaque_bytes!(
    /// A connection's random server nonce, covered by every signature on it.
    Nonce,
    NONCE_LEN
);

/// An end-to-end sealed envelope: always exactly [`ENVELOPE_SIZE`] bytes. The relay never
/// looks inside.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope(Box<[u8; ENVELOPE_SIZE]>);

impl Envelope {
    /// Wraps bytes that must be exactly [`ENVELOPE_SIZE`] long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut b = Box::new([0u8; ENVELOPE_SIZE]);
        if bytes.len() != ENVELOPE_SIZE {
            return Err(DecodeError::EnvelopeSize(bytes.len()));
        }
        b.copy_from_slice(bytes);
        Ok(Self(b))
    }

    /// The envelope's bytes.
    pub fn as_bytes(&self) -> &[u8; ENVELOPE_SIZE] {
        &self.0
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Envelope(..)")
    }
}

/// A piece of a blob, at most [`BLOB_CHUNK_SIZE`] bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk(Vec<u8>);

impl Chunk {
    /// Wraps bytes of at most [`BLOB_CHUNK_SIZE`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.len() > BLOB_CHUNK_SIZE {
            return Err(DecodeError::ChunkTooLong(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The chunk's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The chunk's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the chunk is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The chunk's bytes, owned.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len())
    }
}
