//! The encrypted key-value store: one sled tree, sealed values, atomic transactions.
//!
//! All logical tables share one sled tree, each record key prefixed with a 1-byte table tag,
//! because sled's `apply_batch` is atomic only within one tree: this way a libsignal call's
//! session, identity and prekey writes, and the message they carry, land together or not at all.
//!
//! Each value is `format (1) || nonce (24) || XChaCha20-Poly1305(value) || tag (16)` with the
//! stored key (`tag || key`) and the format byte as associated data, so a value copied to
//! another record or table no longer opens. Record keys that would name a contact or a
//! conversation go through [`EncryptedStore::index_key`] first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::error::StoreError;
use super::header::{self, Header};
use super::keys::{KdfParams, MasterKey, SubKeys, random_salt};

/// Sub-directory of the profile holding the sled database.
pub const DB_DIR: &str = "db";
/// Version byte in front of every sealed value.
const VALUE_FORMAT_V1: u8 = 1;

/// A decrypted value; wiped from memory when dropped.
pub type Plain = Zeroizing<Vec<u8>>;

/// The logical tables. The discriminant is the 1-byte prefix on disk and must never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
pub enum Table {
    /// Profile-wide singletons: the local identity key pair, registration id, settings.
    Meta = 0x01,
    /// Remote identity keys (trusted and pending), keyed by index hash of the address.
    Identities = 0x02,
    /// One-time EC prekeys, keyed by id.
    PreKeys = 0x03,
    /// Signed EC prekeys, keyed by id.
    SignedPreKeys = 0x04,
    /// Kyber (ML-KEM) prekeys with their one-time/last-resort kind, keyed by id.
    KyberPreKeys = 0x05,
    /// Base keys already used with a last-resort Kyber prekey, keyed by index hash.
    KyberBaseKeys = 0x06,
    /// libsignal session records, keyed by index hash of the address.
    Sessions = 0x07,
    /// libsignal sender-key records, keyed by index hash of (address, distribution id).
    SenderKeys = 0x08,
    /// Contacts (names, addresses, mailboxes); keys should be index hashes.
    Contacts = 0x20,
    /// Conversations and groups; keys should be index hashes.
    Conversations = 0x21,
    /// Message history.
    Messages = 0x22,
    /// Sent messages not yet acknowledged by the relay (ciphertext kept for resends).
    Outbox = 0x23,
    /// Mailboxes this profile owns or sends to.
    Mailboxes = 0x24,
    /// Groups: id, local name, membership log, copies waiting for a session; keyed by
    /// index hash of the group id.
    Groups = 0x25,
}

impl Table {
    /// The on-disk prefix byte.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    fn from_tag(tag: u8) -> Option<Table> {
        Some(match tag {
            0x01 => Table::Meta,
            0x02 => Table::Identities,
            0x03 => Table::PreKeys,
            0x04 => Table::SignedPreKeys,
            0x05 => Table::KyberPreKeys,
            0x06 => Table::KyberBaseKeys,
            0x07 => Table::Sessions,
            0x08 => Table::SenderKeys,
            0x20 => Table::Contacts,
            0x21 => Table::Conversations,
            0x22 => Table::Messages,
            0x23 => Table::Outbox,
            0x24 => Table::Mailboxes,
            0x25 => Table::Groups,
            _ => return None,
        })
    }
}

fn stored_key(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(table.tag());
    k.extend_from_slice(key);
    k
}

/// An open profile: the sled database plus the keys that seal it.
pub struct EncryptedStore {
    dir: PathBuf,
    db: sled::Db,
    master: MasterKey,
    keys: SubKeys,
    params: KdfParams,
}

impl EncryptedStore {
    /// Creates a new profile in `dir` (created if missing) protected by `passphrase`.
    ///
    /// Fails with [`StoreError::AlreadyExists`] if `dir` already holds a profile.
    pub fn create(dir: impl AsRef<Path>, passphrase: &[u8], params: KdfParams) -> Result<EncryptedStore, StoreError> {
        let dir = dir.as_ref();
        params.validate()?;
        create_private_dir(dir)?;
        if header::exists(dir)? || dir.join(DB_DIR).exists() {
            return Err(StoreError::AlreadyExists(dir.to_path_buf()));
        }
        let master = MasterKey::generate()?;
        let hdr = Header::seal(&master, passphrase, params, random_salt()?)?;
        // Header first: a crash before the database exists leaves a profile that opens empty,
        // never a database whose key is lost.
        header::write(dir, &hdr)?;
        Self::finish_open(dir, master, params)
    }

