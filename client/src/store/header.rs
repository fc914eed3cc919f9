//! The profile header: a small file next to the database holding the wrapped master key and
//! the duress slot.
//!
//! It is a separate file, not a sled record, so that checking a passphrase never opens (and
//! never writes to) the database: a wrong passphrase leaves every byte on disk as it was.
//!
//! Layout (format 2, fixed size whether a duress passphrase is set or not; little-endian):
//!
//! ```text
//! offset 0, one 512-byte sector (zero padded):
//!   magic "SOTTOHDR" (8) | format 2 (1) | kdf 1 = Argon2id v1.3 (1) | m_cost_kib (4) | t_cost (4) | p_cost (4)
//!   | slot 0: salt (16) | nonce (24) | master key wrapped under Argon2id(passphrase) + tag (48)
//!   | slot 1: salt (16) | nonce (24) | duress key wrapped under Argon2id(duress passphrase) + tag (48)
//! offset 512: duress record: nonce (24) | XChaCha20-Poly1305(duress key, relay address, padded) (514 + 16)
//! ```
//!
//! Without a duress passphrase, slot 1 and the duress record are random bytes of the same
//! length, which nobody can tell from a wrapped key without the passphrase: the header does
//! not say whether a duress passphrase exists. The duress record keeps what an empty profile
//! needs to look like a fresh `init` (its relay), since the master key is gone by then.
//!
//! Writes after creation are made **in place** (one write of the sector, then sync), never by
//! renaming a new file over the old: a rename leaves the old header, wrapped key and all, in
//! freed blocks, where the old passphrase would still open it. The first sector is written
//! with a single write and fits one disk sector, which drives write atomically. A duress wipe
//! overwrites the whole file with random bytes, syncs, and removes it.
//!
//! Everything before a slot's wrapped key is associated data of its wrap, so none of it can be
//! altered without the unwrap failing. Format 1 headers (one slot, 130 bytes) still open; the
//! next write turns them into format 2.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use zeroize::Zeroizing;

use super::error::StoreError;
use super::keys::{KEY_LEN, KdfParams, MasterKey, NONCE_LEN, SALT_LEN, TAG_LEN, random_bytes, random_salt};

/// File name of the header inside the profile directory.
pub const HEADER_FILE: &str = "profile.hdr";
const HEADER_TMP: &str = "profile.hdr.tmp";

const MAGIC: &[u8; 8] = b"SOTTOHDR";
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const KDF_ARGON2ID_V13: u8 = 1;
const COMMON_LEN: usize = 8 + 1 + 1 + 12;
const WRAPPED_LEN: usize = KEY_LEN + TAG_LEN;
const SLOT_LEN: usize = SALT_LEN + NONCE_LEN + WRAPPED_LEN;
/// The part written atomically: one disk sector.
pub const SECTOR_LEN: usize = 512;
const FIXED_LEN: usize = COMMON_LEN + 2 * SLOT_LEN;
const V1_LEN: usize = COMMON_LEN + SLOT_LEN;
/// Longest relay address the duress record keeps (the protocol's longest address).
pub const DURESS_RELAY_MAX: usize = sotto_proto::limits::MAX_ADDRESS_LEN;
const DURESS_PLAIN_LEN: usize = 2 + DURESS_RELAY_MAX;
const DURESS_RECORD_LEN: usize = NONCE_LEN + DURESS_PLAIN_LEN + TAG_LEN;
/// Size of a format 2 header file.
pub const HEADER_LEN: usize = SECTOR_LEN + DURESS_RECORD_LEN;
const DURESS_AAD: &[u8] = b"sotto duress v1";
/// Refuse to read more than this, so a huge file in place of the header costs nothing.
const READ_LIMIT: u64 = 4096;

const _: () = assert!(FIXED_LEN <= SECTOR_LEN);

/// One key slot: a salt, a nonce, and a 32-byte key wrapped under Argon2id(passphrase).
#[derive(Clone)]
struct Slot {
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

impl Slot {
    /// Random bytes shaped like a slot: an unset duress slot.
    fn random() -> Result<Slot, StoreError> {
        let mut s = Slot { salt: [0; SALT_LEN], nonce: [0; NONCE_LEN], wrapped: [0; WRAPPED_LEN] };
        random_bytes(&mut s.salt)?;
        random_bytes(&mut s.nonce)?;
        random_bytes(&mut s.wrapped)?;
        Ok(s)
    }

    fn bytes(&self) -> Vec<u8> {
        [&self.salt[..], &self.nonce[..], &self.wrapped[..]].concat()
    }
}

/// What a passphrase unlocked.
pub(crate) enum Unlocked {
    /// The profile's master key.
    Master(MasterKey),
    /// The duress passphrase; the relay address an empty profile should use.
    Duress(Zeroizing<String>),
}

/// The parsed header.
pub(crate) struct Header {
    pub(crate) params: KdfParams,
    slots: [Slot; 2],
    duress_record: Vec<u8>,
}

impl Header {
    /// A header for `master` under `passphrase` with fresh salts and nonces, and no duress
    /// passphrase (random bytes in its place).
    pub(crate) fn seal(master: &MasterKey, passphrase: &[u8], params: KdfParams) -> Result<Header, StoreError> {
        params.validate()?;
        let mut record = vec![0u8; DURESS_RECORD_LEN];
        random_bytes(&mut record)?;
        let mut h = Header { params, slots: [Slot::random()?, Slot::random()?], duress_record: record };
        h.slots[0] = h.wrap_slot(0, master, passphrase)?;
        Ok(h)
    }

