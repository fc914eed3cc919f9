//! The client application: a profile, links to relays, and the protocol between them.
//!
//! - [`profile`]: the profile and typed access to its records ([`records`]).
//! - [`pool`]: links to every relay in use, with backoff and jitter.
//! - `outgoing`: invites, accepting them, sending, and the outbox.
//! - `invite_blob`: short invite links, whose invite waits sealed in a blob on the relay.
//! - `incoming`: deliveries: open, decrypt, commit with the ratchet, then acknowledge.
//! - `attachments`, `downloads`: files: upload and send, receive and save.
//! - `safety`: safety numbers and accepting a changed identity key.
//! - [`group`]: private groups: membership log, fan-out, introductions.
//! - `flush`: sending the outbox, pipelined.
//! - [`error`]: the application error type, [`AppError`].
//!
//! All libsignal work runs on one thread (its stores are `?Send`): run a [`Client`] on a
//! current-thread runtime or inside a `LocalSet`.

mod attachments;
mod compact_bytes;
pub mod defences;
mod downloads;
pub mod error;
mod flush;
pub mod group;
mod incoming;
mod invite_blob;
mod outgoing;
pub mod pool;
pub mod profile;
pub mod records;
mod safety;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use libsignal_protocol::{DeviceId, ProtocolAddress};
use sotto_proto::{RecvId, RelayAddress, Request, Response};
use tokio::time::Instant;

pub use self::error::AppError;
pub use self::group::{FanOutReport, FileState, GroupError, GroupEvent, MemberView};
pub use self::incoming::Notice;
pub use self::outgoing::InviteForm;
use self::pool::{PoolEvent, RelayPool};
use self::profile::Profile;
use self::records::ContactId;
pub use self::safety::SafetyNumber;
use crate::relay::{ConnectOptions, sign_request};
use crate::store::KdfParams;

/// The libsignal device id of every Sotto profile: one device per profile.
pub const DEVICE_ID: DeviceId = match DeviceId::new(1) {
    Ok(d) => d,
    // Evaluated at compile time: 1 is always a valid device id.
    Err(_) => panic!("device id 1 is valid"),
};

/// An open profile with its relay links.
pub struct Client {
    pub profile: Profile,
    pool: RelayPool,
    /// Relays that dropped, and when to try them again.
    reconnect: HashMap<String, Instant>,
    /// Timers, receipts, rotation and cover traffic (see [`defences`]).
    defences: defences::Runtime,
    /// Where received files go, and size limits.
    files: crate::files::FileSettings,
    /// Downloads running in this process.
    transfers: downloads::Transfers,
}

impl Client {
    /// Creates a profile in `dir` using `relay` for its mailboxes.
    pub fn init(
        dir: &Path,
        passphrase: &[u8],
        relay: &RelayAddress,
        params: KdfParams,
        options: ConnectOptions,
    ) -> Result<Self, AppError> {
        Ok(Self {
            profile: Profile::create(dir, passphrase, relay, params)?,
            pool: RelayPool::new(options),
            reconnect: HashMap::new(),
            defences: defences::Runtime::default(),
            files: crate::files::FileSettings::new(dir.join(DOWNLOADS_DIR)),
            transfers: downloads::Transfers::new(),
        })
    }

    /// Opens the profile in `dir`.
    pub fn open(dir: &Path, passphrase: &[u8], options: ConnectOptions) -> Result<Self, AppError> {
        let mut client = Self {
            profile: Profile::open(dir, passphrase)?,
            pool: RelayPool::new(options),
            reconnect: HashMap::new(),
            defences: defences::Runtime::default(),
            files: crate::files::FileSettings::new(dir.join(DOWNLOADS_DIR)),
            transfers: downloads::Transfers::new(),
        };
        // What expired while the profile was closed goes before anything else is read.
        client.expire_now()?;
        Ok(client)
    }

    /// Sets the name this profile suggests to people it invites.
    pub fn set_my_name(&mut self, name: &str) -> Result<(), AppError> {
        profile::check_name(name)?;
        let mut txn = self.profile.store.txn();
        let mut s = profile::settings(&txn)?;
        s.name = name.to_string();
        profile::put_settings(&mut txn, &s)?;
        txn.commit()?;
        Ok(())
    }

    /// Names of all contacts, sorted.
    pub fn contact_names(&mut self) -> Result<Vec<String>, AppError> {
        let txn = self.profile.store.txn();
        Ok(profile::contacts(&txn)?.into_iter().map(|c| c.name.clone()).collect())
    }

    /// The conversation with `name`, in order.
    pub fn history(&mut self, name: &str) -> Result<Vec<records::Message>, AppError> {
        let txn = self.profile.store.txn();
        let c = profile::contact_by_name(&txn, name)?;
        profile::history(&txn, &c.id)
    }

    /// Subscribes to every mailbox this profile owns, and locks those waiting to be
    /// locked. A relay that cannot be reached is skipped (and retried on the next call).
    pub async fn subscribe_all(&mut self) -> Result<Vec<(String, AppError)>, AppError> {
        self.subscribe_on(None).await
    }

    /// Like [`Self::subscribe_all`], for the mailboxes on one relay only (or all).
    async fn subscribe_on(&mut self, relay: Option<&str>) -> Result<Vec<(String, AppError)>, AppError> {
        let mailboxes = {
            let txn = self.profile.store.txn();
            let mut all = profile::own_mailboxes(&txn)?;
            all.retain(|m| relay.is_none_or(|r| m.relay == r));
            all
        };
        let mut failures = Vec::new();
        for m in mailboxes {
            if let Err(e) = self.subscribe_one(&m).await {
                failures.push((m.relay.clone(), e));
            }
        }
        Ok(failures)
    }

