//! Mailbox commands: create, secure, subscribe, ack, delete; and pushing deliveries.

use rand::RngCore;
use sotto_proto::{ErrorCode, Push, RecvId, Request, Response, SendId, ServerFrame};

use super::{Closed, Connection, Subscription, Ws, store_error, verify};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// Times a fresh id pair is drawn again after a collision (with 192-bit random ids a
/// collision means a broken random source; give up rather than loop).
const ID_ATTEMPTS: usize = 3;

impl<S: Store> Connection<S> {
    pub(super) async fn create_mailbox(&mut self, request: &Request) -> Response {
        let Request::CreateMailbox { owner_key, signature } = request else {
            return Response::Error(ErrorCode::Malformed);
        };
        if !verify(owner_key, &self.nonce, request, signature) {
            return Response::Error(ErrorCode::Auth);
        }
        let expires = self.today().saturating_add(self.shared.limits.mailbox_ttl_days);
        for _ in 0..ID_ATTEMPTS {
            let (mut r, mut s) = ([0u8; 24], [0u8; 24]);
            rand::rng().fill_bytes(&mut r);
            rand::rng().fill_bytes(&mut s);
            let (recv_id, send_id) = (RecvId(r), SendId(s));
            match self.shared.store.create_mailbox(recv_id, send_id, *owner_key, expires).await {
                Ok(()) => {
                    Metrics::inc(&self.shared.metrics.mailboxes_created);
                    return Response::MailboxCreated { recv_id, send_id };
                }
                Err(StoreError::Duplicate) => continue,
                Err(e) => return store_error(&e),
            }
        }
        Response::Error(ErrorCode::Internal)
    }

    pub(super) async fn secure(&mut self, request: &Request) -> Response {
        let Request::Secure { recv_id, sender_key, signature } = request else {
            return Response::Error(ErrorCode::Malformed);
        };
        if let Err(r) = self.check_owner(recv_id, request, signature).await {
            return r;
        }
        // A key no signature can verify under would lock the mailbox for good.
        if !usable_key(sender_key) {
            return Response::Error(ErrorCode::Auth);
        }
        match self.shared.store.secure(*recv_id, *sender_key).await {
            Ok(()) => Response::Ok,
            Err(e) => store_error(&e),
        }
    }

    pub(super) async fn subscribe(&mut self, request: &Request) -> Response {
        let Request::Subscribe { recv_id, signature } = request else { return Response::Error(ErrorCode::Malformed) };
        let owner_key = match self.check_owner(recv_id, request, signature).await {
            Ok(k) => k,
            Err(r) => return r,
        };
        if !self.subs.contains_key(recv_id) && self.subs.len() >= self.shared.limits.max_subscriptions {
            return Response::Error(ErrorCode::Busy);
        }
        let expires = self.today().saturating_add(self.shared.limits.mailbox_ttl_days);
        if let Err(e) = self.shared.store.touch(*recv_id, expires).await {
            return store_error(&e);
        }
        self.shared.hub.subscribe(*recv_id, self.id, &self.inbox);
        // A fresh subscription starts from the head of the queue: whatever was pushed
        // before and not acknowledged is delivered again (at least once).
        self.subs.insert(*recv_id, Subscription { owner_key, cursor: None, inflight: Default::default() });
        Response::Ok
    }

    pub(super) async fn ack(&mut self, request: &Request) -> Response {
        let Request::Ack { recv_id, seq, signature } = request else { return Response::Error(ErrorCode::Malformed) };
        // A subscription on this connection already holds the owner key: no store read.
        match self.subs.get(recv_id) {
            Some(sub) if !verify(&sub.owner_key, &self.nonce, request, signature) => {
                return Response::Error(ErrorCode::Auth);
            }
            Some(_) => {}
            None => {
                if let Err(r) = self.check_owner(recv_id, request, signature).await {
                    return r;
                }
            }
        }
        if let Some(sub) = self.subs.get_mut(recv_id) {
            sub.inflight.remove(seq);
        }
        match self.shared.store.ack(*recv_id, *seq).await {
            Ok(()) => {
                Metrics::inc(&self.shared.metrics.envelopes_acked);
                Response::Ok
            }
            Err(e) => store_error(&e),
        }
    }

    pub(super) async fn delete_mailbox(&mut self, request: &Request) -> Response {
        let Request::DeleteMailbox { recv_id, signature } = request else {
            return Response::Error(ErrorCode::Malformed);
        };
        if let Err(r) = self.check_owner(recv_id, request, signature).await {
            return r;
        }
        self.shared.hub.end(recv_id, self.id);
        self.subs.remove(recv_id);
        match self.shared.store.delete_mailbox(*recv_id).await {
            Ok(()) => Response::Ok,
            Err(e) => store_error(&e),
        }
    }

    /// Checks an owner signature against the stored owner key; returns that key.
    async fn check_owner(
        &mut self,
        recv_id: &RecvId,
        request: &Request,
        signature: &sotto_proto::Signature,
    ) -> Result<sotto_proto::PublicKey, Response> {
        let mailbox = match self.shared.store.mailbox(*recv_id).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(Response::Error(ErrorCode::NoMailbox)),
            Err(e) => return Err(store_error(&e)),
        };
        if !verify(&mailbox.owner_key, &self.nonce, request, signature) {
            return Err(Response::Error(ErrorCode::Auth));
        }
        Ok(mailbox.owner_key)
    }

    /// Pushes queued envelopes after the subscription's cursor while its window has room.
    pub(super) async fn refill(&mut self, ws: &mut Ws, recv_id: &RecvId) -> Result<(), Closed> {
        let window = self.shared.limits.delivery_window;
        let Some(sub) = self.subs.get(recv_id) else { return Ok(()) };
        let room = window.saturating_sub(sub.inflight.len());
        if room == 0 {
            return Ok(());
        }
        let batch = match self.shared.store.pending(*recv_id, sub.cursor, room).await {
            Ok(b) => b,
            Err(e) => {
                store_error(&e);
                self.refill_later(*recv_id);
                return Ok(());
            }
        };
        for (seq, envelope) in batch {
            if let Some(sub) = self.subs.get_mut(recv_id) {
                sub.cursor = Some(seq);
                sub.inflight.insert(seq);
            }
            self.write(ws, ServerFrame::Push(Push::Deliver { recv_id: *recv_id, seq, envelope })).await?;
            Metrics::inc(&self.shared.metrics.envelopes_delivered);
        }
        Ok(())
    }

    /// Schedules another read of the mailbox's queue after the current back-off.
    fn refill_later(&mut self, recv_id: RecvId) {
        if self.retry.is_empty() {
            self.retry_at = tokio::time::Instant::now() + self.retry_pause;
        }
        self.retry.insert(recv_id);
    }
}

/// Whether signatures can ever verify under `key` (a valid point, not of small order).
fn usable_key(key: &sotto_proto::PublicKey) -> bool {
    ed25519_dalek::VerifyingKey::from_bytes(&key.0).is_ok_and(|k| !k.is_weak())
}
