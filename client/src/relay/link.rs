//! One connection to one relay.
//!
//! A background task owns the WebSocket; callers send requests through a channel and
//! get each response matched by correlation id, so requests can be pipelined. Pushes
//! (deliveries) arrive as [`Event`]s. Every frame is one fixed-size cell, sent and
//! flushed on its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use sotto_proto::{ClientFrame, Host, Nonce, Push, RelayAddress, Request, Response, ServerFrame, Signature};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use super::LinkError;
use super::tls::client_config;

/// The HTTP path of the relay's WebSocket endpoint.
pub const WS_PATH: &str = "/v1";

/// Time allowed to connect, through TLS and the upgrade to the relay's hello.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for a response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How often an otherwise quiet link pings: well inside the relay's idle time-out
/// (300 s) and typical NAT time-outs, and rare enough to cost little (each ping and pong
/// is a full cell: 720 a day are about 24 MB).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(120);

/// Socket reads and writes below TLS are buffered: rustls asks the socket for 4 KiB at a
/// time, and cells queued together (a file's chunks) leave in a few large writes instead
/// of one system call each. Records stay one per cell: TLS makes them before the buffer.
const SOCKET_BUFFER: usize = 64 * 1024;

/// The most cells written before a flush, when more are queued.
const CELLS_PER_FLUSH: usize = 16;

/// The correlation id of keepalive pings; their pongs are dropped.
const KEEPALIVE_CORR: u32 = u32::MAX;

/// Cells queued to go out, and events queued for the application. A slow reader of
/// events slows the relay down instead of growing memory.
const CHANNEL_DEPTH: usize = 1024;

/// How to reach relays.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// A SOCKS5 proxy (e.g. Tor at 127.0.0.1:9050). The proxy resolves host names.
    pub proxy: Option<SocketAddr>,
    /// Time allowed to connect.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { proxy: None, connect_timeout: DEFAULT_CONNECT_TIMEOUT }
    }
}

/// Something the relay sent that was not the answer to a waiting request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A delivery or the end of a subscription.
    Push(Push),
    /// A response no request is waiting for (e.g. an error to an unparseable cell).
    Unmatched { corr: u32, response: Response },
}

/// Who waits for the responses to a correlation id: up to `left` more of them, an error
/// ending them early. The channel has room for all.
struct Waiter {
    tx: mpsc::Sender<Response>,
    left: usize,
}

type Pending = Arc<Mutex<HashMap<u32, Waiter>>>;

/// The responses to one request ([`RelayLink::request_many`]).
/// Dropping it stops waiting: later responses to it are passed on as unmatched.
pub struct Replies {
    corr: u32,
    rx: mpsc::Receiver<Response>,
    pending: Pending,
}

impl Replies {
    /// The next response; `Err(Timeout)` if none comes in time, `Err(Closed)` once the
    /// link is gone or every expected response has come.
    pub async fn next(&mut self) -> Result<Response, LinkError> {
        match timeout(REQUEST_TIMEOUT, self.rx.recv()).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(LinkError::Closed),
            Err(_) => Err(LinkError::Timeout),
        }
    }
}

impl Drop for Replies {
    fn drop(&mut self) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.corr);
    }
}

/// An open connection to a relay.
pub struct RelayLink {
    nonce: Nonce,
    out: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    events: mpsc::Receiver<Event>,
    next_corr: AtomicU32,
    task: JoinHandle<()>,
}

impl Drop for RelayLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RelayLink {
    /// Connects to the relay at `address`, checking its pin, and waits for its hello.
    pub async fn connect(address: &RelayAddress, options: &ConnectOptions) -> Result<Self, LinkError> {
        timeout(options.connect_timeout, Self::connect_inner(address, options)).await.map_err(|_| LinkError::Timeout)?
    }

    async fn connect_inner(address: &RelayAddress, options: &ConnectOptions) -> Result<Self, LinkError> {
        let host = address.host.to_connect_string();
        let tcp = match options.proxy {
            Some(proxy) => tokio_socks::tcp::Socks5Stream::connect(proxy, (host.as_str(), address.port))
                .await
                .map_err(|e| LinkError::Proxy(e.to_string()))?
                .into_inner(),
            None => TcpStream::connect((host.as_str(), address.port))
                .await
                .map_err(|e| LinkError::Unreachable(e.to_string()))?,
        };
        let _ = tcp.set_nodelay(true);
        let server_name = match &address.host {
            Host::Domain(d) => ServerName::try_from(d.clone()).map_err(|e| LinkError::Tls(e.to_string()))?,
            Host::Ipv4(a) => ServerName::IpAddress((*a).into()),
            Host::Ipv6(a) => ServerName::IpAddress((*a).into()),
        };
        let connector = TlsConnector::from(client_config(address.pin)?);
        let tcp = tokio::io::BufStream::with_capacity(SOCKET_BUFFER, SOCKET_BUFFER, tcp);
        let mut tls = connector.connect(server_name, tcp).await.map_err(|e| tls_error(&e))?;
        // rustls takes every write whole, so each cell's frame becomes exactly one record
        // even when the socket is slow (with a limit, a write meeting a part-full buffer
        // would be cut into two short records). The pump flushes after at most
        // CELLS_PER_FLUSH cells, waiting for the socket, so memory stays bounded.
        tls.get_mut().1.set_buffer_limit(None);
        let url = format!("wss://{}:{}{WS_PATH}", address.host, address.port);
        let config = WebSocketConfig::default()
            .max_message_size(Some(2 * sotto_proto::limits::CELL_SIZE))
            .max_frame_size(Some(2 * sotto_proto::limits::CELL_SIZE));
        let (ws, _) =
            client_async_with_config(url, tls, Some(config)).await.map_err(|e| LinkError::Handshake(e.to_string()))?;
        Self::start(ws).await
    }

