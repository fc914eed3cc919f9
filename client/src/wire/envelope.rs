//! The sealed envelope the relay carries (DESIGN §3, §5).
//!
//! The relay stores and forwards envelopes of exactly [`ENVELOPE_SIZE`] bytes. Inside is a
//! libsignal message (PreKey or normal) or cover traffic, but the relay must not learn which,
//! nor how long it is: a PreKey message is ~1.9 KB and betrays the start of a conversation.
//! So the libsignal ciphertext is wrapped once more under the mailbox's symmetric
//! [`EnvelopeKey`] (shared by the mailbox's owner and its one sender, exchanged inside invites
//! and reply addresses) and padded to the fixed size:
//!
//! ```text
//! envelope = nonce(24) || XChaCha20-Poly1305(key, aad = "sotto envelope v1" || send_id(24), inner)
//! inner    = kind(1) || len(u16 big-endian) || body(len) || zero padding     (INNER_LEN bytes)
//! ```
//!
//! The associated data binds the envelope to its mailbox's send id, so an envelope moved to
//! another mailbox fails as [`WireError::Tampered`]. Nonces are random (192 bits), so no
//! counter state is needed. Decoding is total: every envelope opens to a body or a typed
//! error; padding must be zero so an envelope has exactly one valid encoding per body.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::CryptoRng;
use sotto_proto::limits::ENVELOPE_SIZE;
use sotto_proto::{Envelope, SendId};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::WireError;

/// Length of an [`EnvelopeKey`]: an XChaCha20-Poly1305 key.
pub const ENVELOPE_KEY_LEN: usize = 32;
/// Length of the random nonce that starts every envelope (XChaCha20).
pub const ENVELOPE_NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag that ends every envelope.
pub const ENVELOPE_TAG_LEN: usize = 16;
/// Length of the header inside the sealed part: kind (1) and body length (u16).
pub const INNER_HEADER_LEN: usize = 3;
/// Length of the sealed plaintext: everything but nonce and tag (16,216 bytes).
pub const INNER_LEN: usize = ENVELOPE_SIZE - ENVELOPE_NONCE_LEN - ENVELOPE_TAG_LEN;
/// The longest body one envelope carries (16,213 bytes).
pub const MAX_BODY_LEN: usize = INNER_LEN - INNER_HEADER_LEN;
/// Domain separation at the start of the associated data; the send id follows.
pub const ENVELOPE_AAD_CONTEXT: &[u8] = b"sotto envelope v1";

const AAD_LEN: usize = ENVELOPE_AAD_CONTEXT.len() + sotto_proto::limits::ID_LEN;
// The body length must fit the u16 length field.
const _: () = assert!(MAX_BODY_LEN <= u16::MAX as usize);

/// A mailbox's symmetric envelope key, shared by its owner and its one sender. Zeroized on
/// drop; `Debug` never prints it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EnvelopeKey([u8; ENVELOPE_KEY_LEN]);

impl EnvelopeKey {
    /// A fresh random key.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self([0; ENVELOPE_KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; ENVELOPE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Wraps raw key bytes of unchecked length (e.g. from a decoded protobuf field).
    pub fn from_slice(field: &'static str, bytes: &[u8]) -> Result<Self, WireError> {
        let mut key = Self([0; ENVELOPE_KEY_LEN]);
        if bytes.len() != ENVELOPE_KEY_LEN {
            return Err(WireError::FieldLength { field, len: bytes.len(), want: ENVELOPE_KEY_LEN });
        }
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; ENVELOPE_KEY_LEN] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }
}

impl std::fmt::Debug for EnvelopeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvelopeKey(..)")
    }
}

/// What an envelope's body is. Hidden from the relay, which sees only sealed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BodyKind {
    /// A libsignal `PreKeySignalMessage` (the first messages of a session).
    PreKey = 1,
    /// A libsignal `SignalMessage`.
    Signal = 2,
    /// Cover traffic: the receiver drops it after opening.
    Cover = 3,
}

