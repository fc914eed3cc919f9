//! Mailbox rotation: a conversation moves to a fresh mailbox of the receiver's, every
//! [`ROTATION_INTERVAL`] (plus up to [`ROTATION_JITTER`], so rotations do not line up into a
//! fingerprint) and on demand (`sotto rotate`), so the relay's view of any one mailbox is
//! short-lived.
//!
//! The owner of the mailbox (A) rotates it for its sender (B):
//! 1. A creates a new mailbox M2 (fresh ids, fresh owner key, fresh envelope key), files it
//!    for B, and sends B a `Rotation` body with M2's address inside the ratchet. A keeps the
//!    old mailbox M1 subscribed: whatever B sends before it reads the rotation still arrives.
//! 2. B, on reading it, switches its sending to M2 with a **fresh** sender key (reusing the old
//!    one would let the relay join M1 and M2) and sends its first message there: a `Welcome`
//!    carrying that key, which A uses to lock M2, exactly as after an invite.
//! 3. When the Welcome arrives in M2, A knows B sends nowhere else: B's outbox flushes in
//!    order, so everything B queued for M1 was stored before the Welcome. A deletes M1 from
//!    the relay once [`ROTATION_GRACE`] has passed since then and M1 has been subscribed for
//!    at least [`DRAIN_WAIT`] in the running session (the relay pushes a mailbox's whole queue
//!    on subscribing), so nothing queued in it is lost. If B never answers, M1 is kept for
//!    [`ROTATION_ABANDON`] (the relay's own envelope lifetime) and then deleted the same way.
//!
//! Rotation needs the relay: a rotation that fails is tried again on a later tick. While a
//! rotation waits for B's Welcome, no further rotation of that conversation starts.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::Rng;
use sotto_proto::{ErrorCode, RelayAddress, Request, SendId};

use super::state::{self, Retiring};
use crate::app::error::AppError;
use crate::app::outgoing::{content_of, queue, random_seed, welcome};
use crate::app::profile;
use crate::app::records::{Contact, PeerMailbox};
use crate::app::{Client, NO_SIG, Notice};
use crate::store::Txn;
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{Body, MailboxAddress, Rotation};
use crate::wire::envelope::EnvelopeKey;

/// How often a conversation moves to a fresh mailbox.
pub const ROTATION_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Up to this much is added at random to each interval.
pub const ROTATION_JITTER: Duration = Duration::from_secs(24 * 3600);
/// How long an old mailbox is kept after the peer confirmed the move.
pub const ROTATION_GRACE: Duration = Duration::from_secs(48 * 3600);
/// How long an old mailbox is kept when the peer never confirms: the relay's envelope lifetime.
pub const ROTATION_ABANDON: Duration = Duration::from_secs(21 * 24 * 3600);
/// How long an old mailbox must have been subscribed in this session before it is deleted.
pub const DRAIN_WAIT: Duration = Duration::from_secs(60);
/// How long a scheduled rotation that failed (relay unreachable) waits before trying again.
pub const ROTATION_RETRY: Duration = Duration::from_secs(5 * 60);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn next_rotation(now: u64) -> u64 {
    now.saturating_add(ms(ROTATION_INTERVAL)).saturating_add(rand::rng().random_range(0..=ms(ROTATION_JITTER)))
}

impl Client {
    /// Moves the conversation with `name` (or every conversation) to a fresh mailbox now.
    pub async fn rotate(&mut self, name: Option<&str>) -> Result<usize, AppError> {
        let contacts: Vec<Contact> = {
            let txn = self.profile.store.txn();
            match name {
                Some(n) => vec![profile::contact_by_name(&txn, n)?],
                None => profile::contacts(&txn)?.into_iter().filter(|c| c.peer.is_some()).collect(),
            }
        };
        let mut rotated = 0;
        for c in contacts {
            self.rotate_contact(&c).await?;
            rotated += 1;
        }
        Ok(rotated)
    }

    async fn rotate_contact(&mut self, contact: &Contact) -> Result<(), AppError> {
        let old = contact.my_recv_id;
        let relay = {
            let txn = self.profile.store.txn();
            match profile::own_mailbox(&txn, &old)? {
                Some(m) => m.relay.clone(),
                None => profile::settings(&txn)?.relay,
            }
        };
        let mut fresh = self.create_mailbox(&relay).await?;
        fresh.contact = Some(contact.id);
        let relay_address: RelayAddress = relay.parse().map_err(crate::wire::WireError::from)?;
        let address =
            MailboxAddress::new(&relay_address, &SendId(fresh.send_id), &EnvelopeKey::from_bytes(fresh.envelope_key));
        let body = content_of(0, Body::Rotation(Rotation { new_address: Some(address) }));
        let saved = fresh.clone();
        let result = self
            .send_control(&contact.name, body, move |txn, c, _| {
                profile::put_own_mailbox(txn, &saved)?;
                let mut moved = c.clone();
                moved.my_recv_id = saved.recv_id;
                profile::put_contact(txn, &moved)?;
                let mut s = state::get(txn, &c.id)?;
                let now = txn.now_ms();
                s.retiring.push(Retiring { recv_id: c.my_recv_id, since_ms: now, confirmed_ms: None });
                s.rotation_pending = Some(saved.recv_id);
                s.next_rotation_ms = Some(next_rotation(now));
                state::put(txn, &c.id, &s)
            })
            .await;
        match result {
            Ok(()) | Err(AppError::Queued(_)) => {}
            Err(e) => return Err(e),
        }
        // Deliveries into the new mailbox start now; the old one stays subscribed.
        let _ = self.subscribe_one(&fresh).await;
        Ok(())
    }
}

