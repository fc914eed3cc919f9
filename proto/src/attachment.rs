//! The attachment format: how a file becomes a blob (used by the client; the relay only
//! stores the result and never holds a key).
//!
//! ```text
//! plaintext stream = file bytes || zero bytes up to padme(file size)
//! segments         = the stream cut into SEGMENT_PLAIN-byte pieces (the last may be
//!                    shorter, or empty for an empty file: there is always one)
//! blob             = for each segment i: XChaCha20-Poly1305(key, nonce(i, last), segment)
//! nonce(i, last)   = 19 zero bytes || i as u32 big-endian || last as one byte   (STREAM, BE32)
//! digest           = SHA-256(blob)
//! ```
//!
//! The segmentation is the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár
//! ("Online authenticated-encryption and its nonce-reuse misuse-resistance", 2015), as
//! RustCrypto's `aead::stream::StreamBE32` implements it: each segment's nonce carries its
//! position and whether it is the last, so segments cannot be reordered, dropped, or the
//! stream cut short without a decryption failure. The key is fresh and random for every
//! file and used for nothing else, so a constant nonce prefix never repeats a nonce (as
//! in age's payload encryption). The positional API lets any segment be produced or
//! checked on its own: an interrupted upload or download resumes at a segment boundary
//! without re-reading what came before.
//!
//! One encrypted segment is exactly one relay blob chunk ([`BLOB_CHUNK_SIZE`]), so blob
//! offsets and segments line up. Padmé (Nikitin et al., "Reducing Metadata Leakage from
//! Encrypted Files and Communication with PURBs", PETS 2019) rounds the length up by at
//! most ~12%, so the relay learns only an O(log log n)-bit class of the file's size.
//! The digest commits to the exact ciphertext (Poly1305 is not key-committing); it and
//! the key travel inside the ratchet, never to the relay.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{NewStream, Nonce as StreamNonce, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{KeyInit, generic_array::GenericArray};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::limits::BLOB_CHUNK_SIZE;

/// Why a segment could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AttachmentError {
    /// Authentication failed, the segment is out of place, or its padding is not zero.
    #[error("segment failed authentication")]
    Tampered,
    /// The segment is shorter or longer than its place in the stream requires.
    #[error("segment has the wrong length")]
    Truncated,
    /// The position is beyond what the stream can number.
    #[error("position out of range")]
    OutOfRange,
}

/// Bytes of the Poly1305 tag on every segment.
pub const TAG_LEN: usize = 16;
/// Bytes of one encrypted segment: exactly one relay blob chunk.
pub const SEGMENT_CIPHER: usize = BLOB_CHUNK_SIZE;
/// Bytes of plaintext in every segment but the last.
pub const SEGMENT_PLAIN: usize = SEGMENT_CIPHER - TAG_LEN;
/// Length of a file key.
pub const KEY_LEN: usize = 32;

/// Padmé: `len` rounded up so that only its top O(log log len) bits are significant.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len)
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let low_bits = e - s;
    let mask = (1u64 << low_bits) - 1;
    (len + mask) & !mask
}

/// Segments in the stream of a file of `size` bytes (never zero).
pub fn segments(size: u64) -> u64 {
    padme(size).div_ceil(SEGMENT_PLAIN as u64).max(1)
}

/// The size of the blob for a file of `size` bytes: what the relay sees.
pub fn blob_len(size: u64) -> u64 {
    padme(size) + segments(size) * TAG_LEN as u64
}

/// Plaintext bytes in segment `index` of a file of `size` bytes (padding included).
pub fn segment_plain_len(size: u64, index: u64) -> usize {
    let padded = padme(size);
    let start = index * SEGMENT_PLAIN as u64;
    // At most SEGMENT_PLAIN, so the cast cannot truncate.
    padded.saturating_sub(start).min(SEGMENT_PLAIN as u64) as usize
}

/// A file's key. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; KEY_LEN]);

impl FileKey {
    /// A key from stored bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, for the pointer.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Encrypts and decrypts the segments of one file, by position.
pub struct SegmentCipher {
    stream: StreamBE32<XChaCha20Poly1305>,
    size: u64,
    count: u64,
}

impl SegmentCipher {
    /// The cipher for a file of `size` bytes under `key`.
    pub fn new(key: &FileKey, size: u64) -> Self {
        let aead = XChaCha20Poly1305::new(GenericArray::from_slice(key.as_bytes()));
        let nonce: StreamNonce<XChaCha20Poly1305, StreamBE32<XChaCha20Poly1305>> = GenericArray::default();
        Self { stream: StreamBE32::from_aead(aead, &nonce), size, count: segments(size) }
    }

    /// Segments in this file's stream.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Seals segment `index` from the file bytes it holds (`file_bytes`: all of them, so
    /// shorter than the segment only at the end of the file); the padding is added here.
    pub fn seal(&self, index: u64, file_bytes: &[u8]) -> Result<Vec<u8>, AttachmentError> {
        let plain = segment_plain_len(self.size, index);
        if file_bytes.len() > plain || index >= self.count {
            return Err(AttachmentError::OutOfRange);
        }
        let mut buf = Vec::with_capacity(plain + TAG_LEN);
        buf.extend_from_slice(file_bytes);
        buf.resize(plain, 0);
        let pos = u32::try_from(index).map_err(|_| AttachmentError::OutOfRange)?;
        self.stream
            .encrypt_in_place(pos, index + 1 == self.count, &[], &mut buf)
            .map_err(|_| AttachmentError::OutOfRange)?;
        Ok(buf)
    }

