//! The profile: the encrypted store plus typed access to the application's records.
//!
//! Record keys never name anyone: contacts, mailboxes and messages are filed under keyed
//! hashes of random ids, and message keys add a local counter so history sorts in order.

use std::path::Path;

use rand::RngCore;
use sotto_proto::RelayAddress;

use super::error::AppError;
use super::records::{self, Contact, ContactId, Message, Outgoing, OwnMailbox, Settings};
use crate::store::signal::generate_identity;
use crate::store::{EncryptedStore, KdfParams, Table, Txn};

const SETTINGS_KEY: &[u8] = b"app.settings";

/// Longest contact name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// An open profile.
pub struct Profile {
    pub store: EncryptedStore,
}

impl Profile {
    /// Creates a profile in `dir` whose new mailboxes live on `relay`.
    pub fn create(dir: &Path, passphrase: &[u8], relay: &RelayAddress, params: KdfParams) -> Result<Self, AppError> {
        let mut store = EncryptedStore::create(dir, passphrase, params)?;
        let mut txn = store.txn();
        generate_identity(&mut txn, &mut rand::rng())?;
        put_settings(&mut txn, &Settings { relay: relay.to_string(), name: String::new() })?;
        txn.commit()?;
        Ok(Self { store })
    }

    /// Opens the profile in `dir`. The duress passphrase opens a new, empty profile in its
    /// place, set up as `init` would set it up on the same relay.
    pub fn open(dir: &Path, passphrase: &[u8]) -> Result<Self, AppError> {
        let mut store = EncryptedStore::open(dir, passphrase)?;
        if let Some(relay) = store.take_fresh_after_duress() {
            let mut txn = store.txn();
            generate_identity(&mut txn, &mut rand::rng())?;
            put_settings(&mut txn, &Settings { relay: relay.to_string(), name: String::new() })?;
            txn.commit()?;
        }
        Ok(Self { store })
    }
}

/// A fresh random contact id.
pub fn new_contact_id() -> ContactId {
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    id
}

