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
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::clock::Clock;
use super::error::StoreError;
use super::header::{self, Header, Unlocked};
use super::keyring::Keyring;
use super::keys::{KdfParams, MasterKey, SubKeys};

/// Sub-directory of the profile holding the sled database.
pub const DB_DIR: &str = "db";
/// Version byte in front of every sealed value.
const VALUE_FORMAT_V1: u8 = 1;
/// Version byte of a value sealed under the day's rolling key instead of the seal key.
const VALUE_FORMAT_ROLLING: u8 = 2;

/// Tables sealed under a rolling key of the day (see `epochs::ROLLING_LOG2`) rather than
/// the master-derived seal key. sled keeps every overwritten version of a record in its
/// files, and an old libsignal session state opens the messages sent after it; an old outbox
/// entry holds a message's ciphertext. Once a day these tables are sealed again under the new
/// day's key and the old key is destroyed, so their old versions die within a day.
pub const ROLLING_TABLES: [Table; 3] = [Table::Sessions, Table::SenderKeys, Table::Outbox];

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
    /// Epoch keys for records sealed until a moment (see `epochs`).
    keyring: Mutex<Keyring>,
    clock: Clock,
    /// Earliest moment something sealed until a moment may be due for deletion (0: unknown).
    next_expiry_ms: AtomicU64,
    /// Set when a duress passphrase opened this store: the relay the empty profile uses.
    fresh_after_duress: Option<Zeroizing<String>>,
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
        let hdr = Header::seal(&master, passphrase, params)?;
        // Header first: a crash before the database exists leaves a profile that opens empty,
        // never a database whose key is lost.
        header::write_new(dir, &hdr)?;
        let keyring = Keyring::create(dir, master.derive_keyring_key()?)?;
        Self::finish_open(dir, master, params, keyring)
    }

    /// Opens the profile in `dir`. A wrong passphrase gives [`StoreError::WrongPassphrase`]
    /// without the database having been opened, so nothing on disk changes.
    ///
    /// The duress passphrase destroys the profile (see `wipe`) and returns a new, empty store
    /// protected by the duress passphrase; [`EncryptedStore::take_fresh_after_duress`] then
    /// says which relay the empty profile should name, so that it looks like a fresh one.
    pub fn open(dir: impl AsRef<Path>, passphrase: &[u8]) -> Result<EncryptedStore, StoreError> {
        let dir = dir.as_ref();
        if let Some((master, params)) = header::unlock_v1(dir, passphrase)? {
            // A format 1 header: rewritten in place as format 2 (no duress passphrase yet).
            let hdr = Header::seal(&master, passphrase, params)?;
            header::write_in_place(dir, &hdr)?;
            let keyring = Keyring::open(dir, master.derive_keyring_key()?)?;
            return Self::finish_open(dir, master, params, keyring);
        }
        let hdr = header::read(dir)?;
        match hdr.unlock(passphrase)? {
            Unlocked::Master(master) => {
                let keyring = Keyring::open(dir, master.derive_keyring_key()?)?;
                Self::finish_open(dir, master, hdr.params, keyring)
            }
            Unlocked::Duress(relay) => {
                super::wipe::wipe_profile(dir)?;
                let mut fresh = Self::create(dir, passphrase, hdr.params)?;
                fresh.fresh_after_duress = Some(relay);
                Ok(fresh)
            }
        }
    }

    fn finish_open(
        dir: &Path,
        master: MasterKey,
        params: KdfParams,
        keyring: Keyring,
    ) -> Result<EncryptedStore, StoreError> {
        let keys = master.derive_subkeys()?;
        let db = open_sled(dir)?;
        Ok(EncryptedStore {
            dir: dir.to_path_buf(),
            db,
            master,
            keys,
            params,
            keyring: Mutex::new(keyring),
            clock: Clock::default(),
            next_expiry_ms: AtomicU64::new(0),
            fresh_after_duress: None,
        })
    }

    /// After a duress unlock: the relay the new, empty profile should use (once).
    pub fn take_fresh_after_duress(&mut self) -> Option<Zeroizing<String>> {
        self.fresh_after_duress.take()
    }

    /// Re-wraps the master key under a new passphrase (and parameters). The database is not
    /// touched; the header is rewritten in place, so the old wrapped key is overwritten.
    pub fn change_passphrase(&mut self, new_passphrase: &[u8], params: KdfParams) -> Result<(), StoreError> {
        let mut hdr = header::read(&self.dir)?;
        hdr.rewrap(&self.master, new_passphrase, params)?;
        header::write_in_place(&self.dir, &hdr)?;
        self.params = params;
        Ok(())
    }

    /// Sets a duress passphrase: unlocking with it destroys this profile and opens an empty
    /// one on `relay`. It must differ from the passphrase.
    pub fn set_duress(&mut self, duress_passphrase: &[u8], relay: &str) -> Result<(), StoreError> {
        let mut hdr = header::read(&self.dir)?;
        if matches!(hdr.unlock(duress_passphrase), Ok(Unlocked::Master(_))) {
            return Err(StoreError::DuressIsPassphrase);
        }
        hdr.set_duress(duress_passphrase, relay)?;
        header::write_in_place(&self.dir, &hdr)
    }

    /// Forgets the duress passphrase.
    pub fn clear_duress(&mut self) -> Result<(), StoreError> {
        let mut hdr = header::read(&self.dir)?;
        hdr.clear_duress()?;
        header::write_in_place(&self.dir, &hdr)
    }

    /// Destroys this profile at once (`sotto panic`): keys overwritten in place, files removed.
    pub fn wipe(self) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        drop(self);
        super::wipe::wipe_profile(&dir)
    }

    /// The clock that decides expiry. Tests move it forward.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Seals `plaintext` so that it cannot be opened once `expires_at_ms` has passed and the
    /// keys were swept (see `epochs`). `aad` binds it to its place.
    pub fn seal_until(&self, expires_at_ms: u64, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
        let blob = super::epochs::seal(&mut ring, self.clock.now_ms(), expires_at_ms, aad, plaintext)?;
        self.next_expiry_ms.fetch_min(expires_at_ms, Ordering::Relaxed);
        Ok(blob)
    }

    /// Whether something sealed until a moment may have expired by now (a sweep is due).
    pub fn expiry_due(&self) -> bool {
        self.next_expiry_ms.load(Ordering::Relaxed) <= self.clock.now_ms()
    }

    /// Records when the next sweep is due: the earliest of `next_record_ms` (the earliest
    /// expiry of a record still stored) and the end of the earliest live epoch bucket.
    pub fn set_next_expiry(&self, next_record_ms: u64) -> Result<(), StoreError> {
        let ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
        let next_key = ring.buckets().into_iter().map(super::epochs::bucket_end_ms).min().unwrap_or(u64::MAX);
        self.next_expiry_ms.store(next_record_ms.min(next_key), Ordering::Relaxed);
        Ok(())
    }

    /// Opens what [`Self::seal_until`] sealed; `Ok(None)` once its key is destroyed.
    pub fn open_until(&self, aad: &[u8], blob: &[u8]) -> Result<Option<Plain>, StoreError> {
        let ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
        super::epochs::open(&ring, aad, blob)
    }

    /// Destroys every epoch key whose bucket has ended by this store's clock; returns how
    /// many. Records sealed under them can never be opened again.
    pub fn destroy_expired_keys(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let mut ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
        ring.destroy_where(|b| super::epochs::bucket_end_ms(b) <= now)
    }

    /// Once a day: seals the records of [`ROLLING_TABLES`] again under today's rolling key,
    /// then destroys the older rolling keys, so the versions sled keeps of them die. Returns
    /// how many keys were destroyed. Run on opening and on every tick.
    pub fn roll(&mut self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let stale = {
            let ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
            super::epochs::stale_rolling(&ring, now)
        };
        if stale.is_empty() {
            return Ok(0);
        }
        let mut txn = self.txn();
        for table in ROLLING_TABLES {
            for (k, v) in txn.scan_table(table)? {
                txn.put(table, &k, &v);
            }
        }
        txn.commit()?;
        let mut ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
        ring.destroy_where(|b| stale.contains(&b))
    }

    /// The buckets whose keys are alive (for tests and diagnostics: no key material).
    pub fn live_epochs(&self) -> Result<Vec<super::keyring::BucketId>, StoreError> {
        Ok(self.keyring.lock().map_err(|_| StoreError::Busy)?.buckets())
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
        if sk.first().is_some_and(|t| ROLLING_TABLES.iter().any(|r| r.tag() == *t)) {
            let mut ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
            let bucket = super::epochs::rolling_bucket(self.clock.now_ms());
            let body = super::epochs::seal_in(&mut ring, bucket, &rolling_aad(sk), value)?;
            return Ok([&[VALUE_FORMAT_ROLLING][..], &body].concat());
        }
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
        if *format == VALUE_FORMAT_ROLLING && ROLLING_TABLES.contains(&table) {
            let ring = self.keyring.lock().map_err(|_| StoreError::Busy)?;
            // A missing key means a version older than the last roll: nothing live is one.
            return super::epochs::open(&ring, &rolling_aad(sk), body)?.ok_or_else(tampered);
        }
        if *format != VALUE_FORMAT_V1 || ROLLING_TABLES.contains(&table) {
            return Err(tampered());
        }
        self.keys.seal.open(&value_aad(sk), body).ok_or_else(tampered)
    }

    #[cfg(test)]
    pub(crate) fn raw_db(&self) -> &sled::Db {
        &self.db
    }

    /// Opens a sealed value read from the raw files, as `get` would.
    #[cfg(test)]
    pub(crate) fn open_raw_for_tests(&self, table: Table, key: &[u8], sealed: &[u8]) -> Result<Plain, StoreError> {
        self.open_value(table, &stored_key(table, key), sealed)
    }

    /// The buckets held by each of the keyring file's two copies, read from disk.
    #[cfg(test)]
    pub(crate) fn keyring_copies_for_tests(&self) -> Vec<Option<Vec<super::keyring::BucketId>>> {
        match self.master.derive_keyring_key() {
            Ok(key) => super::keyring::copies_for_tests(&self.dir, &key),
            Err(_) => Vec::new(),
        }
    }

    /// Every symmetric key this open profile holds: master, seal, keyring, and live epoch keys.
    #[cfg(test)]
    pub(crate) fn all_keys_for_tests(&self) -> Vec<[u8; 32]> {
        let mut keys = vec![*self.master.expose_for_tests(), *self.keys.seal.expose_for_tests()];
        if let Ok(k) = self.master.derive_keyring_key() {
            keys.push(*k.expose_for_tests());
        }
        keys.extend(self.epoch_keys_for_tests().into_iter().map(|(_, k)| k));
        keys
    }

    #[cfg(test)]
    pub(crate) fn epoch_keys_for_tests(&self) -> Vec<(super::keyring::BucketId, [u8; 32])> {
        self.keyring.lock().map(|r| r.keys_for_tests()).unwrap_or_default()
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

fn rolling_aad(sk: &[u8]) -> Vec<u8> {
    [&[VALUE_FORMAT_ROLLING][..], sk].concat()
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

    /// See [`EncryptedStore::seal_until`].
    pub fn seal_until(&self, expires_at_ms: u64, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.store.seal_until(expires_at_ms, aad, plaintext)
    }

    /// See [`EncryptedStore::open_until`].
    pub fn open_until(&self, aad: &[u8], blob: &[u8]) -> Result<Option<Plain>, StoreError> {
        self.store.open_until(aad, blob)
    }

    /// The store's clock, in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.store.clock.now_ms()
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