    /// Wraps `key` for slot `n` under `passphrase`, with a fresh salt and nonce.
    fn wrap_slot(&self, n: u8, key: &MasterKey, passphrase: &[u8]) -> Result<Slot, StoreError> {
        let mut slot = Slot { salt: random_salt()?, nonce: [0; NONCE_LEN], wrapped: [0; WRAPPED_LEN] };
        random_bytes(&mut slot.nonce)?;
        let aad = self.slot_aad(n, &slot);
        let wrapped = key.wrap(passphrase, &slot.salt, &self.params, &slot.nonce, &aad)?;
        slot.wrapped = wrapped.as_slice().try_into().map_err(|_| StoreError::Seal)?;
        Ok(slot)
    }

    fn unwrap_slot(&self, n: u8, passphrase: &[u8]) -> Result<MasterKey, StoreError> {
        let slot = &self.slots[usize::from(n)];
        let aad = self.slot_aad(n, slot);
        MasterKey::unwrap_with(passphrase, &slot.salt, &self.params, &slot.nonce, &aad, &slot.wrapped)
    }

    /// Tries `passphrase` on the master slot, then on the duress slot.
    /// [`StoreError::WrongPassphrase`] if it opens neither.
    pub(crate) fn unlock(&self, passphrase: &[u8]) -> Result<Unlocked, StoreError> {
        match self.unwrap_slot(0, passphrase) {
            Ok(master) => return Ok(Unlocked::Master(master)),
            Err(StoreError::WrongPassphrase) => {}
            Err(e) => return Err(e),
        }
        let duress_key = self.unwrap_slot(1, passphrase)?;
        let plain = duress_key
            .as_seal_key()
            .open(DURESS_AAD, &self.duress_record)
            .ok_or(StoreError::CorruptHeader("duress record"))?;
        let len_bytes = plain.get(..2).and_then(|b| <[u8; 2]>::try_from(b).ok());
        let len = usize::from(u16::from_le_bytes(len_bytes.ok_or(StoreError::CorruptHeader("duress record"))?));
        let relay = plain.get(2..2 + len).ok_or(StoreError::CorruptHeader("duress record"))?;
        let relay = String::from_utf8(relay.to_vec()).map_err(|_| StoreError::CorruptHeader("duress record"))?;
        Ok(Unlocked::Duress(Zeroizing::new(relay)))
    }

    /// Re-wraps `master` under a new passphrase and parameters. A duress passphrase, if set,
    /// is dropped when the parameters change (its slot used the old ones).
    pub(crate) fn rewrap(
        &mut self,
        master: &MasterKey,
        passphrase: &[u8],
        params: KdfParams,
    ) -> Result<(), StoreError> {
        params.validate()?;
        if params != self.params {
            self.params = params;
            self.slots[1] = Slot::random()?;
            random_bytes(&mut self.duress_record)?;
        }
        self.slots[0] = self.wrap_slot(0, master, passphrase)?;
        Ok(())
    }

    /// Sets the duress passphrase: unlocking with it wipes the profile and opens an empty one
    /// on `relay`.
    pub(crate) fn set_duress(&mut self, passphrase: &[u8], relay: &str) -> Result<(), StoreError> {
        if relay.len() > DURESS_RELAY_MAX {
            return Err(StoreError::CorruptRecord("relay address too long"));
        }
        let duress_key = MasterKey::generate()?;
        let mut plain = Zeroizing::new(Vec::with_capacity(DURESS_PLAIN_LEN));
        let len = u16::try_from(relay.len()).map_err(|_| StoreError::CorruptRecord("relay address too long"))?;
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(relay.as_bytes());
        plain.resize(DURESS_PLAIN_LEN, 0);
        self.duress_record = duress_key.as_seal_key().seal(DURESS_AAD, &plain)?;
        self.slots[1] = self.wrap_slot(1, &duress_key, passphrase)?;
        Ok(())
    }

    /// Forgets the duress passphrase: random bytes again.
    pub(crate) fn clear_duress(&mut self) -> Result<(), StoreError> {
        self.slots[1] = Slot::random()?;
        random_bytes(&mut self.duress_record)
    }

    fn slot_aad(&self, n: u8, slot: &Slot) -> Vec<u8> {
        let mut a = self.common();
        a.push(n);
        a.extend_from_slice(&slot.salt);
        a.extend_from_slice(&slot.nonce);
        a
    }