    async fn start<S>(mut ws: WebSocketStream<S>) -> Result<Self, LinkError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let nonce = match ws.next().await {
            Some(Ok(Message::Binary(cell))) => match ServerFrame::from_cell(&cell) {
                Ok(ServerFrame::Hello { nonce }) => nonce,
                Ok(_) => return Err(LinkError::Protocol("expected hello".into())),
                Err(e) => return Err(LinkError::Protocol(e.to_string())),
            },
            Some(Ok(_)) => return Err(LinkError::Protocol("expected a binary hello".into())),
            Some(Err(e)) => return Err(LinkError::Handshake(e.to_string())),
            None => return Err(LinkError::Closed),
        };
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (ev_tx, ev_rx) = mpsc::channel(CHANNEL_DEPTH);
        let pending: Pending = Arc::default();
        let task = tokio::spawn(pump(ws, out_rx, ev_tx, pending.clone()));
        Ok(Self { nonce, out: out_tx, pending, events: ev_rx, next_corr: AtomicU32::new(1), task })
    }

    /// Whether the connection has closed (the relay went away or the link failed).
    pub fn is_closed(&self) -> bool {
        self.out.is_closed()
    }

    /// The nonce signatures on this connection must cover.
    pub fn nonce(&self) -> Nonce {
        self.nonce
    }

    /// Sends a request and waits for its response (which may be [`Response::Error`]).
    pub async fn request(&self, request: Request) -> Result<Response, LinkError> {
        self.request_many(request, 1).await?.next().await
    }

    /// Sends a request answered by up to `count` responses (a ranged `BlobGet`; 1 for
    /// any other), read from the returned [`Replies`]. An error response is the last.
    /// The cell is queued before this returns, so requests go out in call order.
    pub async fn request_many(&self, request: Request, count: usize) -> Result<Replies, LinkError> {
        let corr = self.fresh_corr();
        let (tx, rx) = mpsc::channel(count.max(1));
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(corr, Waiter { tx, left: count.max(1) });
        let replies = Replies { corr, rx, pending: self.pending.clone() };
        let cell = ClientFrame { corr, request }.to_cell();
        if self.out.send(cell).await.is_err() {
            return Err(LinkError::Closed);
        }
        Ok(replies)
    }

    /// Sends a request the relay answers only if it refuses it (a `BlobPut` not asking
    /// for an answer). Such a refusal arrives as [`Event::Unmatched`]; a caller learns of
    /// it from a later request that does get an answer. Gives the request back once its
    /// cell is queued, so what it carried can be used again without a copy.
    pub async fn send_unanswered(&self, request: Request) -> Result<Request, LinkError> {
        let frame = ClientFrame { corr: self.fresh_corr(), request };
        self.out.send(frame.to_cell()).await.map_err(|_| LinkError::Closed)?;
        Ok(frame.request)
    }

    /// A correlation id not in use: ids go round, skipping the keepalive's.
    fn fresh_corr(&self) -> u32 {
        loop {
            let c = self.next_corr.fetch_add(1, Ordering::Relaxed);
            if c != KEEPALIVE_CORR {
                return c;
            }
        }
    }

    /// Like [`Self::request`], with a refusal turned into [`LinkError::Refused`].
    pub async fn request_ok(&self, request: Request) -> Result<Response, LinkError> {
        match self.request(request).await? {
            Response::Error(code) => Err(LinkError::Refused(code)),
            r => Ok(r),
        }
    }

    /// Sends bytes as one WebSocket message, unchecked: for tests and diagnostics that
    /// must send what a correct client never would.
    pub async fn send_raw(&self, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.out.send(bytes).await.map_err(|_| LinkError::Closed)
    }

    /// The next push or unmatched response; `None` once the connection is closed.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Takes the event stream, to be read elsewhere (e.g. merged with other links'); the
    /// link's own [`Self::next_event`] then returns `None`.
    pub fn take_events(&mut self) -> mpsc::Receiver<Event> {
        let (_, empty) = mpsc::channel(1);
        std::mem::replace(&mut self.events, empty)
    }
}

