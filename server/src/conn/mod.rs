//! One client connection: handshake, then a loop over frames in, wake-ups from the hub,
//! sends finishing on disk, the idle timer and shutdown.
//!
//! - [`handshake`]: TLS 1.3 and the WebSocket upgrade, within the handshake time-out.
//! - `coalesce`: read-ahead and write coalescing below TLS, with no memory held while idle.
//! - [`mailbox`]: create, secure, subscribe, ack, delete, and pushing deliveries.
//! - [`send`]: queueing envelopes.
//! - [`blob`]: blob upload and download.
//!
//! Requests are handled in order, except sends: each waits for the disk concurrently
//! (up to a limit), so one connection can keep many sends in flight while group commit
//! batches their syncs.

mod blob;
mod coalesce;
pub(crate) mod handshake;
mod mailbox;
mod send;

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand::RngCore;
use sotto_proto::limits::CELL_SIZE;
use sotto_proto::{ClientFrame, ErrorCode, Nonce, PublicKey, Push, RecvId, Request, Response, ServerFrame};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{sleep_until, timeout};
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::Limits;
use crate::hub::{Hub, Inbox};
use crate::metrics::Metrics;
use crate::ratelimit::TokenBucket;
use crate::store::{Quotas, Store};
use crate::ws::Incoming;

pub use handshake::WS_PATH;

type Ws = crate::ws::WsConn<handshake::Stream>;
type SendFuture = Pin<Box<dyn Future<Output = (u32, Response)> + Send>>;

/// Malformed frames in a row after which the connection is closed: a peer that sends
/// garbage this often is not a client that can recover.
pub const MAX_MALFORMED_IN_A_ROW: u32 = 8;

/// First pause before reading a subscribed queue again after the store failed to answer
/// (a shared store failing over); doubles up to [`MAX_REFILL_RETRY`]. Without a retry the
/// envelopes already queued would wait for the next wake-up, which may never come.
const FIRST_REFILL_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest pause between attempts to read a subscribed queue that the store failed on.
const MAX_REFILL_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Cells written before the connection waits for the socket to take them (64 KiB). The
/// cells of one event (a ranged blob read, a refill of deliveries) leave in writes this
/// large instead of one system call each, and a peer that stops reading holds at most
/// this much of the relay's memory in buffers (TLS takes each cell whole, unlimited).
const CELLS_PER_FLUSH: usize = 4;

/// What every connection shares.
pub(crate) struct Shared<S> {
    pub store: Arc<S>,
    pub limits: Limits,
    pub clock: Arc<dyn Clock>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub next_conn: AtomicU64,
}

/// Serves one accepted TCP connection to its end.
pub(crate) async fn serve<S: Store>(
    tcp: TcpStream,
    tls: TlsAcceptor,
    shared: Arc<Shared<S>>,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let ws = match timeout(shared.limits.handshake_timeout, handshake::accept(tcp, tls)).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(())) | Err(_) => {
            Metrics::inc(&shared.metrics.handshakes_failed);
            return;
        }
    };
    Metrics::inc(&shared.metrics.connections_accepted);
    let conn = Connection::new(shared);
    conn.run(ws, shutdown).await;
}

/// A subscription held on this connection.
struct Subscription {
    owner_key: PublicKey,
    /// The highest sequence number pushed so far.
    cursor: Option<u64>,
    /// Pushed and not yet acknowledged.
    inflight: BTreeSet<u64>,
}

/// Why the loop stops.
struct Closed;

struct Connection<S> {
    shared: Arc<Shared<S>>,
    id: u64,
    nonce: Nonce,
    inbox: Arc<Inbox>,
    subs: HashMap<RecvId, Subscription>,
    bucket: TokenBucket,
    sends: FuturesUnordered<SendFuture>,
    malformed_in_a_row: u32,
    /// Subscribed mailboxes whose last queue read failed in the store, read again at
    /// `retry_at`; `retry_pause` is the current back-off.
    retry: BTreeSet<RecvId>,
    retry_at: tokio::time::Instant,
    retry_pause: std::time::Duration,
    /// Cells written since the last flush.
    unflushed: usize,
}

impl<S: Store> Connection<S> {
    fn new(shared: Arc<Shared<S>>) -> Self {
        let mut nonce = [0u8; 32];
        rand::rng().fill_bytes(&mut nonce);
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let bucket = TokenBucket::new(shared.limits.frames_per_second, shared.limits.frame_burst, Instant::now());
        Self {
            shared,
            id,
            nonce: Nonce(nonce),
            inbox: Arc::new(Inbox::default()),
            subs: HashMap::new(),
            bucket,
            sends: FuturesUnordered::new(),
            malformed_in_a_row: 0,
            retry: BTreeSet::new(),
            retry_at: tokio::time::Instant::now(),
            retry_pause: FIRST_REFILL_RETRY,
            unflushed: 0,
        }
    }

