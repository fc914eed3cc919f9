//! libsignal's protocol stores on top of the encrypted KV store.
//!
//! libsignal passes each store as its own `&mut dyn` and writes several records per call
//! (session, identity, consumed prekeys). To commit those writes together, a [`ProtocolTxn`]
//! owns one [`Txn`] in a `RefCell`, and every [`SignalStore`] handle it hands out is a shared
//! reference to that cell implementing all six store traits. Handles are `Copy`, so one can be
//! passed for each store parameter. The cell is never borrowed across an `.await` (every store
//! method is synchronous inside), so the borrows cannot overlap on the one thread libsignal
//! runs on; a failed borrow is still an error, never a panic.
//!
//! Policies from the design (DESIGN §5, §8) live here, not in libsignal:
//! - one-time Kyber prekeys are deleted when used; for last-resort ones the base keys seen are
//!   remembered and a repeat is rejected (see [`KyberKind`]);
//! - a changed identity key is untrusted until [`accept_identity`] (see [`IdentityStatus`]);
//! - a session is used only if it was set up with PQXDH and runs SPQR ([`REQUIRED_SESSION`]).

mod identity;
mod prekeys;
mod sessions;

#[cfg(test)]
pub(crate) mod tests;

use std::cell::{Ref, RefCell, RefMut};
use std::time::SystemTime;

use libsignal_protocol::{
    CiphertextMessage, PreKeyBundle, ProtocolAddress, SessionUsabilityRequirements, SignalProtocolError,
    message_decrypt, message_encrypt, process_prekey_bundle,
};
use rand::{CryptoRng, Rng};

pub use identity::{
    IdentityStatus, accept_identity, generate_identity, identity_status, init_identity, local_identity,
    local_registration_id,
};
pub use prekeys::{
    KyberKind, create_prekey_bundle, kyber_pre_key_kind, remove_kyber_pre_key, remove_signed_pre_key,
    save_kyber_pre_key,
};
pub use sessions::{delete_session, load_session};

use super::db::Txn;
use super::error::StoreError;

/// What a session must offer before Sotto sends or accepts messages on it: set up with PQXDH
/// (X25519 + ML-KEM) and running the SPQR post-quantum ratchet. This libsignal version would
/// otherwise accept a classical session.
pub const REQUIRED_SESSION: SessionUsabilityRequirements =
    SessionUsabilityRequirements::EstablishedWithPqxdh.union(SessionUsabilityRequirements::Spqr);

/// A transaction that libsignal's stores write into; see the module docs.
#[must_use = "a transaction does nothing until committed"]
pub struct ProtocolTxn<'s> {
    cell: RefCell<Txn<'s>>,
}

impl<'s> ProtocolTxn<'s> {
    /// Wraps a transaction; everything libsignal writes through [`ProtocolTxn::store`] handles
    /// lands in it.
    pub fn new(txn: Txn<'s>) -> Self {
        ProtocolTxn { cell: RefCell::new(txn) }
    }

    /// A handle implementing all of libsignal's store traits over this transaction.
    pub fn store(&self) -> SignalStore<'_, 's> {
        SignalStore { cell: &self.cell }
    }

    /// The underlying transaction, e.g. to add the decrypted message to the same batch.
    /// Do not hold the guard across an `.await` on a libsignal call.
    pub fn txn(&self) -> Result<RefMut<'_, Txn<'s>>, StoreError> {
        self.cell.try_borrow_mut().map_err(|_| StoreError::Busy)
    }

    /// Commits everything written, libsignal's records and the caller's, as one batch.
    pub fn commit(self) -> Result<(), StoreError> {
        self.cell.into_inner().commit()
    }

