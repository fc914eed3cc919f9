//! Short invite links: the full invite sealed into an expiring blob on the inviter's relay,
//! and a link that only says where the blob is and which key opens it.
//!
//! A full invite is ~2.7 KB (the ML-KEM-1024 prekey alone is 1,569 bytes), which makes a QR
//! code of 177 modules: wider than most terminals and hard to scan from a phone. The short
//! link is ~175 characters, a QR code of about 57 columns.
//!
//! ```text
//! link  = "sotto:invite#" || base64url-no-pad(version(1) = 2 || ShortInviteWire protobuf)
//! message ShortInviteWire { string relay = 1; bytes read_id = 2; bytes key = 3; }
//! blob  = nonce(24) || XChaCha20-Poly1305(key, nonce, aad = BLOB_AAD,
//!                                         len(u32 BE) || full payload || zero padding)
//! ```
//!
//! The full payload is what a full link carries after its prefix (version 1 and the
//! `InviteWire`). Every invite blob is exactly one blob chunk ([`INVITE_BLOB_SIZE`]), so the
//! relay cannot tell an invite from a piece of a file; it learns only that a blob of one chunk
//! was written and, later, read. The link works as long as the relay keeps blobs (48 hours
//! by default); a full link works as long as the invite's mailbox.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use prost::Message;
use rand::CryptoRng;
use sotto_proto::limits::BLOB_CHUNK_SIZE;
use sotto_proto::{BlobReadId, RelayAddress};
use zeroize::{Zeroize, Zeroizing};

use super::content::fixed;
use super::error::{InviteError, WireError};
use super::invite::{INVITE_PREFIX, INVITE_VERSION, Invite, MAX_LINK_LEN};

/// The format version of a short link (the first byte of its payload).
pub const SHORT_INVITE_VERSION: u8 = 2;
/// The size of every invite blob: one blob chunk.
pub const INVITE_BLOB_SIZE: usize = BLOB_CHUNK_SIZE;
/// Length of the key that seals an invite blob.
pub const INVITE_BLOB_KEY_LEN: usize = 32;
/// Associated data of the blob's seal: a key can only ever open an invite.
pub const BLOB_AAD: &[u8] = b"sotto invite blob v2";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const LEN_PREFIX: usize = 4;
/// Room for the full payload inside a blob.
const MAX_PAYLOAD: usize = INVITE_BLOB_SIZE - NONCE_LEN - TAG_LEN - LEN_PREFIX;

/// Where an invite's blob is and the key that opens it. `Debug` prints nothing; the key
/// zeroizes on drop.
pub struct ShortInvite {
    /// The relay holding the blob (the invite's mailbox is there too).
    pub relay: RelayAddress,
    /// The blob's read capability.
    pub read_id: BlobReadId,
    key: Zeroizing<[u8; INVITE_BLOB_KEY_LEN]>,
}

impl std::fmt::Debug for ShortInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShortInvite { .. }")
    }
}

#[derive(Clone, PartialEq, Message)]
#[prost(skip_debug)]
struct ShortInviteWire {
    #[prost(string, tag = "1")]
    relay: String,
    #[prost(bytes = "vec", tag = "2")]
    read_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    key: Vec<u8>,
}

impl std::fmt::Debug for ShortInviteWire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShortInviteWire { .. }")
    }
}

