//! The keyring of epoch keys: what makes deleting a message cryptographic (DESIGN §6).
//!
//! sled keeps deleted and overwritten records in its files (measured: all 100 of 100), so a
//! message removed from the database is not gone. Messages with a timer are therefore sealed
//! a second time under an *epoch key* (see [`super::epochs`]) that lives only here, in a small
//! file of fixed size that is rewritten **in place**: when every message sealed under a key has
//! expired, the key is dropped and the file's bytes that held it are overwritten and synced.
//! Without the key, the copies sled keeps cannot be opened, even with the passphrase.
//!
//! Layout: two copies, each `nonce (24) || XChaCha20-Poly1305(keyring key, aad, plain) || tag`,
//! where `plain = generation (u64) || count (u16) || entries`, padded with zeros to
//! [`KEYRING_CAPACITY`] entries, and `aad = "sotto keyring v1" || copy number`. The keyring key
//! is derived from the master key. A rewrite writes copy 1, syncs, then copy 0, syncs: a crash
//! leaves at least one whole copy (the newest generation that opens wins), and after a
//! complete rewrite neither copy holds a dropped key. The file's size never changes, so it
//! says nothing about how many keys it holds.
//!
//! Limits of "in place": a copy-on-write file system (btrfs, ZFS, APFS) or a flash
//! translation layer may keep the old blocks somewhere the operating system no longer shows;
//! on such storage, only full-disk encryption and the duress wipe of the master key help.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::StoreError;
use super::keys::{KEY_LEN, KeyringKey, NONCE_LEN, TAG_LEN, random_bytes};

/// File name of the keyring inside the profile directory.
pub const KEYRING_FILE: &str = "keyring";
/// Most epoch keys alive at once. [`super::epochs`] bounds the live buckets to 33 per bucket
/// length and 13 lengths (429 keys) whatever the number of conversations, plus two rolling
/// day keys, so this is never reached with a sane clock.
pub const KEYRING_CAPACITY: usize = 1024;
/// One entry: bucket length as a power of two (1), bucket index (8), key (32).
const ENTRY_LEN: usize = 1 + 8 + KEY_LEN;
const PLAIN_LEN: usize = 8 + 2 + KEYRING_CAPACITY * ENTRY_LEN;
const COPY_LEN: usize = NONCE_LEN + PLAIN_LEN + TAG_LEN;
/// Size of the keyring file (two copies), about 82 KiB.
pub const KEYRING_LEN: usize = 2 * COPY_LEN;
const AAD_CONTEXT: &[u8] = b"sotto keyring v1";

/// An epoch's bucket: its length as a power of two of seconds, and its index.
pub type BucketId = (u8, u64);

/// One epoch key. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct EpochKey(pub(crate) [u8; KEY_LEN]);

/// The keyring in memory, and where it lives on disk.
pub(crate) struct Keyring {
    path: PathBuf,
    key: KeyringKey,
    generation: u64,
    entries: BTreeMap<BucketId, EpochKey>,
}