    /// Opens the profile in `dir`. A wrong passphrase gives [`StoreError::WrongPassphrase`]
    /// without the database having been opened, so nothing on disk changes.
    pub fn open(dir: impl AsRef<Path>, passphrase: &[u8]) -> Result<EncryptedStore, StoreError> {
        let dir = dir.as_ref();
        let hdr = header::read(dir)?;
        let master = hdr.unwrap_master(passphrase)?;
        Self::finish_open(dir, master, hdr.params)
    }

    fn finish_open(dir: &Path, master: MasterKey, params: KdfParams) -> Result<EncryptedStore, StoreError> {
        let keys = master.derive_subkeys()?;
        let db = open_sled(dir)?;
        Ok(EncryptedStore { dir: dir.to_path_buf(), db, master, keys, params })
    }

    /// Re-wraps the master key under a new passphrase (and parameters). The database is not
    /// touched; the old header is replaced atomically.
    pub fn change_passphrase(&mut self, new_passphrase: &[u8], params: KdfParams) -> Result<(), StoreError> {
        let hdr = Header::seal(&self.master, new_passphrase, params, random_salt()?)?;
        header::write(&self.dir, &hdr)?;
        self.params = params;
        Ok(())
    }

    /// The profile directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Argon2id parameters currently protecting the master key.
    pub fn kdf_params(&self) -> KdfParams {
        self.params
    }

    /// The opaque record key for `name` in `table`: HMAC-SHA256 under a key derived from the
    /// master key. Use it for any key that would otherwise name a contact or conversation.
    pub fn index_key(&self, table: Table, name: &[u8]) -> [u8; 32] {
        self.keys.index.hash(table.tag(), name)
    }

    /// Reads and decrypts one record.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Plain>, StoreError> {
        let sk = stored_key(table, key);
        match self.db.get(&sk)? {
            None => Ok(None),
            Some(sealed) => self.open_value(table, &sk, &sealed).map(Some),
        }
    }

    /// Iterates over a table's records as `(key without tag, decrypted value)`, in key order.
    pub fn scan_table(&self, table: Table) -> impl Iterator<Item = Result<(Vec<u8>, Plain), StoreError>> + '_ {
        self.db.scan_prefix([table.tag()]).map(move |item| {
            let (sk, sealed) = item?;
            let value = self.open_value(table, &sk, &sealed)?;
            Ok((sk.get(1..).unwrap_or_default().to_vec(), value))
        })
    }

    /// Starts a write transaction. Writes are buffered in memory until
    /// [`Txn::commit`]; dropping the transaction discards them. Taking `&mut self` makes the
    /// transaction the only writer, so a read-modify-write inside it cannot be interleaved.
    pub fn txn(&mut self) -> Txn<'_> {
        Txn { store: self, writes: BTreeMap::new() }
    }

    /// Forces everything written so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn seal_value(&self, sk: &[u8], value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let aad = value_aad(sk);
        let body = self.keys.seal.seal(&aad, value)?;
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(VALUE_FORMAT_V1);
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn open_value(&self, table: Table, sk: &[u8], sealed: &[u8]) -> Result<Plain, StoreError> {
        let tampered = || StoreError::Tampered { table };
        let (format, body) = sealed.split_first().ok_or_else(tampered)?;
        if *format != VALUE_FORMAT_V1 {
            return Err(tampered());
        }
        self.keys.seal.open(&value_aad(sk), body).ok_or_else(tampered)
    }

    #[cfg(test)]
    pub(crate) fn raw_db(&self) -> &sled::Db {
        &self.db
    }

    #[cfg(test)]
    pub(crate) fn secrets_for_tests(&self) -> Vec<Vec<u8>> {
        vec![
            self.master.expose_for_tests().to_vec(),
            self.keys.seal.expose_for_tests().to_vec(),
            self.keys.index.expose_for_tests().to_vec(),
        ]
    }
}

