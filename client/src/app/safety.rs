//! Safety numbers (libsignal fingerprints) and what the user does with them: compare,
//! mark verified, accept a changed key.
//!
//! Sotto has no phone numbers or account ids, so both sides use the same fixed id in the
//! fingerprint; the number then depends on the two identity keys alone.

use libsignal_protocol::{Fingerprint, IdentityKey};

use super::error::AppError;
use super::incoming::Notice;
use super::profile;
use super::{Client, address_of};
use crate::store::signal::{IdentityStatus, accept_identity, identity_status, local_identity};

/// libsignal's fingerprint format version.
const FINGERPRINT_VERSION: u32 = 2;
/// Hash iterations, as Signal uses.
const FINGERPRINT_ITERATIONS: u32 = 5200;
/// The stable id both sides put in the fingerprint.
const FINGERPRINT_ID: &[u8] = b"sotto";

/// A safety number with a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumber {
    /// 60 digits, the same on both devices.
    pub digits: String,
    /// The bytes to put in a QR code, for scanning instead of reading.
    pub scannable: Vec<u8>,
    /// Whether the user already marked this contact verified.
    pub verified: bool,
    /// Whether a changed key is waiting to be accepted (the number shown is for the new key).
    pub changed: bool,
}

impl Client {
    /// The safety number with `name`.
    pub fn safety_number(&mut self, name: &str) -> Result<SafetyNumber, AppError> {
        let txn = self.profile.store.txn();
        let contact = profile::contact_by_name(&txn, name)?;
        let theirs = match identity_status(&txn, &address_of(&contact.id))? {
            IdentityStatus::Unknown => return Err(AppError::NotReady(contact.name.clone())),
            IdentityStatus::Trusted(k) => k,
            IdentityStatus::Changed { pending, .. } => pending,
        };
        let mine = *local_identity(&txn)?.identity_key();
        let fp = fingerprint(&mine, &theirs)?;
        Ok(SafetyNumber {
            digits: fp.display_string()?,
            scannable: fp.scannable.serialize()?,
            verified: contact.verified,
            changed: contact.identity_changed,
        })
    }

    /// Marks `name` verified (after comparing safety numbers).
    pub fn mark_verified(&mut self, name: &str) -> Result<(), AppError> {
        let mut txn = self.profile.store.txn();
        let mut contact = profile::contact_by_name(&txn, name)?;
        if contact.identity_changed {
            return Err(AppError::IdentityChanged(contact.name.clone()));
        }
        contact.verified = true;
        profile::put_contact(&mut txn, &contact)?;
        txn.commit()?;
        Ok(())
    }

    /// Accepts `name`'s new identity key: the messages held back are read now (returned
    /// as notices), sending resumes, and verification starts over.
    pub async fn accept_new_identity(&mut self, name: &str) -> Result<Vec<Notice>, AppError> {
        let held = {
            let mut txn = self.profile.store.txn();
            let mut contact = profile::contact_by_name(&txn, name)?;
            let address = address_of(&contact.id);
            if let IdentityStatus::Changed { pending, .. } = identity_status(&txn, &address)? {
                accept_identity(&mut txn, &address, &pending)?;
            }
            contact.identity_changed = false;
            contact.verified = false;
            profile::put_contact(&mut txn, &contact)?;
            let held = profile::take_held(&mut txn, &contact.id)?;
            txn.commit()?;
            held
        };
        let mut notices = Vec::new();
        for (recv_id, env) in held {
            notices.extend(self.receive(&sotto_proto::RecvId(recv_id), &env).await?.0);
        }
        Ok(notices)
    }
}

fn fingerprint(mine: &IdentityKey, theirs: &IdentityKey) -> Result<Fingerprint, AppError> {
    Ok(Fingerprint::new(FINGERPRINT_VERSION, FINGERPRINT_ITERATIONS, FINGERPRINT_ID, mine, FINGERPRINT_ID, theirs)?)
}