    /// File bytes in segment `index` (padding excluded).
    pub fn file_bytes_in(&self, index: u64) -> usize {
        let start = index.saturating_mul(SEGMENT_PLAIN as u64);
        self.size.saturating_sub(start).min(segment_plain_len(self.size, index) as u64) as usize
    }

    /// Decrypts segment `index` in place and checks its length and padding. On success
    /// `buf` holds the segment's file bytes (padding removed).
    pub fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), AttachmentError> {
        if index >= self.count {
            return Err(AttachmentError::Tampered);
        }
        let plain = segment_plain_len(self.size, index);
        if buf.len() != plain + TAG_LEN {
            return Err(AttachmentError::Truncated);
        }
        let pos = u32::try_from(index).map_err(|_| AttachmentError::Tampered)?;
        self.stream.decrypt_in_place(pos, index + 1 == self.count, &[], buf).map_err(|_| AttachmentError::Tampered)?;
        let file_bytes = self.file_bytes_in(index);
        // The padding is authenticated; anything but zeros means a broken sender.
        if buf.get(file_bytes..).is_some_and(|p| p.iter().any(|b| *b != 0)) {
            return Err(AttachmentError::Tampered);
        }
        buf.truncate(file_bytes);
        Ok(())
    }
}

/// The blob's digest, built up segment by segment in order.
#[derive(Default, Clone)]
pub struct BlobDigest(Sha256);

impl BlobDigest {
    /// Adds the next encrypted segment.
    pub fn update(&mut self, segment: &[u8]) {
        self.0.update(segment);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seal_all(key: &FileKey, data: &[u8]) -> Vec<Vec<u8>> {
        let c = SegmentCipher::new(key, data.len() as u64);
        (0..c.count())
            .map(|i| {
                let start = ((i as usize) * SEGMENT_PLAIN).min(data.len());
                let end = start + c.file_bytes_in(i);
                c.seal(i, &data[start..end]).unwrap()
            })
            .collect()
    }

    fn key() -> FileKey {
        FileKey::from_bytes([9; KEY_LEN])
    }

    #[test]
    fn padme_matches_the_paper() {
        assert_eq!((0..=9).map(padme).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 10]);
        assert_eq!(padme(1 << 30), 1 << 30);
        assert_eq!(padme((1 << 30) - 1), 1 << 30);
        assert_eq!(padme(1_000_001), 1_015_808);
        for len in [2u64, 17, 1000, 65_537, 1 << 20, 123_456_789, (1 << 30) + 1] {
            let p = padme(len);
            assert!(p >= len && (p - len) * 100 <= len * 12 + 100, "{len} -> {p}");
        }
    }

    #[test]
    fn segments_round_trip_and_the_blob_has_the_announced_length() {
        let key = key();
        for size in [0usize, 1, SEGMENT_PLAIN - 1, SEGMENT_PLAIN, SEGMENT_PLAIN + 1, 3 * SEGMENT_PLAIN + 7, 100_003] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let blob = seal_all(&key, &data);
            assert_eq!(blob.iter().map(Vec::len).sum::<usize>() as u64, blob_len(size as u64));
            assert!(blob.iter().all(|s| s.len() <= SEGMENT_CIPHER));
            let c = SegmentCipher::new(&key, size as u64);
            let mut out = Vec::new();
            for (i, mut s) in blob.into_iter().enumerate() {
                c.open(i as u64, &mut s).unwrap();
                out.extend_from_slice(&s);
            }
            assert_eq!(out, data);
        }
    }

    #[test]
    fn flipped_reordered_or_missing_segments_are_refused() {
        let key = key();
        let data = vec![7u8; 2 * SEGMENT_PLAIN + 5];
        let blob = seal_all(&key, &data);
        let c = SegmentCipher::new(&key, data.len() as u64);
        let mut flipped = blob[1].clone();
        flipped[100] ^= 1;
        assert!(matches!(c.open(1, &mut flipped), Err(AttachmentError::Tampered)));
        let mut swapped = blob[0].clone();
        assert!(matches!(c.open(1, &mut swapped), Err(AttachmentError::Tampered)));
        // A segment sealed as not the last does not open as the last, and the reverse.
        let mut middle = blob[1].clone();
        assert!(matches!(c.open(2, &mut middle), Err(AttachmentError::Truncated | AttachmentError::Tampered)));
        let mut last = blob[2].clone();
        let as_middle = SegmentCipher::new(&key, 4 * SEGMENT_PLAIN as u64);
        assert!(as_middle.open(2, &mut last).is_err());
        let mut cut = blob[2].clone();
        cut.truncate(cut.len() - 1);
        assert!(matches!(c.open(2, &mut cut), Err(AttachmentError::Truncated)));
        let wrong = SegmentCipher::new(&FileKey::from_bytes([1; KEY_LEN]), data.len() as u64);
        let mut s = blob[0].clone();
        assert!(matches!(wrong.open(0, &mut s), Err(AttachmentError::Tampered)));
    }
}