impl Drop for ShortInviteWire {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// An invite link of either form, as pasted.
#[derive(Debug)]
pub enum InviteLink {
    /// Self-contained.
    Full(Box<Invite>),
    /// A pointer to a sealed blob, to fetch before the invite can be read.
    Short(ShortInvite),
}

impl InviteLink {
    /// Reads a link of either version, or the compact form a QR code holds
    /// ([`super::invite_qr`]), forgiving what chat apps do to links as [`Invite::parse`] does.
    pub fn parse(link: &str) -> Result<Self, InviteError> {
        if let Some(compact) = super::invite_qr::parse(link) {
            return compact.map(Self::Short);
        }
        let payload = super::invite::link_payload(link)?;
        match payload.first() {
            Some(&INVITE_VERSION) => Ok(Self::Full(Box::new(Invite::from_payload(&payload)?))),
            Some(&SHORT_INVITE_VERSION) => Ok(Self::Short(ShortInvite::from_payload(&payload)?)),
            Some(&v) => Err(InviteError::UnsupportedVersion(v)),
            None => Err(WireError::MissingField("version").into()),
        }
    }
}

impl ShortInvite {
    /// Seals `invite` into a blob under a fresh key. Returns the blob to upload and the
    /// key, to be joined with the blob's read id by [`ShortInvite::new`].
    pub fn seal<R: CryptoRng + ?Sized>(
        invite: &Invite,
        rng: &mut R,
    ) -> Result<(Vec<u8>, Zeroizing<[u8; INVITE_BLOB_KEY_LEN]>), WireError> {
        let payload = invite.to_payload()?;
        if payload.len() > MAX_PAYLOAD {
            return Err(WireError::BodyTooLong { len: payload.len(), max: MAX_PAYLOAD });
        }
        let mut plain = Zeroizing::new(vec![0u8; INVITE_BLOB_SIZE - NONCE_LEN - TAG_LEN]);
        let len = u32::try_from(payload.len())
            .map_err(|_| WireError::BodyTooLong { len: payload.len(), max: MAX_PAYLOAD })?;
        plain[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
        plain[LEN_PREFIX..LEN_PREFIX + payload.len()].copy_from_slice(&payload);
        let mut key = Zeroizing::new([0u8; INVITE_BLOB_KEY_LEN]);
        rng.fill_bytes(&mut *key);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let sealed = XChaCha20Poly1305::new((&*key).into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: BLOB_AAD })
            .map_err(|_| WireError::Tampered)?;
        let mut blob = Vec::with_capacity(INVITE_BLOB_SIZE);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        debug_assert_eq!(blob.len(), INVITE_BLOB_SIZE);
        Ok((blob, key))
    }

    /// The short invite for a blob uploaded to `relay`.
    pub fn new(relay: RelayAddress, read_id: BlobReadId, key: Zeroizing<[u8; INVITE_BLOB_KEY_LEN]>) -> Self {
        Self { relay, read_id, key }
    }

    /// Opens the fetched blob and reads the invite inside. Any change to the blob, or a
    /// blob of another size, is [`WireError::Tampered`].
    pub fn open(&self, blob: &[u8]) -> Result<Invite, InviteError> {
        if blob.len() != INVITE_BLOB_SIZE {
            return Err(WireError::Tampered.into());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new((&*self.key).into())
                .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: BLOB_AAD })
                .map_err(|_| WireError::Tampered)?,
        );
        let (len, rest) = plain.split_at(LEN_PREFIX);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let payload = rest.get(..len).ok_or(WireError::BadLength(len))?;
        if rest[len..].iter().any(|&b| b != 0) {
            return Err(WireError::NonZeroPadding.into());
        }
        Invite::from_payload(payload)
    }

    /// The key that opens the blob (for the compact form, [`super::invite_qr`]).
    pub(super) fn key(&self) -> &[u8; INVITE_BLOB_KEY_LEN] {
        &self.key
    }

    /// The link `sotto:invite#…` (version 2).
    pub fn to_link(&self) -> String {
        let wire =
            ShortInviteWire { relay: self.relay.to_string(), read_id: self.read_id.0.to_vec(), key: self.key.to_vec() };
        let mut payload = Zeroizing::new(Vec::with_capacity(1 + wire.encoded_len()));
        payload.push(SHORT_INVITE_VERSION);
        wire.encode_raw(&mut *payload);
        let mut link = String::from(INVITE_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&*payload, &mut link);
        debug_assert!(link.len() <= MAX_LINK_LEN);
        link
    }

    fn from_payload(payload: &[u8]) -> Result<Self, WireError> {
        let body = payload.get(1..).ok_or(WireError::MissingField("version"))?;
        let wire = ShortInviteWire::decode(body)?;
        Ok(Self {
            relay: wire.relay.parse()?,
            read_id: BlobReadId(fixed("read_id", &wire.read_id)?),
            key: Zeroizing::new(fixed("key", &wire.key)?),
        })
    }
}

#[cfg(test)]
#[path = "invite_short_tests.rs"]
mod tests;
