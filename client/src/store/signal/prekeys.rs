//! One-time EC prekeys, signed EC prekeys and ML-KEM-1024 ("Kyber") prekeys.
//!
//! libsignal deletes a one-time EC prekey itself, but only *marks* a Kyber prekey as used and
//! cannot tell one-time from last-resort ones (DESIGN §8). So each Kyber record carries its
//! kind: a one-time key is deleted when marked, which makes a replayed PreKey message fail;
//! for a last-resort key every (Kyber id, signed id, base key) seen is remembered and a repeat
//! is rejected, so a replay cannot re-derive a session from it.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use libsignal_protocol::{
    CiphertextMessageType, DeviceId, GenericSignedPreKey, KeyPair, KyberPreKeyId, KyberPreKeyRecord, KyberPreKeyStore,
    PreKeyBundle, PreKeyId, PreKeyRecord, PreKeyStore, PublicKey, SignalProtocolError, SignedPreKeyId,
    SignedPreKeyRecord, SignedPreKeyStore, Timestamp, kem,
};
use rand::{CryptoRng, Rng};
use zeroize::Zeroizing;

use super::SignalStore;
use super::identity::{local_identity, local_registration_id};
use crate::store::db::{Table, Txn};
use crate::store::error::StoreError;

/// Whether a Kyber prekey may be used once or many times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KyberKind {
    /// Deleted as soon as a PreKey message uses it.
    OneTime,
    /// Kept for reuse; each base key may be used with it only once.
    LastResort,
}

impl KyberKind {
    fn byte(self) -> u8 {
        match self {
            KyberKind::OneTime => 1,
            KyberKind::LastResort => 2,
        }
    }

    fn from_byte(b: u8) -> Option<KyberKind> {
        match b {
            1 => Some(KyberKind::OneTime),
            2 => Some(KyberKind::LastResort),
            _ => None,
        }
    }
}

/// Prekey ids are drawn from 24 bits, the range Signal clients use.
const MAX_PREKEY_ID: u32 = 0x00FF_FFFF;
const ID_ATTEMPTS: usize = 32;

