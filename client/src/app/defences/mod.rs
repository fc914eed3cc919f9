//! The metadata defences of a conversation (issue 7; threat model in `docs/THREAT_MODEL.md`).
//!
//! - [`expiry`]: disappearing messages: the conversation timer both sides agree on, message
//!   records sealed until they expire (cryptographic deletion through the store's epoch keys),
//!   and the sweep that deletes them.
//! - [`receipts`]: delivery receipts, off by default, sent after a random delay and batched.
//! - [`rotation`]: moving a conversation to a fresh mailbox, weekly and on demand.
//! - [`cover`]: opt-in cover traffic to a mailbox of one's own, at Poisson intervals.
//! - [`state`]: the per-conversation record they share and the profile's settings for them.
//!
//! Everything that waits (timers, receipt delays, the rotation schedule and grace period)
//! compares due times against the store's [`crate::store::Clock`] in [`Client::tick`], which
//! `poll` runs at most every [`TICK_INTERVAL`] and commands run on opening, so tests move the
//! clock instead of sleeping.

pub mod cover;
pub mod expiry;
pub mod receipts;
pub mod rotation;
pub mod state;

#[cfg(test)]
mod forensic_tests;

use std::time::Duration;

use tokio::time::Instant;

use super::error::AppError;
use super::outgoing::queue;
use super::records::Contact;
use super::{Client, Notice};
use crate::store::Txn;
use crate::store::signal::ProtocolTxn;
use crate::wire::Content;

/// How often `poll` looks for due work (expired messages, receipts, rotations).
pub const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// What the defences keep in memory while the profile is open.
#[derive(Default)]
pub struct Runtime {
    next_tick: Option<Instant>,
    /// Cover traffic, while `listen --cover` runs.
    pub(crate) cover: Option<cover::Cover>,
    /// When (by the profile's clock) each mailbox was last subscribed in this session: an old
    /// mailbox is deleted only after it has been drained.
    pub(crate) subscribed_ms: std::collections::HashMap<[u8; 24], u64>,
    /// Scheduled rotations that failed, and when to try them again.
    pub(crate) rotation_retry: std::collections::HashMap<super::records::ContactId, u64>,
}

impl Client {
    /// Does everything that is due by the profile's clock: deletes expired messages and
    /// destroys their keys, sends batched receipts, rotates mailboxes, deletes drained old
    /// mailboxes. Failures to reach a relay are retried on the next tick.
    pub async fn tick(&mut self) -> Result<Vec<Notice>, AppError> {
        expiry::sweep(&mut self.profile.store)?;
        let mut notices = Vec::new();
        let queued_receipts = receipts::send_due(self).await?;
        notices.extend(rotation::run_due(self).await?);
        if queued_receipts > 0 {
            let _ = self.flush_outbox().await;
        }
        Ok(notices)
    }

    /// [`Self::tick`], at most every [`TICK_INTERVAL`]; cover cells whenever due.
    pub(crate) async fn tick_if_due(&mut self) -> Vec<Notice> {
        let now = Instant::now();
        let mut notices = Vec::new();
        if self.defences.next_tick.is_none_or(|t| t <= now) {
            self.defences.next_tick = Some(now + TICK_INTERVAL);
            match self.tick().await {
                Ok(n) => notices.extend(n),
                Err(e) => notices.push(Notice::RelayTrouble(e.to_string())),
            }
        }
        if let Err(e) = cover::send_due(self).await {
            notices.push(Notice::RelayTrouble(e.to_string()));
        }
        notices
    }

    /// Queues a control body (timer, receipt, rotation) for the contact called `name`,
    /// applying `update` in the same transaction as the encryption, then sends it.
    pub(crate) async fn send_control<F>(&mut self, name: &str, body: Content, update: F) -> Result<(), AppError>
    where
        F: FnOnce(&mut Txn<'_>, &Contact, &Content) -> Result<(), AppError>,
    {
        let ptxn = ProtocolTxn::new(self.profile.store.txn());
        let contact = crate::app::profile::contact_by_name(&*ptxn.txn()?, name)?;
        if contact.identity_changed {
            return Err(AppError::IdentityChanged(contact.name.clone()));
        }
        if contact.peer.is_none() {
            return Err(AppError::NotReady(contact.name.clone()));
        }
        update(&mut *ptxn.txn()?, &contact, &body)?;
        queue(&ptxn, &contact, &body, None).await?;
        ptxn.commit()?;
        match self.flush_outbox().await?.last_error {
            Some(e) => Err(AppError::Queued(e)),
            None => Ok(()),
        }
    }

    /// The profile's clock (tests move it forward).
    pub fn clock(&self) -> &crate::store::Clock {
        self.profile.store.clock()
    }
}