/// How long `open` waits for sled's file lock before reporting [`StoreError::Locked`].
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the database, waiting briefly for its lock: after a `Db` is dropped, sled's
/// background I/O threads can hold the lock file for a few more milliseconds, so an
/// immediate reopen in the same process would otherwise fail at random.
fn open_sled(dir: &Path) -> Result<sled::Db, StoreError> {
    // sled's own compression stays off (its default): it would only see ciphertext.
    let config = sled::Config::new().path(dir.join(DB_DIR));
    let deadline = Instant::now() + LOCK_WAIT;
    let mut delay = Duration::from_millis(2);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(e) if is_lock_error(&e) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked(dir.to_path_buf()));
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// sled (pinned at 0.34.7) reports a held lock only as this message.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn value_aad(sk: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + sk.len());
    aad.push(VALUE_FORMAT_V1);
    aad.extend_from_slice(sk);
    aad
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(StoreError::io("create the profile directory", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Other local users have no business listing a profile, even an encrypted one.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(StoreError::io("restrict the profile directory", dir))?;
    }
    Ok(())
}

/// A write transaction: buffered puts and removes with read-your-writes, committed as one
/// atomic sled batch. Values are sealed only at commit and held zeroizing until then.
#[must_use = "a transaction does nothing until committed"]
pub struct Txn<'s> {
    store: &'s EncryptedStore,
    /// Stored key (`tag || key`) -> new value, or `None` for a removal.
    writes: BTreeMap<Vec<u8>, Option<Plain>>,
}

impl<'s> Txn<'s> {
    /// Reads a record, seeing this transaction's own uncommitted writes.
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Plain>, StoreError> {
        match self.writes.get(&stored_key(table, key)) {
            Some(Some(v)) => Ok(Some(Zeroizing::new(v.to_vec()))),
            Some(None) => Ok(None),
            None => self.store.get(table, key),
        }
    }

    /// Whether a record exists, seeing this transaction's own writes.
    pub fn contains(&self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        match self.writes.get(&stored_key(table, key)) {
            Some(w) => Ok(w.is_some()),
            None => Ok(self.store.db.contains_key(stored_key(table, key))?),
        }
    }

    /// Buffers a write of `value` under `key` in `table`.
    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) {
        self.writes.insert(stored_key(table, key), Some(Zeroizing::new(value.to_vec())));
    }

    /// Buffers the removal of `key` from `table`.
    pub fn remove(&mut self, table: Table, key: &[u8]) {
        self.writes.insert(stored_key(table, key), None);
    }

    /// All records of `table`, with this transaction's writes applied, in key order.
    pub fn scan_table(&self, table: Table) -> Result<Vec<(Vec<u8>, Plain)>, StoreError> {
        let mut merged: BTreeMap<Vec<u8>, Plain> = BTreeMap::new();
        for item in self.store.scan_table(table) {
            let (k, v) = item?;
            merged.insert(k, v);
        }
        for (sk, w) in self.writes.range(vec![table.tag()]..) {
            let Some((&tag, key)) = sk.split_first() else {
                continue;
            };
            if tag != table.tag() {
                break;
            }
            match w {
                Some(v) => merged.insert(key.to_vec(), Zeroizing::new(v.to_vec())),
                None => merged.remove(key),
            };
        }
        Ok(merged.into_iter().collect())
    }

    /// See [`EncryptedStore::index_key`].
    pub fn index_key(&self, table: Table, name: &[u8]) -> [u8; 32] {
        self.store.index_key(table, name)
    }

    /// Number of buffered writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The tables this transaction writes to (for diagnostics and tests).
    pub fn tables_written(&self) -> Vec<Table> {
        let mut t: Vec<Table> =
            self.writes.keys().filter_map(|sk| sk.first().copied().and_then(Table::from_tag)).collect();
        t.dedup();
        t
    }

    /// Seals every buffered value, applies them as one atomic batch and flushes to disk.
    /// On error nothing of this transaction is visible.
    pub fn commit(self) -> Result<(), StoreError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (sk, w) in &self.writes {
            match w {
                Some(v) => batch.insert(sk.as_slice(), self.store.seal_value(sk, v)?),
                None => batch.remove(sk.as_slice()),
            }
        }
        self.store.db.apply_batch(batch)?;
        self.store.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
