//! The profile's key hierarchy.
//!
//! ```text
//! passphrase --Argon2id(salt, KdfParams)--> KEK --XChaCha20-Poly1305--> wrapped master key
//! master key --HKDF-SHA256("sotto/store/v1/seal")--> seal key  (values, XChaCha20-Poly1305)
//!            --HKDF-SHA256("sotto/store/v1/index")-> index key (record keys, HMAC-SHA256)
//! ```
//!
//! The master key is random rather than derived from the passphrase, so changing the
//! passphrase (or destroying the wrapped copy, for a duress wipe) touches one small header
//! and never re-encrypts the database. Every secret here zeroizes itself on drop and has no
//! `Debug` or `Clone`, so it cannot end up in a log or in a stray copy by accident.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::StoreError;

/// Length of every symmetric key in the hierarchy.
pub const KEY_LEN: usize = 32;
/// Length of the Argon2id salt stored in the header.
pub const SALT_LEN: usize = 16;
/// Length of an XChaCha20-Poly1305 nonce; long enough that random nonces never collide.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;

const SEAL_LABEL: &[u8] = b"sotto/store/v1/seal";
const INDEX_LABEL: &[u8] = b"sotto/store/v1/index";
const KEYRING_LABEL: &[u8] = b"sotto/store/v1/keyring";
/// HMAC keys are padded to the SHA-256 block size anyway; a full-block key lets us build the
/// MAC with the infallible `KeyInit::new` instead of handling an impossible length error.
const INDEX_KEY_LEN: usize = 64;

/// Argon2id cost parameters, stored in the profile header so that a profile keeps opening
/// after the defaults change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes over the memory.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// Production memory cost: 64 MiB, the RFC 9106 "second recommended" option. An attacker
    /// guessing passphrases on a seized phone's image pays this much memory per guess.
    pub const DEFAULT_M_COST_KIB: u32 = 64 * 1024;
    /// Production pass count, paired with 64 MiB by RFC 9106.
    pub const DEFAULT_T_COST: u32 = 3;
    /// One lane: phones have few cores, and a second lane would halve the attacker's cost
    /// per core as much as ours.
    pub const DEFAULT_P_COST: u32 = 1;

    /// Upper bounds accepted when reading a header, so a crafted header cannot make `open`
    /// allocate unbounded memory or spin for hours. 2 GiB of memory.
    pub const MAX_M_COST_KIB: u32 = 2 * 1024 * 1024;
    /// Upper bound on passes accepted from a header.
    pub const MAX_T_COST: u32 = 64;
    /// Upper bound on lanes accepted from a header.
    pub const MAX_P_COST: u32 = 16;

    /// The production parameters (64 MiB, 3 passes, 1 lane).
    pub const fn production() -> Self {
        KdfParams { m_cost_kib: Self::DEFAULT_M_COST_KIB, t_cost: Self::DEFAULT_T_COST, p_cost: Self::DEFAULT_P_COST }
    }

    /// The cheapest parameters Argon2 accepts. **Only for tests**: a profile created with these
    /// falls to a passphrase guesser almost as fast as an unhashed one.
    pub const fn insecure_for_tests() -> Self {
        KdfParams { m_cost_kib: 8, t_cost: 1, p_cost: 1 }
    }

    /// Checks the bounds above and Argon2's own limits.
    pub fn validate(&self) -> Result<(), StoreError> {
        self.argon2_params().map(|_| ())
    }

    fn argon2_params(&self) -> Result<Params, StoreError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB {
            return Err(StoreError::InvalidKdfParams("memory cost too large"));
        }
        if self.t_cost > Self::MAX_T_COST {
            return Err(StoreError::InvalidKdfParams("too many passes"));
        }
        if self.p_cost > Self::MAX_P_COST {
            return Err(StoreError::InvalidKdfParams("too many lanes"));
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|_| StoreError::InvalidKdfParams("rejected by Argon2"))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::production()
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), StoreError> {
    OsRng.try_fill_bytes(buf).map_err(|_| StoreError::Rng)
}