/// Checks a name a user gave: not empty, not too long, no control characters.
pub fn check_name(name: &str) -> Result<(), AppError> {
    if name.trim().is_empty() {
        return Err(AppError::InvalidName("a name cannot be empty".into()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(AppError::InvalidName(format!("a name can be at most {MAX_NAME_BYTES} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::InvalidName("a name cannot contain control characters".into()));
    }
    Ok(())
}

pub fn settings(txn: &Txn<'_>) -> Result<Settings, AppError> {
    let raw = txn.get(Table::Meta, SETTINGS_KEY)?.ok_or(crate::store::StoreError::CorruptRecord("settings"))?;
    Ok(records::decode(&raw)?)
}

pub fn put_settings(txn: &mut Txn<'_>, s: &Settings) -> Result<(), AppError> {
    txn.put(Table::Meta, SETTINGS_KEY, &records::encode(s)?);
    Ok(())
}

fn mailbox_key(txn: &Txn<'_>, recv_id: &[u8; 24]) -> [u8; 32] {
    txn.index_key(Table::Mailboxes, recv_id)
}

pub fn own_mailbox(txn: &Txn<'_>, recv_id: &[u8; 24]) -> Result<Option<OwnMailbox>, AppError> {
    match txn.get(Table::Mailboxes, &mailbox_key(txn, recv_id))? {
        Some(raw) => Ok(Some(records::decode(&raw)?)),
        None => Ok(None),
    }
}

pub fn put_own_mailbox(txn: &mut Txn<'_>, m: &OwnMailbox) -> Result<(), AppError> {
    let key = mailbox_key(txn, &m.recv_id);
    txn.put(Table::Mailboxes, &key, &records::encode(m)?);
    Ok(())
}

pub fn remove_own_mailbox(txn: &mut Txn<'_>, recv_id: &[u8; 24]) {
    let key = mailbox_key(txn, recv_id);
    txn.remove(Table::Mailboxes, &key);
}

pub fn own_mailboxes(txn: &Txn<'_>) -> Result<Vec<OwnMailbox>, AppError> {
    txn.scan_table(Table::Mailboxes)?.iter().map(|(_, v)| Ok(records::decode(v)?)).collect()
}

fn contact_key(txn: &Txn<'_>, id: &ContactId) -> [u8; 32] {
    txn.index_key(Table::Contacts, id)
}

pub fn contact(txn: &Txn<'_>, id: &ContactId) -> Result<Option<Contact>, AppError> {
    match txn.get(Table::Contacts, &contact_key(txn, id))? {
        Some(raw) => Ok(Some(records::decode(&raw)?)),
        None => Ok(None),
    }
}

pub fn put_contact(txn: &mut Txn<'_>, c: &Contact) -> Result<(), AppError> {
    let key = contact_key(txn, &c.id);
    txn.put(Table::Contacts, &key, &records::encode(c)?);
    Ok(())
}

/// Every contact, sorted by name.
pub fn contacts(txn: &Txn<'_>) -> Result<Vec<Contact>, AppError> {
    let mut all: Vec<Contact> =
        txn.scan_table(Table::Contacts)?.iter().map(|(_, v)| records::decode(v)).collect::<Result<_, _>>()?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

pub fn remove_contact(txn: &mut Txn<'_>, id: &ContactId) {
    let key = contact_key(txn, id);
    txn.remove(Table::Contacts, &key);
}

pub fn contact_by_name(txn: &Txn<'_>, name: &str) -> Result<Contact, AppError> {
    contacts(txn)?.into_iter().find(|c| c.name == name).ok_or_else(|| AppError::NoSuchContact(name.to_string()))
}

/// `wanted`, or `wanted (2)`, `wanted (3)`… whichever no contact has yet.
pub fn unique_name(txn: &Txn<'_>, wanted: &str) -> Result<String, AppError> {
    let taken: Vec<String> = contacts(txn)?.into_iter().map(|c| c.name.clone()).collect();
    let base = if wanted.trim().is_empty() { "contact".to_string() } else { wanted.to_string() };
    if !taken.contains(&base) {
        return Ok(base);
    }
    Ok((2..).map(|n| format!("{base} ({n})")).find(|n| !taken.contains(n)).unwrap_or(base))
}

/// The key of a message: the contact's keyed hash, then a local counter.
pub fn message_key(txn: &Txn<'_>, contact: &ContactId, local: u64) -> Vec<u8> {
    let mut k = txn.index_key(Table::Messages, contact).to_vec();
    k.extend_from_slice(&local.to_be_bytes());
    k
}

/// Writes a message; a new one disappears after its conversation's timer (sealed under an
/// epoch key, see `defences::expiry`), an existing one keeps its expiry.
pub fn put_message(txn: &mut Txn<'_>, key: &[u8], m: &Message) -> Result<(), AppError> {
    super::defences::expiry::put(txn, key, m)
}

/// Reads a message; `None` if absent or expired.
pub fn message(txn: &Txn<'_>, key: &[u8]) -> Result<Option<Message>, AppError> {
    super::defences::expiry::get(txn, key)
}

/// A contact's messages, in the order they were sent (the sender's clock, then its
/// sequence number), so envelopes that arrived out of order still read in order.
pub fn history(txn: &Txn<'_>, contact: &ContactId) -> Result<Vec<Message>, AppError> {
    let prefix = txn.index_key(Table::Messages, contact);
    let mut out = super::defences::expiry::with_prefix(txn, &prefix)?;
    out.sort_by_key(|m| (m.sent_at_ms, m.direction == records::Direction::In, m.seq));
    Ok(out)
}

/// Keeps an envelope that could not be read until the user decides about a changed
/// identity key. Filed under the contact's keyed hash, then arrival order.
pub fn hold_envelope(
    txn: &mut Txn<'_>,
    contact: &ContactId,
    recv_id: &[u8; 24],
    envelope: &sotto_proto::Envelope,
) -> Result<(), AppError> {
    let mut key = txn.index_key(Table::Conversations, &held_prefix(contact)).to_vec();
    key.extend_from_slice(&super::now_ms().to_be_bytes());
    let mut nonce = [0u8; 8];
    rand::rng().fill_bytes(&mut nonce);
    key.extend_from_slice(&nonce);
    let mut value = recv_id.to_vec();
    value.extend_from_slice(envelope.as_bytes());
    txn.put(Table::Conversations, &key, &value);
    Ok(())
}

/// Takes every envelope held for `contact`, oldest first.
pub fn take_held(txn: &mut Txn<'_>, contact: &ContactId) -> Result<Vec<([u8; 24], sotto_proto::Envelope)>, AppError> {
    let prefix = txn.index_key(Table::Conversations, &held_prefix(contact));
    let rows: Vec<_> =
        txn.scan_table(Table::Conversations)?.into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
    let mut out = Vec::new();
    for (k, v) in rows {
        txn.remove(Table::Conversations, &k);
        let bad = || crate::store::StoreError::CorruptRecord("held envelope");
        let recv: [u8; 24] = v.get(..24).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
        let env = sotto_proto::Envelope::from_slice(v.get(24..).ok_or_else(bad)?).map_err(|_| bad())?;
        out.push((recv, env));
    }
    Ok(out)
}

fn held_prefix(contact: &ContactId) -> Vec<u8> {
    let mut p = b"held:".to_vec();
    p.extend_from_slice(contact);
    p
}

pub fn put_outgoing(txn: &mut Txn<'_>, id: &[u8; 16], o: &Outgoing) -> Result<(), AppError> {
    txn.put(Table::Outbox, id, &records::encode(o)?);
    Ok(())
}

/// Everything in the outbox, oldest first. An entry carrying a disappearing message whose
/// time ran out before it could leave is not sent (and is deleted by the expiry sweep).
pub fn outbox(txn: &Txn<'_>) -> Result<Vec<([u8; 16], Outgoing)>, AppError> {
    let mut out = Vec::new();
    for (k, v) in txn.scan_table(Table::Outbox)? {
        let id: [u8; 16] = k.as_slice().try_into().map_err(|_| crate::store::StoreError::CorruptRecord("outbox"))?;
        if let Some(o) = super::defences::expiry::open_outgoing(txn, &id, &v)? {
            out.push((id, o));
        }
    }
    Ok(out)
}
