//! Cover traffic, opt-in (`sotto listen --cover RATE`): dummy cells at Poisson intervals.
//!
//! While it runs, the client sends an envelope of kind `Cover` (empty body, sealed and padded
//! like any other) to a mailbox of its own, with the same `Send` request, signed with the
//! mailbox's sender key like every send to a locked mailbox. The relay stores it and pushes it
//! back; the client opens it, sees the kind, acknowledges it and shows nothing. Intervals are
//! exponential with mean `1 / RATE` minutes (a Poisson process), so a cover cell's timing says
//! nothing about the next one, and real sends hide among them for anyone on the network.
//!
//! What it does not hide: the relay delivers a cover cell to the connection that sent it, so
//! the relay itself can tell cover from real sends. Cover traffic narrows what a network
//! observer learns from timing; `docs/THREAT_MODEL.md` gives its data cost per day.

use ed25519_dalek::SigningKey;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sotto_proto::SendId;
use tokio::time::{Duration, Instant};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::app::Client;
use crate::app::error::AppError;
use crate::app::profile;
use crate::app::records::{self, Outgoing};
use crate::store::Table;
use crate::wire::envelope::{self, BodyKind, EnvelopeKey};

/// Highest cover rate accepted, in cells per minute (ten a second on average).
pub const MAX_COVER_RATE: f64 = 600.0;
const COVER_KEY: &[u8] = b"app.cover-mailbox";

/// The mailbox cover cells go to, and the key its sends are signed with.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct CoverMailbox {
    recv_id: [u8; 24],
    sender_seed: [u8; 32],
}

/// Cover traffic while it runs.
pub(crate) struct Cover {
    per_minute: f64,
    next: Instant,
    recv_id: [u8; 24],
    /// Cells sent so far (for tests and the user).
    pub(crate) sent: u64,
}

/// An exponential wait with mean `60 / per_minute` seconds.
fn interval(per_minute: f64) -> Duration {
    let u: f64 = rand::rng().random_range(0.0..1.0);
    Duration::from_secs_f64(-(1.0 - u).ln() * 60.0 / per_minute)
}

impl Client {
    /// Starts cover traffic at `per_minute` cells per minute (Poisson), making the cover
    /// mailbox on first use.
    pub async fn start_cover(&mut self, per_minute: f64) -> Result<(), AppError> {
        if !(per_minute > 0.0 && per_minute <= MAX_COVER_RATE) {
            return Err(AppError::InvalidSetting(format!(
                "the cover rate must be above 0 and at most {MAX_COVER_RATE} cells per minute"
            )));
        }
        let existing = {
            let txn = self.profile.store.txn();
            match txn.get(Table::Meta, COVER_KEY)? {
                Some(raw) => Some(records::decode::<CoverMailbox>(&raw)?),
                None => None,
            }
            .filter(|c| profile::own_mailbox(&txn, &c.recv_id).ok().flatten().is_some())
        };
        let recv_id = match existing {
            Some(c) => c.recv_id,
            None => {
                let relay = profile::settings(&self.profile.store.txn())?.relay;
                let mut m = self.create_mailbox(&relay).await?;
                let sender_seed = crate::app::outgoing::random_seed();
                m.secure_pending = Some(SigningKey::from_bytes(&sender_seed).verifying_key().to_bytes());
                let mut txn = self.profile.store.txn();
                profile::put_own_mailbox(&mut txn, &m)?;
                let record = CoverMailbox { recv_id: m.recv_id, sender_seed };
                txn.put(Table::Meta, COVER_KEY, &records::encode(&record)?);
                txn.commit()?;
                self.subscribe_one(&m).await?;
                m.recv_id
            }
        };
        self.defences.cover = Some(Cover { per_minute, next: Instant::now() + interval(per_minute), recv_id, sent: 0 });
        Ok(())
    }

    /// Stops cover traffic.
    pub fn stop_cover(&mut self) {
        self.defences.cover = None;
    }

    /// Cover cells sent since cover traffic started.
    pub fn cover_sent(&self) -> u64 {
        self.defences.cover.as_ref().map_or(0, |c| c.sent)
    }

    /// How long until the next cover cell is due (`None` without cover traffic).
    pub(crate) fn until_cover(&self) -> Option<Duration> {
        self.defences.cover.as_ref().map(|c| c.next.saturating_duration_since(Instant::now()))
    }
}

/// Sends the cover cell if one is due.
pub async fn send_due(client: &mut Client) -> Result<(), AppError> {
    let Some(cover) = client.defences.cover.as_mut() else { return Ok(()) };
    if Instant::now() < cover.next {
        return Ok(());
    }
    cover.next = Instant::now() + interval(cover.per_minute);
    let recv_id = cover.recv_id;
    let (mailbox, record) = {
        let txn = client.profile.store.txn();
        let m = profile::own_mailbox(&txn, &recv_id)?;
        let r = txn.get(Table::Meta, COVER_KEY)?.map(|raw| records::decode::<CoverMailbox>(&raw)).transpose()?;
        (m, r)
    };
    let (Some(m), Some(r)) = (mailbox, record) else { return Ok(()) };
    let sealed = envelope::seal(
        &EnvelopeKey::from_bytes(m.envelope_key),
        &SendId(m.send_id),
        BodyKind::Cover,
        b"",
        &mut rand::rng(),
    )?;
    let out = Outgoing {
        contact: [0; 16],
        message_key: Vec::new(),
        relay: m.relay.clone(),
        send_id: m.send_id,
        sender_seed: r.sender_seed,
        envelope: sealed.as_bytes().to_vec(),
    };
    client.send_envelope(&out).await?;
    if let Some(c) = client.defences.cover.as_mut() {
        c.sent += 1;
    }
    Ok(())
}