    fn common(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_V2);
        out.push(KDF_ARGON2ID_V13);
        out.extend_from_slice(&self.params.m_cost_kib.to_le_bytes());
        out.extend_from_slice(&self.params.t_cost.to_le_bytes());
        out.extend_from_slice(&self.params.p_cost.to_le_bytes());
        out
    }

    fn sector(&self) -> Vec<u8> {
        let mut out = self.common();
        out.extend_from_slice(&self.slots[0].bytes());
        out.extend_from_slice(&self.slots[1].bytes());
        out.resize(SECTOR_LEN, 0);
        out
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.sector();
        out.extend_from_slice(&self.duress_record);
        out
    }

    fn parse(bytes: &[u8]) -> Result<Header, StoreError> {
        let mut r = Reader(bytes);
        if r.take::<8>()? != *MAGIC {
            return Err(StoreError::CorruptHeader("not a Sotto profile header"));
        }
        let format = r.take::<1>()?[0];
        match (format, bytes.len()) {
            (FORMAT_V1, V1_LEN) | (FORMAT_V2, HEADER_LEN) => {}
            (FORMAT_V1 | FORMAT_V2, _) => return Err(StoreError::CorruptHeader("wrong length")),
            _ => return Err(StoreError::CorruptHeader("unknown header format")),
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
        let slot0 = Slot { salt: r.take()?, nonce: r.take()?, wrapped: r.take()? };
        if format == FORMAT_V1 {
            return Self::from_v1(params, slot0);
        }
        let slot1 = Slot { salt: r.take()?, nonce: r.take()?, wrapped: r.take()? };
        let duress_record = bytes.get(SECTOR_LEN..).ok_or(StoreError::CorruptHeader("truncated"))?.to_vec();
        Ok(Header { params, slots: [slot0, slot1], duress_record })
    }

    /// A format 1 header: its one slot, bound to format 1's associated data. It is unwrapped
    /// as such and re-wrapped as format 2 by the store on open.
    fn from_v1(params: KdfParams, slot0: Slot) -> Result<Header, StoreError> {
        let mut record = vec![0u8; DURESS_RECORD_LEN];
        random_bytes(&mut record)?;
        Ok(Header { params, slots: [slot0, Slot::random()?], duress_record: record })
    }
}

/// Unwraps a format 1 header's key (its associated data had no slot number).
pub(crate) fn unlock_v1(dir: &Path, passphrase: &[u8]) -> Result<Option<(MasterKey, KdfParams)>, StoreError> {
    let bytes = read_bytes(dir)?;
    if bytes.len() != V1_LEN || bytes.get(8) != Some(&FORMAT_V1) {
        return Ok(None);
    }
    let h = Header::parse(&bytes)?;
    let s = &h.slots[0];
    let aad = bytes.get(..COMMON_LEN + SALT_LEN + NONCE_LEN).ok_or(StoreError::CorruptHeader("truncated"))?;
    let master = MasterKey::unwrap_with(passphrase, &s.salt, &h.params, &s.nonce, aad, &s.wrapped)?;
    Ok(Some((master, h.params)))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(StoreError::CorruptHeader("truncated"))?;
        self.0 = rest;
        head.try_into().map_err(|_| StoreError::CorruptHeader("truncated"))
    }
}

fn read_bytes(dir: &Path) -> Result<Vec<u8>, StoreError> {
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
    Ok(bytes)
}

/// Reads the header of the profile in `dir`; [`StoreError::NoProfile`] if there is none.
pub(crate) fn read(dir: &Path) -> Result<Header, StoreError> {
    Header::parse(&read_bytes(dir)?)
}

/// Whether `dir` already holds a header.
pub(crate) fn exists(dir: &Path) -> Result<bool, StoreError> {
    let path = dir.join(HEADER_FILE);
    path.try_exists().map_err(StoreError::io("look for the profile header", path))
}

/// Writes the header of a new profile into `dir` (temporary file, sync, rename, sync the
/// directory): there is no older header to leave behind.
pub(crate) fn write_new(dir: &Path, header: &Header) -> Result<(), StoreError> {
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

/// Rewrites the header of `dir` in place: the duress record first (synced), then the first
/// sector in one write (synced), so the old wrapped keys are overwritten where they lay.
pub(crate) fn write_in_place(dir: &Path, header: &Header) -> Result<(), StoreError> {
    let path = dir.join(HEADER_FILE);
    let io = StoreError::io("rewrite the profile header", &path);
    let mut f = OpenOptions::new().write(true).open(&path).map_err(StoreError::io("open the profile header", &path))?;
    let result = f
        .seek(SeekFrom::Start(SECTOR_LEN as u64))
        .and_then(|_| f.write_all(&header.duress_record))
        .and_then(|()| f.sync_all())
        .and_then(|()| f.seek(SeekFrom::Start(0)))
        .and_then(|_| f.write_all(&header.sector()))
        .and_then(|()| f.sync_all());
    result.map_err(io)
}

/// Makes a rename durable; without it a crash can resurrect the old directory entry.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io("sync the profile directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
#[path = "header_tests.rs"]
mod tests;