    async fn subscribe_one(&mut self, m: &records::OwnMailbox) -> Result<(), AppError> {
        let owner = SigningKey::from_bytes(&m.owner_seed);
        let recv_id = RecvId(m.recv_id);
        if let Some(sender) = m.secure_pending {
            let req = Request::Secure { recv_id, sender_key: sotto_proto::PublicKey(sender), signature: NO_SIG };
            match self.owner_request(&m.relay, &owner, req).await {
                Ok(_) | Err(AppError::Refused(sotto_proto::ErrorCode::AlreadySecured)) => {
                    let mut txn = self.profile.store.txn();
                    if let Some(mut fresh) = profile::own_mailbox(&txn, &m.recv_id)? {
                        fresh.secure_pending = None;
                        profile::put_own_mailbox(&mut txn, &fresh)?;
                        txn.commit()?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        self.owner_request(&m.relay, &owner, Request::Subscribe { recv_id, signature: NO_SIG }).await?;
        self.defences.subscribed_ms.insert(m.recv_id, self.profile.store.clock().now_ms());
        Ok(())
    }

    /// Sends an owner-signed request on the link to `relay`.
    async fn owner_request(&mut self, relay: &str, key: &SigningKey, mut req: Request) -> Result<Response, AppError> {
        let link = match self.pool.link(relay).await {
            Ok(l) => l,
            Err(e) => {
                self.pool.drop_link(relay);
                return Err(e.into());
            }
        };
        sign_request(key, &link.nonce(), &mut req);
        match link.request(req).await {
            Ok(Response::Error(code)) => Err(AppError::Refused(code)),
            Ok(r) => Ok(r),
            Err(e) => {
                self.pool.drop_link(relay);
                Err(e.into())
            }
        }
    }

    /// Waits for the next event from any relay, up to `wait`. Relays that went down are
    /// reconnected (after backoff) and resubscribed; deliveries are processed and
    /// acknowledged; what the user should see is returned.
    pub async fn poll(&mut self, wait: Duration) -> Result<Vec<Notice>, AppError> {
        let mut notices = self.reconnect_due().await;
        notices.extend(self.tick_if_due().await);
        notices.extend(self.start_downloads().await);
        let now = Instant::now();
        let next_due = self.reconnect.values().copied().chain(self.next_download_scan()).min();
        let next_due = next_due.map_or(wait, |t| t.saturating_duration_since(now));
        let next_due = self.until_cover().map_or(next_due, |c| next_due.min(c));
        // Downloads run in their own tasks; one ending is an event like a delivery.
        let event = tokio::select! {
            e = tokio::time::timeout(wait.min(next_due), self.pool.next_event()) => e,
            Some(done) = self.transfers.next_done() => {
                notices.extend(self.download_finished(done));
                return Ok(notices);
            }
        };
        let event = match event {
            Ok(Some(e)) => e,
            Ok(None) | Err(_) => return Ok(notices),
        };
        match event {
            PoolEvent::Relay { relay, event } => notices.extend(self.on_relay_event(&relay, event).await?),
            // A drop of an older link, when a newer one is up, changes nothing.
            PoolEvent::Down { relay, link }
                if !self.pool.is_connected(&relay) || self.pool.is_current(&relay, link) =>
            {
                // Not waited for here: the caller keeps polling (and other commands keep
                // running) while the backoff runs out.
                let delay = self.pool.drop_link(&relay);
                self.reconnect.insert(relay, Instant::now() + delay);
            }
            PoolEvent::Down { .. } => {}
        }
        Ok(notices)
    }

    /// Reconnects and resubscribes relays whose backoff ran out; a relay still down is
    /// scheduled again with a longer backoff.
    async fn reconnect_due(&mut self) -> Vec<Notice> {
        let now = Instant::now();
        let due: Vec<String> = self.reconnect.iter().filter(|(_, t)| **t <= now).map(|(r, _)| r.clone()).collect();
        let mut notices = Vec::new();
        for relay in due {
            self.reconnect.remove(&relay);
            match self.subscribe_on(Some(&relay)).await {
                Ok(failures) if failures.is_empty() => {
                    let _ = self.flush_outbox().await;
                }
                Ok(failures) => {
                    notices.extend(failures.into_iter().map(|(_, e)| Notice::RelayTrouble(e.to_string())));
                    let delay = self.pool.drop_link(&relay);
                    self.reconnect.insert(relay, Instant::now() + delay);
                }
                Err(e) => notices.push(Notice::RelayTrouble(e.to_string())),
            }
        }
        notices
    }

    /// The link to `relay`, shared with a task; a link that cannot be made is dropped
    /// so the next use tries afresh.
    async fn shared_link(&mut self, relay: &str) -> Result<std::sync::Arc<crate::relay::RelayLink>, AppError> {
        match self.pool.shared(relay).await {
            Ok(l) => Ok(l),
            Err(e) => {
                self.pool.drop_link(relay);
                Err(e.into())
            }
        }
    }

    /// Whether the link to `relay` is up.
    pub fn relay_connected(&self, relay: &str) -> bool {
        self.pool.is_connected(relay)
    }
}

/// Received files go here unless the profile is told otherwise
/// ([`Client::set_file_settings`]): a folder in the profile directory.
pub const DOWNLOADS_DIR: &str = "downloads";

const NO_SIG: sotto_proto::Signature = sotto_proto::Signature([0; 64]);

/// The libsignal address of a contact: a random local id, never a name.
fn address_of(id: &ContactId) -> ProtocolAddress {
    ProtocolAddress::new(hex::encode(id), DEVICE_ID)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}