    async fn run(mut self, mut ws: Ws, mut shutdown: watch::Receiver<bool>) {
        let idle = self.shared.limits.idle_timeout;
        let mut deadline = tokio::time::Instant::now() + idle;
        tracing::debug!("connection opened");
        let mut result = self.write(&mut ws, ServerFrame::Hello { nonce: self.nonce }).await;
        if result.is_ok() {
            result = self.flush(&mut ws).await;
        }
        while result.is_ok() {
            let room = self.sends.len() < self.shared.limits.max_inflight_sends;
            result = tokio::select! {
                msg = ws.next(), if room => match msg {
                    Ok(msg) => {
                        deadline = tokio::time::Instant::now() + idle;
                        self.on_message(&mut ws, msg).await
                    }
                    Err(_) => Err(Closed),
                },
                Some((corr, response)) = self.sends.next(), if !self.sends.is_empty() => {
                    // A send finishing on disk is activity too: a slow disk must not look
                    // like an idle peer.
                    deadline = tokio::time::Instant::now() + idle;
                    self.respond(&mut ws, corr, response).await
                }
                () = self.inbox.notified() => self.on_hub(&mut ws).await,
                () = sleep_until(self.retry_at), if !self.retry.is_empty() => self.retry_refills(&mut ws).await,
                () = sleep_until(deadline) => Err(Closed),
                _ = shutdown.changed() => Err(Closed),
            };
            if result.is_ok() {
                // What this event wrote leaves now: cells are batched only within one
                // event (a ranged read, a refill), never held back waiting for another.
                result = self.flush(&mut ws).await;
            }
        }
        for recv_id in self.subs.keys() {
            self.shared.hub.unsubscribe(recv_id, self.id);
        }
        tracing::debug!(subscriptions = self.subs.len(), sends_in_flight = self.sends.len(), "connection closed");
        // Best effort: the peer may already be gone.
        let _ = timeout(std::time::Duration::from_secs(1), ws.close()).await;
    }