/// A fresh random salt for Argon2id.
pub(crate) fn random_salt() -> Result<[u8; SALT_LEN], StoreError> {
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt)?;
    Ok(salt)
}

/// Key-encryption key derived from the passphrase; lives only while wrapping or unwrapping.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Kek([u8; KEY_LEN]);

impl Kek {
    fn derive(passphrase: &[u8], salt: &[u8], params: &KdfParams) -> Result<Kek, StoreError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.argon2_params()?);
        let mut kek = Kek([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase, salt, &mut kek.0)
            .map_err(|_| StoreError::InvalidKdfParams("rejected by Argon2"))?;
        Ok(kek)
    }
}

/// The profile's random root key. Everything else is derived from it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    pub(crate) fn generate() -> Result<MasterKey, StoreError> {
        let mut key = MasterKey([0u8; KEY_LEN]);
        random_bytes(&mut key.0)?;
        Ok(key)
    }

    /// Encrypts the master key under Argon2id(passphrase). `aad` binds the header fields
    /// (salt, parameters) so that they cannot be swapped without failing the unwrap.
    pub(crate) fn wrap(
        &self,
        passphrase: &[u8],
        salt: &[u8],
        params: &KdfParams,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let kek = Kek::derive(passphrase, salt, params)?;
        aead_seal(&kek.0, nonce, aad, &self.0)
    }

    /// Reverses [`MasterKey::wrap`]. A failed authentication means a wrong passphrase (or an
    /// altered header, which we cannot tell apart).
    pub(crate) fn unwrap_with(
        passphrase: &[u8],
        salt: &[u8],
        params: &KdfParams,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        wrapped: &[u8],
    ) -> Result<MasterKey, StoreError> {
        let kek = Kek::derive(passphrase, salt, params)?;
        let plain = aead_open(&kek.0, nonce, aad, wrapped).ok_or(StoreError::WrongPassphrase)?;
        let mut key = MasterKey([0u8; KEY_LEN]);
        if plain.len() != KEY_LEN {
            return Err(StoreError::CorruptHeader("wrapped key has the wrong length"));
        }
        key.0.copy_from_slice(&plain);
        Ok(key)
    }

    /// Derives the working sub-keys. Distinct HKDF labels keep the value cipher and the index
    /// MAC independent even though both come from one root.
    pub(crate) fn derive_subkeys(&self) -> Result<SubKeys, StoreError> {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut seal = SealKey([0u8; KEY_LEN]);
        let mut index = IndexKey([0u8; INDEX_KEY_LEN]);
        hk.expand(SEAL_LABEL, &mut seal.0).map_err(|_| StoreError::Seal)?;
        hk.expand(INDEX_LABEL, &mut index.0).map_err(|_| StoreError::Seal)?;
        Ok(SubKeys { seal, index })
    }

    /// This key used directly as a sealing key (the duress key seals the duress record).
    pub(crate) fn as_seal_key(&self) -> SealKey {
        SealKey(self.0)
    }

    /// Derives the key sealing the keyring file of epoch keys (see `keyring`).
    pub(crate) fn derive_keyring_key(&self) -> Result<KeyringKey, StoreError> {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut key = SealKey([0u8; KEY_LEN]);
        hk.expand(KEYRING_LABEL, &mut key.0).map_err(|_| StoreError::Seal)?;
        Ok(key)
    }

    #[cfg(test)]
    pub(crate) fn expose_for_tests(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// The key sealing the keyring file: a [`SealKey`] under its own HKDF label.
pub(crate) type KeyringKey = SealKey;

/// The keys the store works with once open.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SubKeys {
    pub(crate) seal: SealKey,
    pub(crate) index: IndexKey,
}

/// Encrypts record values.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SealKey([u8; KEY_LEN]);

impl SealKey {
    /// A sealing key from raw bytes (an epoch key); the copy is zeroized on drop.
    pub(crate) fn from_bytes(bytes: &[u8; KEY_LEN]) -> SealKey {
        SealKey(*bytes)
    }

