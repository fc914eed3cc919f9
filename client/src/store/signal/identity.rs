//! The local identity and the trust state of remote identity keys.
//!
//! Trust is "first use, then pinned": the first key seen for an address (normally from an
//! invite exchanged out of band) is trusted; any different key afterwards is refused by
//! `is_trusted_identity` until the user compares safety numbers and calls
//! [`accept_identity`]. The design requires a changed key to stop the conversation, so unlike
//! libsignal's in-memory store, `save_identity` never silently replaces a trusted key: a
//! different key is kept aside as *pending* for the user interface to show.

use async_trait::async_trait;
use libsignal_protocol::{
    Direction, IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore, ProtocolAddress, SignalProtocolError,
};
use rand::{CryptoRng, Rng};
use zeroize::Zeroizing;

use super::{SignalStore, address_bytes};
use crate::store::db::{Table, Txn};
use crate::store::error::StoreError;

const META_IDENTITY: &[u8] = b"signal/identity-key-pair";
const META_REGISTRATION_ID: &[u8] = b"signal/registration-id";
const RECORD_V1: u8 = 1;

/// Registration ids are 14-bit in libsignal's wire format; 0 is reserved.
const MAX_REGISTRATION_ID: u32 = 0x3FFF;

/// What the profile knows about a remote address's identity key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityStatus {
    /// No key recorded yet: the next one seen will be trusted on first use.
    Unknown,
    /// This key is trusted.
    Trusted(IdentityKey),
    /// A different key was presented; it stays untrusted until accepted.
    Changed {
        /// The key the user trusts.
        trusted: IdentityKey,
        /// The new key, awaiting the user's decision.
        pending: IdentityKey,
    },
}

/// Stores the profile's own identity. Refuses to overwrite an existing one, since losing it
/// breaks every conversation.
pub fn init_identity(txn: &mut Txn<'_>, pair: &IdentityKeyPair, registration_id: u32) -> Result<(), StoreError> {
    if txn.contains(Table::Meta, META_IDENTITY)? {
        return Err(StoreError::IdentityExists);
    }
    let serialized = Zeroizing::new(pair.serialize().into_vec());
    txn.put(Table::Meta, META_IDENTITY, &serialized);
    txn.put(Table::Meta, META_REGISTRATION_ID, &registration_id.to_be_bytes());
    Ok(())
}

/// Generates and stores a fresh identity key pair and registration id.
pub fn generate_identity<R: Rng + CryptoRng>(txn: &mut Txn<'_>, rng: &mut R) -> Result<IdentityKeyPair, StoreError> {
    let pair = IdentityKeyPair::generate(rng);
    let registration_id = rng.random_range(1..=MAX_REGISTRATION_ID);
    init_identity(txn, &pair, registration_id)?;
    Ok(pair)
}

/// The profile's own identity key pair.
pub fn local_identity(txn: &Txn<'_>) -> Result<IdentityKeyPair, StoreError> {
    let bytes = txn.get(Table::Meta, META_IDENTITY)?.ok_or(StoreError::NoIdentity)?;
    Ok(IdentityKeyPair::try_from(bytes.as_slice())?)
}

/// The profile's registration id.
pub fn local_registration_id(txn: &Txn<'_>) -> Result<u32, StoreError> {
    let bytes = txn.get(Table::Meta, META_REGISTRATION_ID)?.ok_or(StoreError::NoIdentity)?;
    let arr: [u8; 4] = bytes.as_slice().try_into().map_err(|_| StoreError::CorruptRecord("registration id"))?;
    Ok(u32::from_be_bytes(arr))
}

/// The trust state of `address`'s identity key.
pub fn identity_status(txn: &Txn<'_>, address: &ProtocolAddress) -> Result<IdentityStatus, StoreError> {
    Ok(match load(txn, address)? {
        None => IdentityStatus::Unknown,
        Some(Record { trusted, pending: None }) => IdentityStatus::Trusted(trusted),
        Some(Record { trusted, pending: Some(pending) }) => IdentityStatus::Changed { trusted, pending },
    })
}