    async fn on_message(&mut self, ws: &mut Ws, msg: Incoming) -> Result<(), Closed> {
        let cell = match msg {
            Incoming::Binary(b) => b,
            Incoming::Close => return Err(Closed),
            Incoming::Ping(payload) => {
                return match timeout(self.shared.limits.idle_timeout, ws.send_pong(&payload)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) | Err(_) => Err(Closed),
                };
            }
            Incoming::Pong => return Ok(()),
            Incoming::Text => return self.malformed(ws, 0, ErrorCode::CellSize).await,
        };
        Metrics::inc(&self.shared.metrics.frames_in);
        // Every frame costs a token, parseable or not, so garbage cannot be used to make
        // the relay answer faster than the rate limit.
        if !self.bucket.take(Instant::now()) {
            Metrics::inc(&self.shared.metrics.rate_limited);
            return self.respond(ws, corr_of(&cell), Response::Error(ErrorCode::RateLimited)).await;
        }
        let frame = match ClientFrame::from_cell(&cell) {
            Ok(f) => f,
            Err(e) => {
                return self.malformed(ws, corr_of(&cell), ErrorCode::from(&e)).await;
            }
        };
        self.malformed_in_a_row = 0;
        self.dispatch(ws, frame).await
    }

    async fn malformed(&mut self, ws: &mut Ws, corr: u32, code: ErrorCode) -> Result<(), Closed> {
        self.malformed_in_a_row += 1;
        self.respond(ws, corr, Response::Error(code)).await?;
        if self.malformed_in_a_row >= MAX_MALFORMED_IN_A_ROW {
            return Err(Closed);
        }
        Ok(())
    }

    async fn dispatch(&mut self, ws: &mut Ws, frame: ClientFrame) -> Result<(), Closed> {
        let ClientFrame { corr, request } = frame;
        tracing::trace!(kind = kind(&request), "request");
        let response = match request {
            Request::Ping => Response::Pong,
            Request::CreateMailbox { .. } => self.create_mailbox(&request).await,
            Request::Secure { .. } => self.secure(&request).await,
            Request::Send { .. } => match self.send(corr, request).await {
                Some(r) => r,
                None => return Ok(()),
            },
            Request::Subscribe { recv_id, .. } => {
                let response = self.subscribe(&request).await;
                self.respond(ws, corr, response).await?;
                return self.refill(ws, &recv_id).await;
            }
            Request::Ack { recv_id, .. } => {
                let response = self.ack(&request).await;
                self.respond(ws, corr, response).await?;
                return self.refill(ws, &recv_id).await;
            }
            Request::DeleteMailbox { .. } => self.delete_mailbox(&request).await,
            Request::BlobCreate { size } => self.blob_create(size).await,
            Request::BlobPut { write_id, offset, answer, data } => match self.blob_put(write_id, offset, data).await {
                Response::BlobStatus { received, size } if !answer && received < size => return Ok(()),
                r => r,
            },
            Request::BlobStatus { write_id } => self.blob_status(write_id).await,
            Request::BlobGet { read_id, offset, count } => {
                return self.blob_get(ws, corr, read_id, offset, count).await;
            }
        };
        self.respond(ws, corr, response).await
    }

    async fn on_hub(&mut self, ws: &mut Ws) -> Result<(), Closed> {
        let events = self.inbox.take();
        for recv_id in events.ended {
            if self.subs.remove(&recv_id).is_some() {
                self.write(ws, ServerFrame::Push(Push::Unsubscribed { recv_id })).await?;
            }
        }
        for recv_id in events.wakes {
            self.refill(ws, &recv_id).await?;
        }
        Ok(())
    }

    /// Reads again every queue whose last read failed; those failing again wait longer.
    async fn retry_refills(&mut self, ws: &mut Ws) -> Result<(), Closed> {
        let due = std::mem::take(&mut self.retry);
        for recv_id in due {
            self.refill(ws, &recv_id).await?;
        }
        self.retry_pause =
            if self.retry.is_empty() { FIRST_REFILL_RETRY } else { (self.retry_pause * 2).min(MAX_REFILL_RETRY) };
        Ok(())
    }

    async fn respond(&mut self, ws: &mut Ws, corr: u32, response: Response) -> Result<(), Closed> {
        if matches!(response, Response::Error(_)) {
            Metrics::inc(&self.shared.metrics.errors_sent);
        }
        self.write(ws, ServerFrame::Response { corr, response }).await
    }

    /// Sends the cells written so far. A peer that stops reading for the idle time-out
    /// is dropped.
    pub(super) async fn flush(&mut self, ws: &mut Ws) -> Result<(), Closed> {
        if self.unflushed == 0 {
            // Only cells are written unflushed; nothing waits.
            return Ok(());
        }
        self.unflushed = 0;
        match timeout(self.shared.limits.idle_timeout, ws.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Closed),
        }
    }

    /// Writes one cell, as its own TLS record; it leaves at the latest when the event
    /// being handled ends ([`Self::flush`]). A peer that stops reading for the idle
    /// time-out is dropped.
    async fn write(&mut self, ws: &mut Ws, frame: ServerFrame) -> Result<(), Closed> {
        let cell = frame.to_cell();
        debug_assert_eq!(cell.len(), CELL_SIZE);
        match timeout(self.shared.limits.idle_timeout, ws.send_binary(&cell)).await {
            Ok(Ok(())) => Metrics::inc(&self.shared.metrics.frames_out),
            Ok(Err(_)) | Err(_) => return Err(Closed),
        }
        self.unflushed += 1;
        if self.unflushed >= CELLS_PER_FLUSH {
            return self.flush(ws).await;
        }
        Ok(())
    }

    fn today(&self) -> u32 {
        self.shared.clock.today()
    }

    fn quotas(&self) -> Quotas {
        let l = &self.shared.limits;
        Quotas {
            max_queue_len: l.max_queue_len,
            max_queue_bytes: l.max_queue_bytes,
            max_blob_size: l.max_blob_size,
            blob_quota_bytes: l.blob_quota_bytes,
        }
    }
}

/// The correlation id of a cell, if its first four body bytes are there: an error for a
/// frame that did not parse still names the request it answers. Read from the raw bytes
/// after the header, so even a cell with bad padding gets its id back.
fn corr_of(cell: &[u8]) -> u32 {
    let start = sotto_proto::limits::CELL_HEADER_LEN;
    cell.get(start..start + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_be_bytes)
}

/// The request's name, for trace logs (never its contents).
fn kind(request: &Request) -> &'static str {
    match request {
        Request::Ping => "ping",
        Request::CreateMailbox { .. } => "create_mailbox",
        Request::Secure { .. } => "secure",
        Request::Send { .. } => "send",
        Request::Subscribe { .. } => "subscribe",
        Request::Ack { .. } => "ack",
        Request::DeleteMailbox { .. } => "delete_mailbox",
        Request::BlobCreate { .. } => "blob_create",
        Request::BlobPut { .. } => "blob_put",
        Request::BlobStatus { .. } => "blob_status",
        Request::BlobGet { .. } => "blob_get",
    }
}

/// Verifies `signature` by `key` over `request` as signed on this connection.
fn verify(key: &PublicKey, nonce: &Nonce, request: &Request, signature: &sotto_proto::Signature) -> bool {
    let Some(payload) = sotto_proto::auth::signed_payload(nonce, request) else { return false };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&key.0) else { return false };
    if vk.is_weak() {
        return false;
    }
    vk.verify_strict(&payload, &ed25519_dalek::Signature::from_bytes(&signature.0)).is_ok()
}

/// The response for a store failure, logged as a count-free category only.
fn store_error(e: &crate::store::StoreError) -> Response {
    if matches!(e, crate::store::StoreError::Engine(_) | crate::store::StoreError::Corrupt) {
        tracing::error!(error = %e, "store failure");
    }
    Response::Error(e.code())
}