impl Keyring {
    /// Writes an empty keyring into `dir` (a new profile).
    pub(crate) fn create(dir: &Path, key: KeyringKey) -> Result<Keyring, StoreError> {
        let path = dir.join(KEYRING_FILE);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|f| f.set_len(KEYRING_LEN as u64))
            .map_err(StoreError::io("create the keyring", &path))?;
        let mut ring = Keyring { path, key, generation: 0, entries: BTreeMap::new() };
        ring.write()?;
        Ok(ring)
    }

    /// Reads the keyring of the profile in `dir`; a profile made before keyrings existed
    /// gets an empty one.
    pub(crate) fn open(dir: &Path, key: KeyringKey) -> Result<Keyring, StoreError> {
        let path = dir.join(KEYRING_FILE);
        let mut bytes = Vec::with_capacity(KEYRING_LEN);
        match File::open(&path) {
            Ok(f) => f
                .take(KEYRING_LEN as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(StoreError::io("read the keyring", &path))?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Self::create(dir, key),
            Err(e) => return Err(StoreError::io("open the keyring", &path)(e)),
        };
        if bytes.len() != KEYRING_LEN {
            return Err(StoreError::CorruptKeyring);
        }
        let best = (0..2u8)
            .filter_map(|copy| {
                let start = usize::from(copy) * COPY_LEN;
                let sealed = bytes.get(start..start + COPY_LEN)?;
                key.open(&aad(copy), sealed).and_then(|plain| parse(&plain))
            })
            .max_by_key(|(generation, _)| *generation);
        let (generation, entries) = best.ok_or(StoreError::CorruptKeyring)?;
        Ok(Keyring { path, key, generation, entries })
    }

    /// The key of `bucket`, if it is still alive.
    pub(crate) fn get(&self, bucket: BucketId) -> Option<&EpochKey> {
        self.entries.get(&bucket)
    }

    /// The key of `bucket`, made (and durably written) if it does not exist yet.
    pub(crate) fn get_or_create(&mut self, bucket: BucketId) -> Result<&EpochKey, StoreError> {
        if !self.entries.contains_key(&bucket) {
            if self.entries.len() >= KEYRING_CAPACITY {
                return Err(StoreError::KeyringFull);
            }
            let mut key = EpochKey([0; KEY_LEN]);
            random_bytes(&mut key.0)?;
            self.entries.insert(bucket, key);
            // Written before anything is sealed under it: a crash must never leave a record
            // sealed under a key that is nowhere on disk.
            if let Err(e) = self.write() {
                self.entries.remove(&bucket);
                return Err(e);
            }
        }
        self.entries.get(&bucket).ok_or(StoreError::CorruptKeyring)
    }

    /// Drops every key `dead` says has nothing left to open, and overwrites the file in place.
    /// Returns how many keys were destroyed.
    pub(crate) fn destroy_where(&mut self, dead: impl Fn(BucketId) -> bool) -> Result<usize, StoreError> {
        let before = self.entries.len();
        self.entries.retain(|b, _| !dead(*b));
        let destroyed = before - self.entries.len();
        if destroyed > 0 {
            self.write()?;
        }
        Ok(destroyed)
    }

    /// The buckets with a live key.
    pub(crate) fn buckets(&self) -> Vec<BucketId> {
        self.entries.keys().copied().collect()
    }

    /// Overwrites both copies in place (copy 1 first), syncing after each.
    fn write(&mut self) -> Result<(), StoreError> {
        self.generation += 1;
        let mut plain = Zeroizing::new(Vec::with_capacity(PLAIN_LEN));
        plain.extend_from_slice(&self.generation.to_le_bytes());
        let count = u16::try_from(self.entries.len()).map_err(|_| StoreError::KeyringFull)?;
        plain.extend_from_slice(&count.to_le_bytes());
        for ((log2, index), key) in &self.entries {
            plain.push(*log2);
            plain.extend_from_slice(&index.to_le_bytes());
            plain.extend_from_slice(&key.0);
        }
        plain.resize(PLAIN_LEN, 0);
        let mut file =
            OpenOptions::new().write(true).open(&self.path).map_err(StoreError::io("open the keyring", &self.path))?;
        for copy in [1u8, 0] {
            let sealed = self.key.seal(&aad(copy), &plain)?;
            let offset = u64::from(copy) * COPY_LEN as u64;
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(&sealed))
                .and_then(|()| file.sync_all())
                .map_err(StoreError::io("write the keyring", &self.path))?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn keys_for_tests(&self) -> Vec<(BucketId, [u8; KEY_LEN])> {
        self.entries.iter().map(|(b, k)| (*b, k.0)).collect()
    }
}

/// The buckets in each copy of the keyring file of `dir` (`None` for a copy that does not
/// open).
#[cfg(test)]
pub(crate) fn copies_for_tests(dir: &Path, key: &KeyringKey) -> Vec<Option<Vec<BucketId>>> {
    let bytes = std::fs::read(dir.join(KEYRING_FILE)).unwrap_or_default();
    (0..2u8)
        .map(|copy| {
            let start = usize::from(copy) * COPY_LEN;
            bytes
                .get(start..start + COPY_LEN)
                .and_then(|sealed| key.open(&aad(copy), sealed))
                .and_then(|plain| parse(&plain))
                .map(|(_, entries)| entries.keys().copied().collect())
        })
        .collect()
}

fn aad(copy: u8) -> Vec<u8> {
    let mut a = AAD_CONTEXT.to_vec();
    a.push(copy);
    a
}

type Parsed = (u64, BTreeMap<BucketId, EpochKey>);

fn parse(plain: &[u8]) -> Option<Parsed> {
    if plain.len() != PLAIN_LEN {
        return None;
    }
    let generation = u64::from_le_bytes(plain.get(..8)?.try_into().ok()?);
    let count = usize::from(u16::from_le_bytes(plain.get(8..10)?.try_into().ok()?));
    if count > KEYRING_CAPACITY {
        return None;
    }
    let mut entries = BTreeMap::new();
    for e in plain.get(10..10 + count * ENTRY_LEN)?.chunks_exact(ENTRY_LEN) {
        let (log2, rest) = e.split_first()?;
        let index = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let key: [u8; KEY_LEN] = rest.get(8..)?.try_into().ok()?;
        entries.insert((*log2, index), EpochKey(key));
    }
    Some((generation, entries))
}

/// Overwrites the keyring file of `dir` with random bytes in place, syncs, and removes it.
pub(crate) fn shred(dir: &Path) -> Result<(), StoreError> {
    super::wipe::shred_file(&dir.join(KEYRING_FILE))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::store::keys::MasterKey;

    fn key(m: &MasterKey) -> KeyringKey {
        m.derive_keyring_key().unwrap()
    }

    #[test]
    fn keys_survive_reopening_and_die_in_both_copies_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let m = MasterKey::generate().unwrap();
        let mut ring = Keyring::create(tmp.path(), key(&m)).unwrap();
        let a = ring.get_or_create((8, 1)).unwrap().0;
        ring.get_or_create((9, 2)).unwrap();
        let path = tmp.path().join(KEYRING_FILE);
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        let back = Keyring::open(tmp.path(), key(&m)).unwrap();
        assert_eq!(back.get((8, 1)).unwrap().0, a);

        assert_eq!(ring.destroy_where(|b| b == (8, 1)).unwrap(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), KEYRING_LEN as u64);
        #[cfg(unix)]
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()), inode, "not in place");
        for copy in copies_for_tests(tmp.path(), &key(&m)) {
            assert_eq!(copy.unwrap(), vec![(9, 2)]);
        }
        assert!(!std::fs::read(&path).unwrap().windows(32).any(|w| w == a));
    }

    #[test]
    fn a_torn_copy_falls_back_to_the_other_and_two_are_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let m = MasterKey::generate().unwrap();
        let mut ring = Keyring::create(tmp.path(), key(&m)).unwrap();
        ring.get_or_create((8, 7)).unwrap();
        let path = tmp.path().join(KEYRING_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1; // copy 0 torn
        std::fs::write(&path, &bytes).unwrap();
        assert!(Keyring::open(tmp.path(), key(&m)).unwrap().get((8, 7)).is_some());
        bytes[COPY_LEN + 100] ^= 1; // and copy 1
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Keyring::open(tmp.path(), key(&m)), Err(StoreError::CorruptKeyring)));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(Keyring::open(tmp.path(), key(&m)), Err(StoreError::CorruptKeyring)));
        // Another profile's key opens nothing.
        let other = MasterKey::generate().unwrap();
        let fresh = tempfile::tempdir().unwrap();
        Keyring::create(fresh.path(), key(&m)).unwrap();
        assert!(matches!(Keyring::open(fresh.path(), key(&other)), Err(StoreError::CorruptKeyring)));
    }
}