/// Trusts `key` for `address` from now on (after the user verified the safety number),
/// replacing any previously trusted key and clearing a pending one.
pub fn accept_identity(txn: &mut Txn<'_>, address: &ProtocolAddress, key: &IdentityKey) -> Result<(), StoreError> {
    store(txn, address, &Record { trusted: *key, pending: None });
    Ok(())
}

struct Record {
    trusted: IdentityKey,
    pending: Option<IdentityKey>,
}

fn record_key(txn: &Txn<'_>, address: &ProtocolAddress) -> [u8; 32] {
    txn.index_key(Table::Identities, &address_bytes(address))
}

fn load(txn: &Txn<'_>, address: &ProtocolAddress) -> Result<Option<Record>, StoreError> {
    let Some(bytes) = txn.get(Table::Identities, &record_key(txn, address))? else {
        return Ok(None);
    };
    decode(&bytes).map(Some)
}

fn store(txn: &mut Txn<'_>, address: &ProtocolAddress, record: &Record) {
    let key = record_key(txn, address);
    txn.put(Table::Identities, &key, &encode(record));
}

/// `version || len || trusted || [len || pending]`.
fn encode(record: &Record) -> Vec<u8> {
    let mut out = vec![RECORD_V1];
    for key in std::iter::once(&record.trusted).chain(record.pending.as_ref()) {
        let bytes = key.serialize();
        // Serialized identity keys are 33 bytes; the length byte cannot overflow.
        out.push(bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out
}

fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
    let corrupt = || StoreError::CorruptRecord("identity record");
    let (&version, mut rest) = bytes.split_first().ok_or_else(corrupt)?;
    if version != RECORD_V1 {
        return Err(corrupt());
    }
    let mut keys = Vec::with_capacity(2);
    while let Some((&len, tail)) = rest.split_first() {
        let (key, tail) = tail.split_at_checked(len.into()).ok_or_else(corrupt)?;
        keys.push(IdentityKey::decode(key)?);
        rest = tail;
    }
    match keys.as_slice() {
        [trusted] => Ok(Record { trusted: *trusted, pending: None }),
        [trusted, pending] => Ok(Record { trusted: *trusted, pending: Some(*pending) }),
        _ => Err(corrupt()),
    }
}

fn save(txn: &mut Txn<'_>, address: &ProtocolAddress, identity: &IdentityKey) -> Result<IdentityChange, StoreError> {
    match load(txn, address)? {
        None => {
            store(txn, address, &Record { trusted: *identity, pending: None });
            Ok(IdentityChange::NewOrUnchanged)
        }
        Some(r) if r.trusted == *identity => Ok(IdentityChange::NewOrUnchanged),
        Some(r) => {
            // Keep trusting the old key; the new one waits for the user.
            store(txn, address, &Record { trusted: r.trusted, pending: Some(*identity) });
            Ok(IdentityChange::ReplacedExisting)
        }
    }
}

fn is_trusted(txn: &Txn<'_>, address: &ProtocolAddress, identity: &IdentityKey) -> Result<bool, StoreError> {
    Ok(match load(txn, address)? {
        None => true,
        Some(r) => r.trusted == *identity,
    })
}

#[async_trait(?Send)]
impl IdentityKeyStore for SignalStore<'_, '_> {
    async fn get_identity_key_pair(&self) -> Result<IdentityKeyPair, SignalProtocolError> {
        self.with("get_identity_key_pair", |t| local_identity(t))
    }

    async fn get_local_registration_id(&self) -> Result<u32, SignalProtocolError> {
        self.with("get_local_registration_id", |t| local_registration_id(t))
    }

    async fn save_identity(
        &mut self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
    ) -> Result<IdentityChange, SignalProtocolError> {
        self.with_mut("save_identity", |t| save(t, address, identity))
    }

    async fn is_trusted_identity(
        &self,
        address: &ProtocolAddress,
        identity: &IdentityKey,
        _direction: Direction,
    ) -> Result<bool, SignalProtocolError> {
        // Same rule both ways: a substituted key must stop sending as well as receiving.
        self.with("is_trusted_identity", |t| is_trusted(t, address, identity))
    }

    async fn get_identity(&self, address: &ProtocolAddress) -> Result<Option<IdentityKey>, SignalProtocolError> {
        self.with("get_identity", |t| Ok(load(t, address)?.map(|r| r.trusted)))
    }
}