    /// Gives back the plain transaction.
    pub fn into_txn(self) -> Txn<'s> {
        self.cell.into_inner()
    }

    /// Starts a session from a peer's prekey bundle (PQXDH), via libsignal.
    pub async fn process_prekey_bundle<R: Rng + CryptoRng>(
        &self,
        remote: &ProtocolAddress,
        bundle: &PreKeyBundle,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<(), SignalProtocolError> {
        let (mut sessions, mut identities) = (self.store(), self.store());
        process_prekey_bundle(remote, &mut sessions, &mut identities, bundle, now, rng).await
    }

    /// Encrypts `plaintext` for `remote`, refusing unless the session meets
    /// [`REQUIRED_SESSION`].
    pub async fn encrypt<R: Rng + CryptoRng>(
        &self,
        remote: &ProtocolAddress,
        plaintext: &[u8],
        now: SystemTime,
        rng: &mut R,
    ) -> Result<CiphertextMessage, SignalProtocolError> {
        if !self.session_is_post_quantum(remote, now)? {
            return Err(not_post_quantum(remote));
        }
        let (mut sessions, mut identities) = (self.store(), self.store());
        message_encrypt(plaintext, remote, &mut sessions, &mut identities, now, rng).await
    }

    /// Decrypts a message from `remote` (PreKey or normal), then refuses the result unless
    /// the resulting session meets [`REQUIRED_SESSION`]. On any error the caller should drop
    /// this transaction, so nothing of the attempt is stored.
    pub async fn decrypt<R: Rng + CryptoRng>(
        &self,
        remote: &ProtocolAddress,
        message: &CiphertextMessage,
        now: SystemTime,
        rng: &mut R,
    ) -> Result<Vec<u8>, SignalProtocolError> {
        let s = self.store();
        let (mut sessions, mut identities, mut pre_keys, signed, mut kyber) = (s, s, s, s, s);
        let plaintext =
            message_decrypt(message, remote, &mut sessions, &mut identities, &mut pre_keys, &signed, &mut kyber, rng)
                .await?;
        if !self.session_is_post_quantum(remote, now)? {
            return Err(not_post_quantum(remote));
        }
        Ok(plaintext)
    }

    /// Whether the current session with `remote` exists and meets [`REQUIRED_SESSION`].
    pub fn session_is_post_quantum(
        &self,
        remote: &ProtocolAddress,
        now: SystemTime,
    ) -> Result<bool, SignalProtocolError> {
        let txn = self.store().read()?;
        match load_session(&txn, remote)? {
            None => Ok(false),
            Some(record) => record.has_usable_sender_chain(now, REQUIRED_SESSION),
        }
    }
}

fn not_post_quantum(remote: &ProtocolAddress) -> SignalProtocolError {
    SignalProtocolError::InvalidState("sotto session policy", format!("session with {remote} lacks PQXDH or SPQR"))
}

/// A handle onto a [`ProtocolTxn`] implementing `IdentityKeyStore`, `PreKeyStore`,
/// `SignedPreKeyStore`, `KyberPreKeyStore`, `SessionStore` and `SenderKeyStore`.
#[derive(Clone, Copy)]
pub struct SignalStore<'a, 's> {
    cell: &'a RefCell<Txn<'s>>,
}

impl<'a, 's> SignalStore<'a, 's> {
    fn read(&self) -> Result<Ref<'a, Txn<'s>>, StoreError> {
        self.cell.try_borrow().map_err(|_| StoreError::Busy)
    }

    fn write(&self) -> Result<RefMut<'a, Txn<'s>>, StoreError> {
        self.cell.try_borrow_mut().map_err(|_| StoreError::Busy)
    }

    /// Runs `f` on the transaction for a trait method, converting errors for libsignal.
    fn with<T>(
        &self,
        method: &'static str,
        f: impl FnOnce(&Txn<'s>) -> Result<T, StoreError>,
    ) -> Result<T, SignalProtocolError> {
        let txn = self.read().map_err(|e| e.into_signal(method))?;
        f(&txn).map_err(|e| e.into_signal(method))
    }

    /// Mutable counterpart of [`SignalStore::with`].
    fn with_mut<T>(
        &self,
        method: &'static str,
        f: impl FnOnce(&mut Txn<'s>) -> Result<T, StoreError>,
    ) -> Result<T, SignalProtocolError> {
        let mut txn = self.write().map_err(|e| e.into_signal(method))?;
        f(&mut txn).map_err(|e| e.into_signal(method))
    }
}

/// Record key for anything addressed by a libsignal address: length-prefixed so that no two
/// (name, device) pairs encode alike. Callers hash it with `index_key` before storing.
fn address_bytes(address: &ProtocolAddress) -> Vec<u8> {
    let name = address.name().as_bytes();
    let mut out = Vec::with_capacity(8 + name.len());
    out.extend_from_slice(&(name.len() as u64).to_be_bytes());
    out.extend_from_slice(name);
    out.push(u8::from(address.device_id()));
    out
}
