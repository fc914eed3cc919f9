//! Sending the outbox, pipelined.
//!
//! Each outbox entry is a sealed envelope committed with the ratchet state that made it.
//! Entries for one relay are sent on its link without waiting for each answer, at most
//! [`MAX_IN_FLIGHT`] at a time and in outbox order (the relay queues a connection's sends
//! in the order they arrive and syncs them to disk together). Then every entry the relay
//! stored, or refused for good, leaves the outbox in one transaction. An entry whose answer
//! did not come (link down, time-out) stays, and the next flush sends the same bytes again.

use std::sync::atomic::{AtomicU32, Ordering};

use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use sotto_proto::{Envelope, ErrorCode, Request, Response, SendId};

use super::Client;
use super::error::AppError;
use super::outgoing::FlushReport;
use super::profile;
use super::records::{Delivery, Outgoing};
use crate::relay::{LinkError, sign_request};

/// Most sends in flight on one link: the relay's default limit per connection
/// (`DEFAULT_MAX_INFLIGHT_SENDS`), beyond which it would make us wait anyway.
pub const MAX_IN_FLIGHT: usize = 256;

/// Orders outbox entries written within one millisecond by this process.
static OUTBOX_COUNTER: AtomicU32 = AtomicU32::new(0);

/// The next value of the per-process outbox counter.
pub(super) fn next_outbox_counter() -> u32 {
    OUTBOX_COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// What became of one entry.
enum Outcome {
    Stored,
    Failed,
    /// Still queued; the error, once per failure (not repeated for every entry).
    Waiting(Option<LinkError>),
}

impl Client {
    pub(super) async fn flush_pipelined(&mut self) -> Result<FlushReport, AppError> {
        let pending = {
            let txn = self.profile.store.txn();
            profile::outbox(&txn)?
        };
        let mut report = FlushReport::default();
        if pending.is_empty() {
            return Ok(report);
        }
        // Per relay, in outbox order.
        let mut relays: Vec<String> = Vec::new();
        for (_, out) in &pending {
            if !relays.contains(&out.relay) {
                relays.push(out.relay.clone());
            }
        }
        let mut done: Vec<(&[u8; 16], &Outgoing, Outcome)> = Vec::new();
        for relay in relays {
            let entries: Vec<&([u8; 16], Outgoing)> = pending.iter().filter(|(_, o)| o.relay == relay).collect();
            let outcomes = self.send_all(&relay, &entries).await?;
            done.extend(entries.iter().zip(outcomes).map(|((id, out), r)| (id, out, r)));
        }
        let mut txn = self.profile.store.txn();
        for (id, out, outcome) in done {
            let delivery = match outcome {
                Outcome::Stored => Delivery::Stored,
                Outcome::Failed => Delivery::Failed,
                Outcome::Waiting(e) => {
                    report.waiting += 1;
                    if e.is_some() || report.last_error.is_none() {
                        report.last_error = e.or(Some(LinkError::Closed));
                    }
                    continue;
                }
            };
            txn.remove(crate::store::Table::Outbox, id);
            // A receipt may have come first (after a resend); "delivered" stays.
            if !out.message_key.is_empty()
                && let Some(mut m) = profile::message(&txn, &out.message_key)?
                && m.delivery != Delivery::Delivered
            {
                m.delivery = delivery;
                profile::put_message(&mut txn, &out.message_key, &m)?;
            }
            match delivery {
                Delivery::Failed => report.failed += 1,
                _ => report.sent += 1,
            }
        }
        txn.commit()?;
        Ok(report)
    }

    /// Sends `entries` on the link to `relay`, pipelined; one outcome per entry, in order.
    async fn send_all(&mut self, relay: &str, entries: &[&([u8; 16], Outgoing)]) -> Result<Vec<Outcome>, AppError> {
        let mut requests = Vec::with_capacity(entries.len());
        for (_, out) in entries {
            let envelope =
                Envelope::from_slice(&out.envelope).map_err(|_| crate::store::StoreError::CorruptRecord("outbox"))?;
            let seed = zeroize::Zeroizing::new(out.sender_seed);
            requests.push((Request::Send { send_id: SendId(out.send_id), envelope, signature: None }, seed));
        }
        let link = match self.pool.link(relay).await {
            Ok(l) => l,
            Err(e) => {
                self.pool.drop_link(relay);
                let mut first = Some(e);
                return Ok(entries.iter().map(|_| Outcome::Waiting(first.take())).collect());
            }
        };
        let nonce = link.nonce();
        let results: Vec<Result<Response, LinkError>> = futures_util::stream::iter(requests)
            .map(|(mut req, seed)| {
                sign_request(&SigningKey::from_bytes(&seed), &nonce, &mut req);
                link.request(req)
            })
            .buffered(MAX_IN_FLIGHT)
            .collect()
            .await;
        let mut link_failed = false;
        let outcomes = results
            .into_iter()
            .map(|r| match r {
                Ok(Response::Ok) => Outcome::Stored,
                Ok(Response::Error(ErrorCode::NoMailbox | ErrorCode::Auth)) => Outcome::Failed,
                Ok(Response::Error(code)) => Outcome::Waiting(Some(LinkError::Refused(code))),
                Ok(_) => Outcome::Waiting(Some(LinkError::Protocol("unexpected answer to send".into()))),
                Err(e) => {
                    link_failed = true;
                    Outcome::Waiting(Some(e))
                }
            })
            .collect();
        if link_failed {
            self.pool.drop_link(relay);
        }
        Ok(outcomes)
    }
}