/// Signs `request` for the connection with `nonce` and puts the signature in place.
pub fn sign_request(key: &SigningKey, nonce: &Nonce, request: &mut Request) {
    if let Some(payload) = sotto_proto::auth::signed_payload(nonce, request) {
        let sig = key.sign(&payload);
        request.set_signature(Signature(sig.to_bytes()));
    }
}

/// Moves cells between the socket and the link until either side closes.
///
/// Reading and writing run side by side and never wait for each other. The relay stops
/// reading while it writes, and so would a link that only read between writes: with
/// deliveries coming one way and acknowledgements going the other, both sides could
/// fill their socket buffers and wait on each other for good.
async fn pump<S>(ws: WebSocketStream<S>, out: mpsc::Receiver<Vec<u8>>, events: mpsc::Sender<Event>, pending: Pending)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let mut writing = std::pin::pin!(write_cells(sink, out));
    let reading = read_cells(stream, events, &pending);
    let sink = tokio::select! {
        sink = &mut writing => sink,
        () = reading => None,
    };
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    if let Some(mut sink) = sink {
        let _ = sink.send(Message::Close(None)).await;
    }
}

/// Sends queued cells, and a keepalive ping when the link is quiet. Returns the sink
/// (to close it) once the link is dropped, or `None` once the socket fails.
async fn write_cells<S>(
    mut sink: futures_util::stream::SplitSink<WebSocketStream<S>, Message>,
    mut out: mpsc::Receiver<Vec<u8>>,
) -> Option<futures_util::stream::SplitSink<WebSocketStream<S>, Message>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut keepalive = tokio::time::interval(KEEPALIVE_INTERVAL);
    keepalive.reset();
    loop {
        let cell = tokio::select! {
            cell = out.recv() => match cell {
                Some(cell) => cell,
                None => return Some(sink),
            },
            _ = keepalive.tick() => ClientFrame { corr: KEEPALIVE_CORR, request: Request::Ping }.to_cell(),
        };
        keepalive.reset();
        if sink.feed(Message::Binary(cell.into())).await.is_err() {
            return None;
        }
        // Cells already queued go out with this one; the flush comes once the queue is
        // empty, so a lone cell is never held back.
        let mut batch = 1;
        while batch < CELLS_PER_FLUSH {
            let Ok(cell) = out.try_recv() else { break };
            if sink.feed(Message::Binary(cell.into())).await.is_err() {
                return None;
            }
            batch += 1;
        }
        if sink.flush().await.is_err() {
            return None;
        }
    }
}

/// Matches responses to their waiters and passes pushes on, until the socket closes or
/// the relay says something this protocol does not.
async fn read_cells<S>(
    mut stream: futures_util::stream::SplitStream<WebSocketStream<S>>,
    events: mpsc::Sender<Event>,
    pending: &Pending,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let cell = match stream.next().await {
            Some(Ok(Message::Binary(cell))) => cell,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return,
        };
        let event = match ServerFrame::from_cell(&cell) {
            Ok(ServerFrame::Response { corr: KEEPALIVE_CORR, .. }) => continue,
            Ok(ServerFrame::Response { corr, response }) => match hand_over(pending, corr, response) {
                None => continue,
                Some(response) => Event::Unmatched { corr, response },
            },
            Ok(ServerFrame::Push(p)) => Event::Push(p),
            // A second hello or an undecodable cell: the relay is not speaking this
            // protocol; stop rather than guess.
            Ok(ServerFrame::Hello { .. }) | Err(_) => return,
        };
        let delivered = match event {
            // A refusal of a request sent unanswered, or something else no one waits
            // for: worth passing on, never worth stalling the link for (while a transfer
            // runs, nobody may be reading events).
            Event::Unmatched { .. } => !matches!(events.try_send(event), Err(mpsc::error::TrySendError::Closed(_))),
            Event::Push(_) => events.send(event).await.is_ok(),
        };
        if !delivered {
            return;
        }
    }
}

/// Gives a response to whoever waits for it; returns it if nobody does.
fn hand_over(pending: &Pending, corr: u32, response: Response) -> Option<Response> {
    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
    let Some(waiter) = pending.get_mut(&corr) else { return Some(response) };
    let last = waiter.left <= 1 || matches!(response, Response::Error(_));
    waiter.left = waiter.left.saturating_sub(1);
    // The channel holds every expected response, so this never waits or fails for want
    // of room; a dropped receiver removed its entry already.
    let _ = waiter.tx.try_send(response);
    if last {
        pending.remove(&corr);
    }
    None
}

fn tls_error(e: &std::io::Error) -> LinkError {
    let pin_mismatch = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).is_some_and(|r| {
        matches!(r, rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
    });
    if pin_mismatch {
        return LinkError::WrongPin;
    }
    LinkError::Tls(e.to_string())
}