fn id_key(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

/// Saves a Kyber prekey of the given kind. (libsignal's `save_kyber_pre_key` saves one-time
/// keys: if a kind is forgotten, the safe failure is a key used only once.)
pub fn save_kyber_pre_key(
    txn: &mut Txn<'_>,
    id: KyberPreKeyId,
    record: &KyberPreKeyRecord,
    kind: KyberKind,
) -> Result<(), StoreError> {
    let serialized = Zeroizing::new(record.serialize()?);
    let mut value = Zeroizing::new(Vec::with_capacity(1 + serialized.len()));
    value.push(kind.byte());
    value.extend_from_slice(&serialized);
    txn.put(Table::KyberPreKeys, &id_key(id.into()), &value);
    Ok(())
}

/// The kind of a stored Kyber prekey, if it exists.
pub fn kyber_pre_key_kind(txn: &Txn<'_>, id: KyberPreKeyId) -> Result<Option<KyberKind>, StoreError> {
    Ok(load_kyber(txn, id)?.map(|(kind, _)| kind))
}

/// Deletes a Kyber prekey (e.g. a rotated last-resort key) and the base keys seen with it.
pub fn remove_kyber_pre_key(txn: &mut Txn<'_>, id: KyberPreKeyId) -> Result<(), StoreError> {
    let prefix = id_key(id.into());
    txn.remove(Table::KyberPreKeys, &prefix);
    for (key, _) in txn.scan_table(Table::KyberBaseKeys)? {
        if key.starts_with(&prefix) {
            txn.remove(Table::KyberBaseKeys, &key);
        }
    }
    Ok(())
}

/// Deletes a signed EC prekey (after rotation).
pub fn remove_signed_pre_key(txn: &mut Txn<'_>, id: SignedPreKeyId) -> Result<(), StoreError> {
    txn.remove(Table::SignedPreKeys, &id_key(id.into()));
    Ok(())
}

/// Generates and stores a one-time EC prekey, a signed EC prekey and an ML-KEM-1024 prekey
/// of `kyber_kind`, signed by the local identity, and returns the bundle to publish (e.g. in
/// an invite). Fresh random ids are chosen.
pub fn create_prekey_bundle<R: Rng + CryptoRng>(
    txn: &mut Txn<'_>,
    device_id: DeviceId,
    kyber_kind: KyberKind,
    rng: &mut R,
) -> Result<PreKeyBundle, StoreError> {
    let identity = local_identity(txn)?;
    let registration_id = local_registration_id(txn)?;
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let now = Timestamp::from_epoch_millis(millis);
    let sign = |msg: &[u8], rng: &mut R| -> Result<Vec<u8>, StoreError> {
        Ok(identity.private_key().calculate_signature(msg, rng).map_err(SignalProtocolError::from)?.into_vec())
    };

    let pre_key_id = fresh_id(txn, Table::PreKeys, rng)?;
    let pre_key = KeyPair::generate(rng);
    let record = Zeroizing::new(PreKeyRecord::new(pre_key_id.into(), &pre_key).serialize()?);
    txn.put(Table::PreKeys, &id_key(pre_key_id), &record);

    let signed_id = fresh_id(txn, Table::SignedPreKeys, rng)?;
    let signed = KeyPair::generate(rng);
    let signed_sig = sign(&signed.public_key.serialize(), rng)?;
    let record = SignedPreKeyRecord::new(signed_id.into(), now, &signed, &signed_sig);
    txn.put(Table::SignedPreKeys, &id_key(signed_id), &Zeroizing::new(record.serialize()?));

    let kyber_id = fresh_id(txn, Table::KyberPreKeys, rng)?;
    let kyber = kem::KeyPair::generate(kem::KeyType::MLKEM1024, rng);
    let kyber_sig = sign(&kyber.public_key.serialize(), rng)?;
    let record = KyberPreKeyRecord::new(kyber_id.into(), now, &kyber, &kyber_sig);
    save_kyber_pre_key(txn, kyber_id.into(), &record, kyber_kind)?;

    Ok(PreKeyBundle::new(
        registration_id,
        device_id,
        Some((pre_key_id.into(), pre_key.public_key)),
        signed_id.into(),
        signed.public_key,
        signed_sig,
        kyber_id.into(),
        kyber.public_key.clone(),
        kyber_sig,
        *identity.identity_key(),
    )?)
}

fn fresh_id<R: Rng + CryptoRng>(txn: &Txn<'_>, table: Table, rng: &mut R) -> Result<u32, StoreError> {
    for _ in 0..ID_ATTEMPTS {
        let id = rng.random_range(1..=MAX_PREKEY_ID);
        if !txn.contains(table, &id_key(id))? {
            return Ok(id);
        }
    }
    Err(StoreError::NoFreePreKeyId)
}

fn load_kyber(txn: &Txn<'_>, id: KyberPreKeyId) -> Result<Option<(KyberKind, KyberPreKeyRecord)>, StoreError> {
    let Some(value) = txn.get(Table::KyberPreKeys, &id_key(id.into()))? else {
        return Ok(None);
    };
    let corrupt = || StoreError::CorruptRecord("kyber prekey record");
    let (&kind, record) = value.split_first().ok_or_else(corrupt)?;
    let kind = KyberKind::from_byte(kind).ok_or_else(corrupt)?;
    Ok(Some((kind, KyberPreKeyRecord::deserialize(record)?)))
}

/// Consumes a Kyber prekey; `Ok(false)` if a last-resort key meets a base key twice.
fn mark_kyber_used(
    txn: &mut Txn<'_>,
    id: KyberPreKeyId,
    signed_id: SignedPreKeyId,
    base_key: &PublicKey,
) -> Result<bool, StoreError> {
    match load_kyber(txn, id)? {
        // Already consumed earlier in this transaction (or never existed): libsignal only
        // marks a key it has just loaded, so treat this as a replay.
        None => Ok(false),
        Some((KyberKind::OneTime, _)) => {
            txn.remove(Table::KyberPreKeys, &id_key(id.into()));
            Ok(true)
        }
        Some((KyberKind::LastResort, _)) => {
            let mut name = Vec::with_capacity(8 + 33);
            name.extend_from_slice(&id_key(id.into()));
            name.extend_from_slice(&id_key(signed_id.into()));
            name.extend_from_slice(&base_key.serialize());
            // The Kyber id stays in clear in front so rotation can find the entries; the base
            // key is hashed, as it would link this record to the peer's PreKey message.
            let mut key = id_key(id.into()).to_vec();
            key.extend_from_slice(&txn.index_key(Table::KyberBaseKeys, &name));
            if txn.contains(Table::KyberBaseKeys, &key)? {
                return Ok(false);
            }
            txn.put(Table::KyberBaseKeys, &key, &[1]);
            Ok(true)
        }
    }
}

#[async_trait(?Send)]
impl PreKeyStore for SignalStore<'_, '_> {
    async fn get_pre_key(&self, id: PreKeyId) -> Result<PreKeyRecord, SignalProtocolError> {
        let value = self.with("get_pre_key", |t| t.get(Table::PreKeys, &id_key(id.into())))?;
        PreKeyRecord::deserialize(&value.ok_or(SignalProtocolError::InvalidPreKeyId)?)
    }

    async fn save_pre_key(&mut self, id: PreKeyId, record: &PreKeyRecord) -> Result<(), SignalProtocolError> {
        let value = Zeroizing::new(record.serialize()?);
        self.with_mut("save_pre_key", |t| {
            t.put(Table::PreKeys, &id_key(id.into()), &value);
            Ok(())
        })
    }

    async fn remove_pre_key(&mut self, id: PreKeyId) -> Result<(), SignalProtocolError> {
        self.with_mut("remove_pre_key", |t| {
            t.remove(Table::PreKeys, &id_key(id.into()));
            Ok(())
        })
    }
}

#[async_trait(?Send)]
impl SignedPreKeyStore for SignalStore<'_, '_> {
    async fn get_signed_pre_key(&self, id: SignedPreKeyId) -> Result<SignedPreKeyRecord, SignalProtocolError> {
        let value = self.with("get_signed_pre_key", |t| t.get(Table::SignedPreKeys, &id_key(id.into())))?;
        SignedPreKeyRecord::deserialize(&value.ok_or(SignalProtocolError::InvalidSignedPreKeyId)?)
    }

    async fn save_signed_pre_key(
        &mut self,
        id: SignedPreKeyId,
        record: &SignedPreKeyRecord,
    ) -> Result<(), SignalProtocolError> {
        let value = Zeroizing::new(record.serialize()?);
        self.with_mut("save_signed_pre_key", |t| {
            t.put(Table::SignedPreKeys, &id_key(id.into()), &value);
            Ok(())
        })
    }
}

#[async_trait(?Send)]
impl KyberPreKeyStore for SignalStore<'_, '_> {
    async fn get_kyber_pre_key(&self, id: KyberPreKeyId) -> Result<KyberPreKeyRecord, SignalProtocolError> {
        self.with("get_kyber_pre_key", |t| load_kyber(t, id))?
            .map(|(_, record)| record)
            .ok_or(SignalProtocolError::InvalidKyberPreKeyId)
    }

    async fn save_kyber_pre_key(
        &mut self,
        id: KyberPreKeyId,
        record: &KyberPreKeyRecord,
    ) -> Result<(), SignalProtocolError> {
        self.with_mut("save_kyber_pre_key", |t| save_kyber_pre_key(t, id, record, KyberKind::OneTime))
    }

    async fn mark_kyber_pre_key_used(
        &mut self,
        id: KyberPreKeyId,
        signed_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<(), SignalProtocolError> {
        let fresh = self.with_mut("mark_kyber_pre_key_used", |t| mark_kyber_used(t, id, signed_id, base_key))?;
        if fresh {
            Ok(())
        } else {
            Err(SignalProtocolError::InvalidMessage(CiphertextMessageType::PreKey, "reused base key"))
        }
    }
}
