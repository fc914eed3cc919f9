//! The profile header: a small file next to the database holding the wrapped master key.
//!
//! It is a separate file, not a sled record, so that checking a passphrase never opens (and
//! never writes to) the database: a wrong passphrase leaves every byte on disk as it was.
//! The file is replaced atomically (write temporary, fsync, rename, fsync directory), so a
//! crash while changing the passphrase leaves either the old or the new header.
//!
//! Layout (fixed size, little-endian integers):
//!
//! ```text
//! magic "SOTTOHDR" (8) | format 1 (1) | kdf 1 = Argon2id v1.3 (1) | m_cost_kib (4) | t_cost (4)
//! | p_cost (4) | salt (16) | nonce (24) | wrapped master key + tag (48)
//! ```
//!
//! Everything before the wrapped key is associated data of the wrap, so none of it can be
//! altered without the unwrap failing.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;

use super::error::StoreError;
use super::keys::{KEY_LEN, KdfParams, MasterKey, NONCE_LEN, SALT_LEN, TAG_LEN, random_bytes};

/// File name of the header inside the profile directory.
pub const HEADER_FILE: &str = "profile.hdr";
const HEADER_TMP: &str = "profile.hdr.tmp";

const MAGIC: &[u8; 8] = b"SOTTOHDR";
const FORMAT_V1: u8 = 1;
const KDF_ARGON2ID_V13: u8 = 1;
const AAD_LEN: usize = 8 + 1 + 1 + 12 + SALT_LEN + NONCE_LEN;
const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;
const HEADER_LEN: usize = AAD_LEN + WRAPPED_LEN;
/// Refuse to read more than this, so a huge file in place of the header costs nothing.
const READ_LIMIT: u64 = 4096;

/// The parsed header.
pub(crate) struct Header {
    pub(crate) params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

impl Header {
    /// Wraps `master` under `passphrase` with a fresh salt and nonce.
    pub(crate) fn seal(
        master: &MasterKey,
        passphrase: &[u8],
        params: KdfParams,
        salt: [u8; SALT_LEN],
    ) -> Result<Header, StoreError> {
        params.validate()?;
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let aad = aad_bytes(&params, &salt, &nonce);
        let wrapped_vec = master.wrap(passphrase, &salt, &params, &nonce, &aad)?;
        let wrapped: [u8; WRAPPED_LEN] = wrapped_vec.as_slice().try_into().map_err(|_| StoreError::Seal)?;
        Ok(Header { params, salt, nonce, wrapped })
    }

    /// Unwraps the master key; [`StoreError::WrongPassphrase`] if the passphrase is wrong.
    pub(crate) fn unwrap_master(&self, passphrase: &[u8]) -> Result<MasterKey, StoreError> {
        let aad = aad_bytes(&self.params, &self.salt, &self.nonce);
        MasterKey::unwrap_with(passphrase, &self.salt, &self.params, &self.nonce, &aad, &self.wrapped)
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = aad_bytes(&self.params, &self.salt, &self.nonce);
        out.extend_from_slice(&self.wrapped);
        out
    }

    fn parse(bytes: &[u8]) -> Result<Header, StoreError> {
        if bytes.len() != HEADER_LEN {
            return Err(StoreError::CorruptHeader("wrong length"));
        }
        let mut r = Reader(bytes);
        if r.take::<8>()? != *MAGIC {
            return Err(StoreError::CorruptHeader("not a Sotto profile header"));
        }
        if r.take::<1>()? != [FORMAT_V1] {
            return Err(StoreError::CorruptHeader("unknown header format"));
        }
        if r.take::<1>()? != [KDF_ARGON2ID_V13] {
            return Err(StoreError::CorruptHeader("unknown key-derivation function"));
        }
        let params = KdfParams {
            m_cost_kib: u32::from_le_bytes(r.take()?),
            t_cost: u32::from_le_bytes(r.take()?),
            p_cost: u32::from_le_bytes(r.take()?),
        };
        // Checked before any Argon2 work, so a crafted header cannot ask for 4 GiB.
        params.validate().map_err(|_| StoreError::CorruptHeader("key-derivation parameters out of range"))?;
        Ok(Header { params, salt: r.take()?, nonce: r.take()?, wrapped: r.take()? })
    }
}

fn aad_bytes(params: &KdfParams, salt: &[u8; SALT_LEN], nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_V1);
    out.push(KDF_ARGON2ID_V13);
    out.extend_from_slice(&params.m_cost_kib.to_le_bytes());
    out.extend_from_slice(&params.t_cost.to_le_bytes());
    out.extend_from_slice(&params.p_cost.to_le_bytes());
    out.extend_from_slice(salt);
    out.extend_from_slice(nonce);
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(StoreError::CorruptHeader("truncated"))?;
        self.0 = rest;
        head.try_into().map_err(|_| StoreError::CorruptHeader("truncated"))
    }
}

/// Reads the header of the profile in `dir`; [`StoreError::NoProfile`] if there is none.
pub(crate) fn read(dir: &Path) -> Result<Header, StoreError> {
    let path = dir.join(HEADER_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(StoreError::NoProfile(dir.to_path_buf()));
        }
        Err(e) => return Err(StoreError::io("open the profile header", path)(e)),
    };
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    file.take(READ_LIMIT).read_to_end(&mut bytes).map_err(StoreError::io("read the profile header", &path))?;
    Header::parse(&bytes)
}

/// Whether `dir` already holds a header.
pub(crate) fn exists(dir: &Path) -> Result<bool, StoreError> {
    let path = dir.join(HEADER_FILE);
    path.try_exists().map_err(StoreError::io("look for the profile header", path))
}

/// Writes `header` into `dir`, atomically replacing any previous one.
pub(crate) fn write(dir: &Path, header: &Header) -> Result<(), StoreError> {
    let tmp = dir.join(HEADER_TMP);
    let path = dir.join(HEADER_FILE);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(StoreError::io("create the profile header", &tmp))?;
        f.write_all(&header.to_bytes()).map_err(StoreError::io("write the profile header", &tmp))?;
        f.sync_all().map_err(StoreError::io("sync the profile header", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(StoreError::io("install the profile header", &path))?;
    sync_dir(dir)
}

/// Makes a rename durable; without it a crash can resurrect the old directory entry.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io("sync the profile directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::keys::random_salt;

    #[test]
    fn parse_round_trip_and_rejects_garbage() {
        let mk = MasterKey::generate().unwrap();
        let params = KdfParams::insecure_for_tests();
        let h = Header::seal(&mk, b"pw", params, random_salt().unwrap()).unwrap();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN);
        let back = Header::parse(&bytes).unwrap();
        assert_eq!(back.params, params);
        assert!(back.unwrap_master(b"pw").is_ok());

        assert!(matches!(Header::parse(&bytes[..HEADER_LEN - 1]), Err(StoreError::CorruptHeader(_))));
        let mut bad_magic = bytes.clone();
        bad_magic[0] ^= 1;
        assert!(matches!(Header::parse(&bad_magic), Err(StoreError::CorruptHeader(_))));
        // A header demanding absurd memory is refused before any Argon2 work.
        let mut greedy = bytes.clone();
        greedy[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Header::parse(&greedy), Err(StoreError::CorruptHeader(_))));
        // Changed parameters still parse, but no longer unwrap: they are authenticated.
        let mut changed = bytes.clone();
        changed[14..18].copy_from_slice(&2u32.to_le_bytes());
        let h2 = Header::parse(&changed).unwrap();
        assert!(matches!(h2.unwrap_master(b"pw"), Err(StoreError::WrongPassphrase)));
    }
}