/// A `Rotation` from `contact`: send to the new mailbox from now on, with a fresh sender key
/// announced in a `Welcome` there (queued in `ptxn`; `contact` is saved by the caller).
pub async fn on_rotation(ptxn: &ProtocolTxn<'_>, contact: &mut Contact, r: &Rotation) -> Result<Vec<Notice>, AppError> {
    let (relay, send_id, key) =
        r.new_address.as_ref().ok_or(crate::wire::WireError::MissingField("rotation.new_address"))?.to_parts()?;
    let sender_seed = random_seed();
    contact.peer =
        Some(PeerMailbox { relay: relay.to_string(), send_id: send_id.0, envelope_key: *key.as_bytes(), sender_seed });
    let my_name = profile::settings(&*ptxn.txn()?)?.name;
    queue(ptxn, contact, &welcome(&sender_seed, &my_name), None).await?;
    Ok(Vec::new())
}

/// A `Welcome` arrived in mailbox `recv_id`: if it answers a rotation, the peer has moved.
/// Returns whether it did (then it is not news to show).
pub fn on_welcome(txn: &mut Txn<'_>, contact: &Contact, recv_id: &[u8; 24]) -> Result<bool, AppError> {
    let mut s = state::get(txn, &contact.id)?;
    if s.rotation_pending != Some(*recv_id) {
        // A mailbox an earlier rotation already replaced again: no news either.
        return Ok(s.retiring.iter().any(|r| r.recv_id == *recv_id));
    }
    s.rotation_pending = None;
    let now = txn.now_ms();
    for r in s.retiring.iter_mut().filter(|r| r.confirmed_ms.is_none()) {
        r.confirmed_ms = Some(now);
    }
    state::put(txn, &contact.id, &s)?;
    Ok(true)
}

/// Starts due rotations and deletes old mailboxes whose time has come.
pub async fn run_due(client: &mut Client) -> Result<Vec<Notice>, AppError> {
    let (now, contacts) = {
        let txn = client.profile.store.txn();
        (txn.now_ms(), profile::contacts(&txn)?)
    };
    let mut notices = Vec::new();
    for c in contacts {
        let mut s = state::get(&client.profile.store.txn(), &c.id)?;
        match s.next_rotation_ms {
            None => {
                s.next_rotation_ms = Some(next_rotation(now));
                let mut txn = client.profile.store.txn();
                state::put(&mut txn, &c.id, &s)?;
                txn.commit()?;
            }
            Some(due) if due <= now && s.rotation_pending.is_none() && c.peer.is_some() && !c.identity_changed => {
                let retry_at = client.defences.rotation_retry.get(&c.id).copied().unwrap_or(0);
                if now >= retry_at
                    && let Err(e) = client.rotate_contact(&c).await
                {
                    client.defences.rotation_retry.insert(c.id, now.saturating_add(ms(ROTATION_RETRY)));
                    notices.push(Notice::RelayTrouble(e.to_string()));
                }
            }
            Some(_) => {}
        }
        retire_due(client, &c, now).await?;
    }
    Ok(notices)
}

async fn retire_due(client: &mut Client, c: &Contact, now: u64) -> Result<(), AppError> {
    let retiring = state::get(&client.profile.store.txn(), &c.id)?.retiring;
    for r in retiring {
        let time_up = r.confirmed_ms.is_some_and(|t| now >= t.saturating_add(ms(ROTATION_GRACE)))
            || now >= r.since_ms.saturating_add(ms(ROTATION_ABANDON));
        let drained = client.defences.subscribed_ms.get(&r.recv_id).is_some_and(|t| now >= t + ms(DRAIN_WAIT));
        if !time_up || !drained {
            continue;
        }
        let mailbox = profile::own_mailbox(&client.profile.store.txn(), &r.recv_id)?;
        if let Some(m) = mailbox {
            let owner = SigningKey::from_bytes(&m.owner_seed);
            let req = Request::DeleteMailbox { recv_id: sotto_proto::RecvId(m.recv_id), signature: NO_SIG };
            match client.owner_request(&m.relay, &owner, req).await {
                Ok(_) | Err(AppError::Refused(ErrorCode::NoMailbox)) => {}
                Err(_) => continue,
            }
        }
        let mut txn = client.profile.store.txn();
        profile::remove_own_mailbox(&mut txn, &r.recv_id);
        let mut s = state::get(&txn, &c.id)?;
        s.retiring.retain(|x| x.recv_id != r.recv_id);
        state::put(&mut txn, &c.id, &s)?;
        txn.commit()?;
        client.defences.subscribed_ms.remove(&r.recv_id);
    }
    Ok(())
}
