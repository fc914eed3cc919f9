//! Session records (pairwise Double Ratchet + SPQR state) and sender-key records.
//!
//! Both are keyed by an index hash of the peer's address, never the address itself: the
//! address name is a local id that a contact record maps to a person, and the keys of the
//! database must not let anyone count or link conversations without the master key.

use async_trait::async_trait;
use libsignal_protocol::{
    ProtocolAddress, SenderKeyRecord, SenderKeyStore, SessionRecord, SessionStore, SignalProtocolError,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{SignalStore, address_bytes};
use crate::store::db::{Table, Txn};
use crate::store::error::StoreError;

fn session_key(txn: &Txn<'_>, address: &ProtocolAddress) -> [u8; 32] {
    txn.index_key(Table::Sessions, &address_bytes(address))
}

fn sender_key_key(txn: &Txn<'_>, sender: &ProtocolAddress, distribution_id: Uuid) -> [u8; 32] {
    let mut name = address_bytes(sender);
    name.extend_from_slice(distribution_id.as_bytes());
    txn.index_key(Table::SenderKeys, &name)
}

/// The session with `address`, if any.
pub fn load_session(txn: &Txn<'_>, address: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError> {
    match txn.get(Table::Sessions, &session_key(txn, address))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(SessionRecord::deserialize(&bytes)?)),
    }
}

/// Forgets the session with `address` (e.g. when a contact is deleted).
pub fn delete_session(txn: &mut Txn<'_>, address: &ProtocolAddress) -> Result<(), StoreError> {
    let key = session_key(txn, address);
    txn.remove(Table::Sessions, &key);
    Ok(())
}

#[async_trait(?Send)]
impl SessionStore for SignalStore<'_, '_> {
    async fn load_session(&self, address: &ProtocolAddress) -> Result<Option<SessionRecord>, SignalProtocolError> {
        self.with("load_session", |t| load_session(t, address))
    }

    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: &SessionRecord,
    ) -> Result<(), SignalProtocolError> {
        let value = Zeroizing::new(record.serialize()?);
        self.with_mut("store_session", |t| {
            let key = session_key(t, address);
            t.put(Table::Sessions, &key, &value);
            Ok(())
        })
    }
}

#[async_trait(?Send)]
impl SenderKeyStore for SignalStore<'_, '_> {
    async fn store_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
        record: &SenderKeyRecord,
    ) -> Result<(), SignalProtocolError> {
        let value = Zeroizing::new(record.serialize()?);
        self.with_mut("store_sender_key", |t| {
            let key = sender_key_key(t, sender, distribution_id);
            t.put(Table::SenderKeys, &key, &value);
            Ok(())
        })
    }

    async fn load_sender_key(
        &mut self,
        sender: &ProtocolAddress,
        distribution_id: Uuid,
    ) -> Result<Option<SenderKeyRecord>, SignalProtocolError> {
        let value =
            self.with("load_sender_key", |t| t.get(Table::SenderKeys, &sender_key_key(t, sender, distribution_id)))?;
        value.map(|bytes| SenderKeyRecord::deserialize(&bytes)).transpose()
    }
}
