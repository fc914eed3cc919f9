//! Delivery receipts: off by default, and when on, delayed and batched.
//!
//! A receipt sent the moment a message arrives tells the sender (and anyone timing the
//! network on both ends) exactly when the recipient came online. So a receiving profile with
//! receipts on (`sotto settings receipts on`) collects the content ids of the messages it
//! received and sends them together in one `Receipt` body after a random delay, drawn uniformly
//! from [`RECEIPT_DELAY_MIN`]..[`RECEIPT_DELAY_MAX`] when the first of them arrives. The sender
//! marks those messages [`Delivery::Delivered`]. With receipts off nothing is sent, and the
//! sender's messages stay "stored by the relay".

use std::time::Duration;

use rand::Rng;

use crate::app::error::AppError;
use crate::app::outgoing::{content_of, queue};
use crate::app::profile;
use crate::app::records::{Contact, Delivery};
use crate::app::{Client, Notice};
use crate::store::Txn;
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{Body, CONTENT_ID_LEN, MAX_RECEIPT_IDS, Receipt};

/// Shortest wait before receipts go out.
pub const RECEIPT_DELAY_MIN: Duration = Duration::from_secs(60);
/// Longest wait before receipts go out.
pub const RECEIPT_DELAY_MAX: Duration = Duration::from_secs(15 * 60);
/// Most sent messages remembered per conversation for receipts to match; the oldest are
/// forgotten first (their receipts, if any, no longer change anything).
pub const MAX_AWAITING_RECEIPTS: usize = 512;

/// Called for every message received: queues its id if receipts are on.
pub fn on_received(txn: &mut Txn<'_>, contact: &Contact, content_id: &[u8]) -> Result<(), AppError> {
    if !super::state::settings(txn)?.receipts {
        return Ok(());
    }
    let Ok(id) = <[u8; CONTENT_ID_LEN]>::try_from(content_id) else { return Ok(()) };
    let mut s = super::state::get(txn, &contact.id)?;
    if !s.receipt_ids.contains(&id) {
        s.receipt_ids.push(id);
    }
    if s.receipts_due_ms.is_none() {
        let lo = u64::try_from(RECEIPT_DELAY_MIN.as_millis()).unwrap_or(u64::MAX);
        let hi = u64::try_from(RECEIPT_DELAY_MAX.as_millis()).unwrap_or(u64::MAX);
        s.receipts_due_ms = Some(txn.now_ms().saturating_add(rand::rng().random_range(lo..=hi)));
    }
    super::state::put(txn, &contact.id, &s)
}

/// Called for every message sent: remembered so a receipt can mark it delivered.
pub fn on_sent(txn: &mut Txn<'_>, contact: &Contact, content_id: &[u8], local: u64) -> Result<(), AppError> {
    let Ok(id) = <[u8; CONTENT_ID_LEN]>::try_from(content_id) else { return Ok(()) };
    let mut s = super::state::get(txn, &contact.id)?;
    s.awaiting.push(super::state::Awaiting { content_id: id, local });
    let excess = s.awaiting.len().saturating_sub(MAX_AWAITING_RECEIPTS);
    s.awaiting.drain(..excess);
    super::state::put(txn, &contact.id, &s)
}

/// A `Receipt` from `contact`: marks their received messages delivered. Ids of messages sent
/// to someone else, or unknown, change nothing.
pub fn on_receipt(txn: &mut Txn<'_>, contact: &Contact, r: &Receipt) -> Result<Vec<Notice>, AppError> {
    let mut s = super::state::get(txn, &contact.id)?;
    let mut marked = 0;
    for id in &r.ids {
        let Some(pos) = s.awaiting.iter().position(|a| a.content_id.as_slice() == id.as_slice()) else { continue };
        let a = s.awaiting.remove(pos);
        let key = profile::message_key(txn, &contact.id, a.local);
        if let Some(mut m) = super::expiry::get(txn, &key)? {
            m.delivery = Delivery::Delivered;
            super::expiry::put(txn, &key, &m)?;
            marked += 1;
        }
    }
    super::state::put(txn, &contact.id, &s)?;
    Ok(if marked > 0 { vec![Notice::Delivered { name: contact.name.clone(), count: marked }] } else { Vec::new() })
}

/// Queues the receipts whose delay has run out; returns how many `Receipt` bodies.
pub async fn send_due(client: &mut Client) -> Result<usize, AppError> {
    let due: Vec<Contact> = {
        let txn = client.profile.store.txn();
        let now = txn.now_ms();
        let mut due = Vec::new();
        for c in profile::contacts(&txn)? {
            let s = super::state::get(&txn, &c.id)?;
            if s.receipts_due_ms.is_some_and(|t| t <= now) && c.peer.is_some() && !c.identity_changed {
                due.push(c);
            }
        }
        due
    };
    let mut sent = 0;
    for contact in due {
        let ptxn = ProtocolTxn::new(client.profile.store.txn());
        let mut s = super::state::get(&*ptxn.txn()?, &contact.id)?;
        let ids = std::mem::take(&mut s.receipt_ids);
        s.receipts_due_ms = None;
        super::state::put(&mut *ptxn.txn()?, &contact.id, &s)?;
        for chunk in ids.chunks(MAX_RECEIPT_IDS) {
            let body = content_of(0, Body::Receipt(Receipt { ids: chunk.iter().map(|i| i.to_vec()).collect() }));
            queue(&ptxn, &contact, &body, None).await?;
            sent += 1;
        }
        ptxn.commit()?;
    }
    Ok(sent)
}

impl Client {
    /// Turns delivery receipts on or off for this profile.
    pub fn set_receipts(&mut self, on: bool) -> Result<(), AppError> {
        let mut txn = self.profile.store.txn();
        let mut s = super::state::settings(&txn)?;
        s.receipts = on;
        super::state::put_settings(&mut txn, &s)?;
        txn.commit()?;
        Ok(())
    }

    /// Whether this profile sends delivery receipts.
    pub fn receipts_enabled(&mut self) -> Result<bool, AppError> {
        Ok(super::state::settings(&self.profile.store.txn())?.receipts)
    }
}
