//! Connections to every relay the profile uses, kept up with backoff and jitter.
//!
//! Each contact's mailbox may live on a different relay, so the client holds one link
//! per relay address, made on first use. Events from all links arrive on one channel,
//! tagged with the relay they came from; a link that drops is reported so the caller
//! can reconnect (after [`Backoff::next_delay`]) and subscribe again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sotto_proto::RelayAddress;
use tokio::sync::mpsc;

use crate::relay::{ConnectOptions, Event, LinkError, RelayLink};

/// First wait before reconnecting to a relay that dropped or could not be reached.
pub const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest wait between reconnection attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Events from all relays, merged.
pub const EVENT_DEPTH: usize = 1024;

/// What arrives from the pool.
#[derive(Debug)]
pub enum PoolEvent {
    /// Something a relay pushed.
    Relay { relay: String, event: Event },
    /// The link to this relay closed. `link` says which link it was: a later one may be
    /// up already.
    Down { relay: String, link: u64 },
}

/// Exponential backoff with full jitter, per relay: retries of many clients spread out
/// instead of arriving together, and a blocked relay is not hammered.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new() -> Self {
        Self { attempt: 0 }
    }

    /// The delay before the next attempt: uniform in [0, min(max, start * 2^attempt)].
    pub fn next_delay(&mut self) -> Duration {
        let cap = BACKOFF_START.saturating_mul(1u32 << self.attempt.min(16)).min(BACKOFF_MAX);
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Links by relay address.
pub struct RelayPool {
    options: ConnectOptions,
    links: HashMap<String, (u64, Arc<RelayLink>)>,
    next_link: u64,
    backoff: HashMap<String, Backoff>,
    events_tx: mpsc::Sender<PoolEvent>,
    events_rx: mpsc::Receiver<PoolEvent>,
}

impl RelayPool {
    /// An empty pool connecting with `options`.
    pub fn new(options: ConnectOptions) -> Self {
        let (events_tx, events_rx) = mpsc::channel(EVENT_DEPTH);
        Self { options, links: HashMap::new(), next_link: 0, backoff: HashMap::new(), events_tx, events_rx }
    }

    /// The link to `relay`, connecting if there is none.
    pub async fn link(&mut self, relay: &str) -> Result<&RelayLink, LinkError> {
        if self.links.get(relay).is_some_and(|(_, l)| l.is_closed()) {
            self.links.remove(relay);
        }
        if !self.links.contains_key(relay) {
            let address: RelayAddress = relay.parse().map_err(|e| LinkError::Unreachable(format!("{e}")))?;
            let mut link = RelayLink::connect(&address, &self.options).await?;
            let mut events = link.take_events();
            let tx = self.events_tx.clone();
            let name = relay.to_string();
            let id = self.next_link;
            self.next_link += 1;
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if tx.send(PoolEvent::Relay { relay: name.clone(), event }).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(PoolEvent::Down { relay: name, link: id }).await;
            });
            self.backoff.entry(relay.to_string()).or_default().reset();
            self.links.insert(relay.to_string(), (id, Arc::new(link)));
        }
        self.links.get(relay).map(|(_, l)| &**l).ok_or(LinkError::Closed)
    }

    /// Like [`Self::link`], as a handle a task can hold (a file transfer running
    /// alongside everything else on the same connection).
    pub async fn shared(&mut self, relay: &str) -> Result<Arc<RelayLink>, LinkError> {
        self.link(relay).await?;
        self.links.get(relay).map(|(_, l)| l.clone()).ok_or(LinkError::Closed)
    }

    /// Whether `link` is the current link to `relay` (a `Down` for an older one is stale).
    pub fn is_current(&self, relay: &str, link: u64) -> bool {
        self.links.get(relay).is_some_and(|(id, _)| *id == link)
    }

    /// Whether a link to `relay` is open.
    pub fn is_connected(&self, relay: &str) -> bool {
        self.links.contains_key(relay)
    }

    /// Forgets a link that failed, so the next use reconnects; returns how long to wait
    /// before trying.
    pub fn drop_link(&mut self, relay: &str) -> Duration {
        self.links.remove(relay);
        self.backoff.entry(relay.to_string()).or_default().next_delay()
    }

    /// The next event from any relay.
    pub async fn next_event(&mut self) -> Option<PoolEvent> {
        self.events_rx.recv().await
    }
}
