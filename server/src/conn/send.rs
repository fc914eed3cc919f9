//! The send command: anyone with a send id may queue an envelope; once the mailbox is
//! secured, only the holder of its sender key.

use sotto_proto::{ErrorCode, Request, Response};

use super::{Connection, store_error, verify};
use crate::metrics::Metrics;
use crate::store::Store;

impl<S: Store> Connection<S> {
    /// Checks the send and starts it. Returns a response now if it was refused, or
    /// `None` when the send is waiting for the disk and will answer later.
    pub(super) async fn send(&mut self, corr: u32, request: Request) -> Option<Response> {
        let Request::Send { send_id, envelope, signature } = &request else {
            return Some(Response::Error(ErrorCode::Malformed));
        };
        let target = match self.shared.store.send_target(*send_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return Some(Response::Error(ErrorCode::NoMailbox)),
            Err(e) => return Some(store_error(&e)),
        };
        if let Some(sender_key) = &target.sender_key {
            let ok = signature.as_ref().is_some_and(|sig| verify(sender_key, &self.nonce, &request, sig));
            if !ok {
                return Some(Response::Error(ErrorCode::Auth));
            }
        }
        let quotas = self.quotas();
        let expires = self.today().saturating_add(self.shared.limits.envelope_ttl_days);
        let shared = self.shared.clone();
        let envelope = envelope.clone();
        let recv_id = target.recv_id;
        self.sends.push(Box::pin(async move {
            match shared.store.enqueue(recv_id, envelope, expires, quotas).await {
                Ok(_) => {
                    Metrics::inc(&shared.metrics.envelopes_stored);
                    // Only once durable: what a subscriber is woken for survives a crash.
                    shared.hub.wake(&recv_id);
                    (corr, Response::Ok)
                }
                Err(e) => (corr, store_error(&e)),
            }
        }));
        None
    }
}
