//! Destroying a profile: the duress passphrase and `sotto panic`.
//!
//! What makes the data unreadable is the destruction of the keys, not of the database: the
//! header (holding the wrapped master key) and the keyring (holding the epoch keys) are
//! overwritten in place with random bytes and synced before they are removed, so the bytes
//! that held the keys are gone from the disk blocks they occupied. The sled files that remain
//! in freed blocks are sealed under a master key that no longer exists anywhere.
//!
//! Copy-on-write file systems and flash translation layers may keep old blocks out of the
//! operating system's reach; `docs/THREAT_MODEL.md` says so.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::Path;

use super::db::DB_DIR;
use super::error::StoreError;
use super::header::{self, HEADER_FILE};
use super::keyring;
use super::keys::random_bytes;

/// Overwrites `path` in place with random bytes, syncs, and removes it. A missing file is
/// already gone.
pub(crate) fn shred_file(path: &Path) -> Result<(), StoreError> {
    let mut f = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io("open for wiping", path)(e)),
    };
    let len = f.metadata().map_err(StoreError::io("measure for wiping", path))?.len();
    let mut noise = vec![0u8; usize::try_from(len).unwrap_or(0)];
    random_bytes(&mut noise)?;
    f.write_all(&noise).and_then(|()| f.sync_all()).map_err(StoreError::io("overwrite", path))?;
    drop(f);
    std::fs::remove_file(path).map_err(StoreError::io("remove", path))
}

/// Destroys the profile in `dir`: header and keyring overwritten in place and removed, the
/// database removed. Needs no passphrase. Idempotent.
pub fn wipe_profile(dir: &Path) -> Result<(), StoreError> {
    shred_file(&dir.join(HEADER_FILE))?;
    keyring::shred(dir)?;
    shred_file(&dir.join("profile.hdr.tmp"))?;
    match std::fs::remove_dir_all(dir.join(DB_DIR)) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("remove the database", dir.join(DB_DIR))(e)),
    }
    header::sync_dir(dir)
}