impl BodyKind {
    /// The kind's byte on the wire.
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    /// The kind with this byte, if any.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::PreKey),
            2 => Some(Self::Signal),
            3 => Some(Self::Cover),
            _ => None,
        }
    }
}

fn aad(send_id: &SendId) -> [u8; AAD_LEN] {
    let mut aad = [0u8; AAD_LEN];
    let (context, id) = aad.split_at_mut(ENVELOPE_AAD_CONTEXT.len());
    context.copy_from_slice(ENVELOPE_AAD_CONTEXT);
    id.copy_from_slice(send_id.as_bytes());
    aad
}

/// Seals `body` of `kind` for the mailbox with `send_id`, under its `key`, padded to exactly
/// [`ENVELOPE_SIZE`] bytes with a fresh random nonce.
pub fn seal<R: CryptoRng + ?Sized>(
    key: &EnvelopeKey,
    send_id: &SendId,
    kind: BodyKind,
    body: &[u8],
    rng: &mut R,
) -> Result<Envelope, WireError> {
    let mut nonce = [0u8; ENVELOPE_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    seal_with_nonce(key, send_id, kind, body, &nonce)
}

/// [`seal`] with a given nonce: for golden vectors only. A nonce must never repeat under a key.
pub(crate) fn seal_with_nonce(
    key: &EnvelopeKey,
    send_id: &SendId,
    kind: BodyKind,
    body: &[u8],
    nonce: &[u8; ENVELOPE_NONCE_LEN],
) -> Result<Envelope, WireError> {
    let len = u16::try_from(body.len())
        .ok()
        .filter(|_| body.len() <= MAX_BODY_LEN)
        .ok_or(WireError::BodyTooLong { len: body.len(), max: MAX_BODY_LEN })?;
    let mut out = vec![0u8; ENVELOPE_SIZE];
    let (nonce_part, rest) = out.split_at_mut(ENVELOPE_NONCE_LEN);
    let (inner, tag_part) = rest.split_at_mut(INNER_LEN);
    nonce_part.copy_from_slice(nonce);
    let (header, payload) = inner.split_at_mut(INNER_HEADER_LEN);
    header[0] = kind.to_u8();
    header[1..].copy_from_slice(&len.to_be_bytes());
    payload[..body.len()].copy_from_slice(body);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(XNonce::from_slice(nonce), &aad(send_id), inner)
        .map_err(|_| WireError::Crypto)?;
    tag_part.copy_from_slice(&tag);
    Envelope::from_slice(&out).map_err(|_| WireError::Crypto)
}

/// Opens an envelope sealed for the mailbox with `send_id` under `key`: its kind and body.
pub fn open(key: &EnvelopeKey, send_id: &SendId, envelope: &Envelope) -> Result<(BodyKind, Vec<u8>), WireError> {
    let (nonce, rest) = envelope.as_bytes().split_at(ENVELOPE_NONCE_LEN);
    let (sealed, tag) = rest.split_at(INNER_LEN);
    let mut inner = Zeroizing::new(sealed.to_vec());
    key.cipher()
        .decrypt_in_place_detached(XNonce::from_slice(nonce), &aad(send_id), &mut inner, Tag::from_slice(tag))
        .map_err(|_| WireError::Tampered)?;
    parse_inner(&inner)
}

/// Reads `kind || len || body || zero padding`.
fn parse_inner(inner: &[u8]) -> Result<(BodyKind, Vec<u8>), WireError> {
    let [kind, len_hi, len_lo, rest @ ..] = inner else {
        return Err(WireError::BadLength(inner.len()));
    };
    let kind = BodyKind::from_u8(*kind).ok_or(WireError::BadKind(*kind))?;
    let len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    if len > MAX_BODY_LEN || len > rest.len() {
        return Err(WireError::BadLength(len));
    }
    let (body, padding) = rest.split_at(len);
    if padding.iter().any(|&b| b != 0) {
        return Err(WireError::NonZeroPadding);
    }
    Ok((kind, body.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use sha2::{Digest, Sha256};

    use super::*;

    fn key() -> EnvelopeKey {
        EnvelopeKey::from_bytes(std::array::from_fn(|i| i as u8))
    }

    fn send_id() -> SendId {
        SendId(std::array::from_fn(|i| 0xA0 + i as u8))
    }

    const NONCE: [u8; ENVELOPE_NONCE_LEN] = [0x42; ENVELOPE_NONCE_LEN];

    #[test]
    fn sizes() {
        assert_eq!(INNER_LEN, 16_216);
        assert_eq!(MAX_BODY_LEN, 16_213);
        assert_eq!(AAD_LEN, 41);
    }

    /// Fixed key, nonce, send id and body give exactly these bytes. Cross-checked with an
    /// independent XChaCha20-Poly1305 (Python: HChaCha20 by hand + `cryptography`'s
    /// ChaCha20Poly1305), so this pins the format, not just this code.
    #[test]
    fn golden_vector() {
        let env = seal_with_nonce(&key(), &send_id(), BodyKind::Signal, b"hello, sotto", &NONCE).unwrap();
        let bytes = env.as_bytes();
        assert_eq!(hex::encode(&bytes[..ENVELOPE_NONCE_LEN]), "42".repeat(ENVELOPE_NONCE_LEN));
        assert_eq!(hex::encode(&bytes[24..56]), GOLDEN_FIRST_CT);
        assert_eq!(hex::encode(&bytes[ENVELOPE_SIZE - ENVELOPE_TAG_LEN..]), GOLDEN_TAG);
        assert_eq!(hex::encode(Sha256::digest(bytes)), GOLDEN_SHA256);
        assert_eq!(open(&key(), &send_id(), &env).unwrap(), (BodyKind::Signal, b"hello, sotto".to_vec()));
    }

    const GOLDEN_FIRST_CT: &str = "fc95ed2ed8461a1c6dd83cb7fb9847cf902d6dec0ece7123d67136a67ea7cf3b";
    const GOLDEN_TAG: &str = "eb6e50b872ddf58bc4bd745de1f1bbc4";
    const GOLDEN_SHA256: &str = "e16c96dada1a442bde7a3da2e154b5c248940e2e0c462085a330af1d462cc817";

    #[test]
    fn seeded_rng_is_deterministic() {
        let a = seal(&key(), &send_id(), BodyKind::Cover, b"", &mut StdRng::seed_from_u64(7)).unwrap();
        let b = seal(&key(), &send_id(), BodyKind::Cover, b"", &mut StdRng::seed_from_u64(7)).unwrap();
        let c = seal(&key(), &send_id(), BodyKind::Cover, b"", &mut StdRng::seed_from_u64(8)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_kind_and_edge_length_round_trips() {
        let mut rng = StdRng::seed_from_u64(1);
        for kind in [BodyKind::PreKey, BodyKind::Signal, BodyKind::Cover] {
            for len in [0, 1, 100, 2_000, MAX_BODY_LEN - 1, MAX_BODY_LEN] {
                let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
                let env = seal(&key(), &send_id(), kind, &body, &mut rng).unwrap();
                assert_eq!(env.as_bytes().len(), ENVELOPE_SIZE);
                assert_eq!(open(&key(), &send_id(), &env).unwrap(), (kind, body));
            }
        }
    }

    #[test]
    fn too_long_body_is_refused() {
        let body = vec![0u8; MAX_BODY_LEN + 1];
        let err = seal(&key(), &send_id(), BodyKind::Signal, &body, &mut rand::rng()).unwrap_err();
        assert_eq!(err, WireError::BodyTooLong { len: MAX_BODY_LEN + 1, max: MAX_BODY_LEN });
        let huge = vec![0u8; 70_000];
        assert!(matches!(
            seal(&key(), &send_id(), BodyKind::Signal, &huge, &mut rand::rng()),
            Err(WireError::BodyTooLong { .. })
        ));
    }

    #[test]
    fn each_region_flipped_is_tampered() {
        let env = seal_with_nonce(&key(), &send_id(), BodyKind::PreKey, b"body", &NONCE).unwrap();
        // Nonce, header, body, padding, the last padding byte, the tag.
        let positions = [0, 23, 24, 25, 27, 28, 31, 1_000, ENVELOPE_SIZE - 17, ENVELOPE_SIZE - 16, ENVELOPE_SIZE - 1];
        for pos in positions {
            for bit in [0x01, 0x80] {
                let mut bytes = env.as_bytes().to_vec();
                bytes[pos] ^= bit;
                let bad = Envelope::from_slice(&bytes).unwrap();
                assert_eq!(open(&key(), &send_id(), &bad), Err(WireError::Tampered), "byte {pos}");
            }
        }
    }

    #[test]
    fn wrong_send_id_or_key_is_tampered() {
        let env = seal(&key(), &send_id(), BodyKind::Signal, b"x", &mut rand::rng()).unwrap();
        let mut other = send_id();
        other.0[23] ^= 1;
        assert_eq!(open(&key(), &other, &env), Err(WireError::Tampered));
        let other_key = EnvelopeKey::random(&mut rand::rng());
        assert_eq!(open(&other_key, &send_id(), &env), Err(WireError::Tampered));
    }

    /// A peer holding the key can still send a malformed inside: each is its own error.
    #[test]
    fn malformed_inside_is_typed() {
        let seal_inner = |inner: &[u8]| {
            let mut buf = inner.to_vec();
            let tag = key()
                .cipher()
                .encrypt_in_place_detached(XNonce::from_slice(&NONCE), &aad(&send_id()), &mut buf)
                .unwrap();
            let mut out = NONCE.to_vec();
            out.extend_from_slice(&buf);
            out.extend_from_slice(&tag);
            Envelope::from_slice(&out).unwrap()
        };
        let mut inner = vec![0u8; INNER_LEN];
        inner[0] = 9;
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::BadKind(9)));
        inner[0] = 0;
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::BadKind(0)));
        inner[0] = 2;
        inner[1..3].copy_from_slice(&((MAX_BODY_LEN + 1) as u16).to_be_bytes());
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::BadLength(MAX_BODY_LEN + 1)));
        inner[1..3].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::BadLength(65_535)));
        inner[1..3].copy_from_slice(&4u16.to_be_bytes());
        inner[INNER_LEN - 1] = 1;
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::NonZeroPadding));
        inner[INNER_LEN - 1] = 0;
        inner[7] = 1; // first padding byte after a 4-byte body
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Err(WireError::NonZeroPadding));
        inner[7] = 0;
        assert_eq!(open(&key(), &send_id(), &seal_inner(&inner)), Ok((BodyKind::Signal, vec![0; 4])));
        assert!(parse_inner(&[1, 0]).is_err());
    }

    #[test]
    fn key_debug_is_redacted() {
        assert_eq!(format!("{:?}", key()), "EnvelopeKey(..)");
        assert!(EnvelopeKey::from_slice("k", &[0; 31]).is_err());
        assert_eq!(EnvelopeKey::from_slice("k", key().as_bytes()).unwrap().as_bytes(), key().as_bytes());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..=MAX_BODY_LEN), kind in 1u8..=3, seed: u64) {
            let kind = BodyKind::from_u8(kind).unwrap();
            let env = seal(&key(), &send_id(), kind, &body, &mut StdRng::seed_from_u64(seed)).unwrap();
            prop_assert_eq!(open(&key(), &send_id(), &env).unwrap(), (kind, body));
        }

        #[test]
        fn open_never_panics(bytes in proptest::collection::vec(any::<u8>(), ENVELOPE_SIZE..=ENVELOPE_SIZE)) {
            let env = Envelope::from_slice(&bytes).unwrap();
            prop_assert_eq!(open(&key(), &send_id(), &env), Err(WireError::Tampered));
        }

        #[test]
        fn parse_inner_never_panics(inner in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_inner(&inner);
        }
    }
}