    /// Seals `plaintext` as `nonce || ciphertext || tag` with a fresh random nonce.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let ct = aead_seal(&self.0, &nonce, aad, plaintext)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value produced by [`SealKey::seal`]; `None` if it fails authentication.
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: &[u8; NONCE_LEN] = nonce.try_into().ok()?;
        aead_open(&self.0, nonce, aad, ct)
    }

    #[cfg(test)]
    pub(crate) fn expose_for_tests(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// Keys the HMAC that turns contact and conversation names into opaque record keys.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct IndexKey([u8; INDEX_KEY_LEN]);

impl IndexKey {
    /// HMAC-SHA256(index key, domain || name). The domain (the table tag) makes the same name
    /// hash differently in each table, so tables cannot be joined on their keys.
    pub(crate) fn hash(&self, domain: u8, name: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&self.0.into());
        mac.update(&[domain]);
        mac.update(name);
        mac.finalize().into_bytes().into()
    }

    #[cfg(test)]
    pub(crate) fn expose_for_tests(&self) -> &[u8; INDEX_KEY_LEN] {
        &self.0
    }
}

fn aead_seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, StoreError> {
    // The cipher instance copies the key; it zeroizes that copy on drop.
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher.encrypt(XNonce::from_slice(nonce), Payload { msg, aad }).map_err(|_| StoreError::Seal)
}

fn aead_open(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad }).ok().map(Zeroizing::new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_wrong_passphrase() {
        let params = KdfParams::insecure_for_tests();
        let mk = MasterKey::generate().unwrap();
        let salt = random_salt().unwrap();
        let nonce = [7u8; NONCE_LEN];
        let wrapped = mk.wrap(b"pass", &salt, &params, &nonce, b"hdr").unwrap();
        let back = MasterKey::unwrap_with(b"pass", &salt, &params, &nonce, b"hdr", &wrapped).unwrap();
        assert_eq!(back.expose_for_tests(), mk.expose_for_tests());
        assert!(matches!(
            MasterKey::unwrap_with(b"pasS", &salt, &params, &nonce, b"hdr", &wrapped),
            Err(StoreError::WrongPassphrase)
        ));
        // Altered header fields (bound as associated data) fail the same way.
        assert!(matches!(
            MasterKey::unwrap_with(b"pass", &salt, &params, &nonce, b"hdR", &wrapped),
            Err(StoreError::WrongPassphrase)
        ));
    }

    #[test]
    fn subkeys_are_distinct_and_index_is_domain_separated() {
        let mk = MasterKey::generate().unwrap();
        let sk = mk.derive_subkeys().unwrap();
        assert_ne!(sk.seal.expose_for_tests(), mk.expose_for_tests());
        assert_ne!(&sk.index.expose_for_tests()[..KEY_LEN], sk.seal.expose_for_tests());
        assert_ne!(sk.index.hash(1, b"alice"), sk.index.hash(2, b"alice"));
        assert_eq!(sk.index.hash(1, b"alice"), sk.index.hash(1, b"alice"));
    }

    #[test]
    fn params_bounds() {
        assert!(KdfParams::production().validate().is_ok());
        assert!(KdfParams::insecure_for_tests().validate().is_ok());
        let huge = KdfParams { m_cost_kib: u32::MAX, ..KdfParams::production() };
        assert!(matches!(huge.validate(), Err(StoreError::InvalidKdfParams(_))));
        let zero = KdfParams { t_cost: 0, ..KdfParams::production() };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn seal_open() {
        let sk = MasterKey::generate().unwrap().derive_subkeys().unwrap();
        let sealed = sk.seal.seal(b"place", b"value").unwrap();
        assert_eq!(&**sk.seal.open(b"place", &sealed).unwrap(), b"value");
        assert!(sk.seal.open(b"other", &sealed).is_none());
        assert!(sk.seal.open(b"place", &sealed[..10]).is_none());
    }
}
