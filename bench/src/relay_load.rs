//! Driving a Sotto relay with the real protocol: TLS 1.3, WebSocket, one cell per frame.
//!
//! Each pair is a receiver connection that creates a mailbox, secures it to the sender's
//! key and subscribes, and a sender connection that sends signed envelopes into it. The
//! receiver acknowledges every delivery with a signed `Ack`, as a client does once it has
//! stored the message. Nothing is skipped: the relay verifies every signature and, on
//! sled, answers a send only once it is on disk.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use sotto_proto::limits::{CELL_SIZE, ENVELOPE_SIZE};
use sotto_proto::{
    ClientFrame, Envelope, Nonce, PublicKey, Push, RecvId, Request, Response, SendId, ServerFrame, Signature,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::load::{self, Load, ReceiverResult, RunResult};

/// A WebSocket over TLS to the relay.
pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// The WebSocket path of the relay.
const WS_PATH: &str = sotto_server::WS_PATH;

/// Where the relay is and how to trust it.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: TlsConnector,
    /// Read buffer of each WebSocket: a full cell for busy links, less for idle ones.
    pub read_buffer: usize,
}

/// One open link: the stream, the connection's nonce, and the next correlation id.
pub struct Link {
    pub ws: Ws,
    pub nonce: Nonce,
    next_corr: u32,
}

/// Connects from `local` (an address on this machine; any when `None`), upgrades to
/// WebSocket and waits for the relay's `Hello`.
pub async fn connect(target: &Target, local: Option<IpAddr>) -> Result<Link> {
    let socket = if target.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0)).with_context(|| format!("cannot bind to {ip}"))?;
    }
    let tcp = socket.connect(target.addr).await.context("cannot connect to the relay")?;
    tcp.set_nodelay(true)?;
    let tls = target.tls.connect(ServerName::IpAddress(target.addr.ip().into()), tcp).await.context("TLS")?;
    let url = format!("wss://{}{WS_PATH}", target.addr);
    let config = WebSocketConfig::default()
        .read_buffer_size(target.read_buffer)
        .max_message_size(Some(2 * CELL_SIZE))
        .max_frame_size(Some(2 * CELL_SIZE));
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url, tls, Some(config)).await.context("WebSocket upgrade")?;
    let nonce = match next_frame(&mut ws).await? {
        ServerFrame::Hello { nonce } => nonce,
        _ => bail!("the relay did not start with Hello"),
    };
    Ok(Link { ws, nonce, next_corr: 1 })
}

/// The next frame from the relay.
async fn next_frame(ws: &mut Ws) -> Result<ServerFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(cell))) => return Ok(ServerFrame::from_cell(&cell)?),
            Some(Ok(Message::Close(_))) | None => bail!("the relay closed the connection"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Signs `request` for the connection with `nonce`.
fn sign(key: &SigningKey, nonce: &Nonce, request: &mut Request) {
    if let Some(payload) = sotto_proto::auth::signed_payload(nonce, request) {
        request.set_signature(Signature(key.sign(&payload).to_bytes()));
    }
}

/// A fresh Ed25519 key.
pub fn new_key() -> SigningKey {
    let mut seed = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut seed);
    SigningKey::from_bytes(&seed)
}

fn public(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

const NO_SIG: Signature = Signature([0; 64]);

impl Link {
    /// Sends `request` (signed by `key` if given) and waits for its answer, skipping pushes.
    pub async fn call(&mut self, key: Option<&SigningKey>, mut request: Request) -> Result<Response> {
        if let Some(k) = key {
            sign(k, &self.nonce, &mut request);
        }
        let corr = self.next_corr;
        self.next_corr = self.next_corr.wrapping_add(1);
        self.ws.send(Message::Binary(ClientFrame { corr, request }.to_cell().into())).await?;
        loop {
            match next_frame(&mut self.ws).await? {
                ServerFrame::Response { corr: c, response } if c == corr => return Ok(response),
                _ => continue,
            }
        }
    }
}

/// A receiver's mailbox: what it needs to subscribe and acknowledge.
pub struct Mailbox {
    pub recv_id: RecvId,
    pub send_id: SendId,
    pub owner: SigningKey,
}

/// Creates a mailbox on `link` (owned by a fresh key), optionally secured to `sender`.
pub async fn create_mailbox(link: &mut Link, sender: Option<&SigningKey>) -> Result<Mailbox> {
    let owner = new_key();
    let created =
        link.call(Some(&owner), Request::CreateMailbox { owner_key: public(&owner), signature: NO_SIG }).await?;
    let Response::MailboxCreated { recv_id, send_id } = created else {
        bail!("CreateMailbox answered {created:?}");
    };
    if let Some(s) = sender {
        let r = link.call(Some(&owner), Request::Secure { recv_id, sender_key: public(s), signature: NO_SIG }).await?;
        if r != Response::Ok {
            bail!("Secure answered {r:?}");
        }
    }
    Ok(Mailbox { recv_id, send_id, owner })
}

/// Subscribes `link` to the mailbox.
pub async fn subscribe(link: &mut Link, mb: &Mailbox) -> Result<()> {
    match link.call(Some(&mb.owner), Request::Subscribe { recv_id: mb.recv_id, signature: NO_SIG }).await? {
        Response::Ok => Ok(()),
        r => bail!("Subscribe answered {r:?}"),
    }
}

/// Runs `load` against the relay at `target` and measures it.
pub async fn run(target: &Target, load: Load) -> Result<RunResult> {
    let mut pairs = Vec::with_capacity(load.pairs);
    for _ in 0..load.pairs {
        let sender_key = new_key();
        let mut receiver = connect(target, None).await?;
        let mb = create_mailbox(&mut receiver, Some(&sender_key)).await?;
        subscribe(&mut receiver, &mb).await?;
        let sender = connect(target, None).await?;
        pairs.push((sender, sender_key, receiver, mb));
    }
    let start = Instant::now();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (sender, key, receiver, mb) in pairs {
        let send_id = mb.send_id;
        receivers.push(tokio::spawn(receive(receiver, mb, load.messages)));
        senders.push(tokio::spawn(send(sender, key, send_id, load, start)));
    }
    for s in senders {
        s.await??;
    }
    let mut results = Vec::new();
    for r in receivers {
        results.push(r.await??);
    }
    Ok(RunResult::from_receivers(start, results))
}

/// Sends `load.messages` signed envelopes, at most `load.window` unanswered.
async fn send(link: Link, key: SigningKey, send_id: SendId, load: Load, start: Instant) -> Result<()> {
    let Link { ws, nonce, .. } = link;
    let (mut sink, mut stream) = ws.split();
    let window = Arc::new(Semaphore::new(load.window));
    let answers = {
        let window = window.clone();
        let expected = load.messages;
        tokio::spawn(async move {
            let r = read_answers(&mut stream, &window, expected).await;
            // On failure, wakes the sending loop, which would otherwise wait for the window.
            window.close();
            r
        })
    };
    let mut payload = vec![0u8; ENVELOPE_SIZE];
    for i in 0..load.messages {
        if window.acquire().await.map(|p| p.forget()).is_err() {
            break;
        }
        let sent = load::pace(&load, start, i).await;
        load::stamp(&mut payload, sent);
        let mut request = Request::Send { send_id, envelope: Envelope::from_slice(&payload)?, signature: None };
        sign(&key, &nonce, &mut request);
        let cell = ClientFrame { corr: i as u32, request }.to_cell();
        sink.send(Message::Binary(cell.into())).await?;
    }
    answers.await??;
    Ok(())
}

/// Reads the answers to `expected` sends, opening the window by one for each.
async fn read_answers<S>(stream: &mut S, window: &Semaphore, expected: usize) -> Result<()>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut answered = 0;
    while answered < expected {
        let frame = match stream.next().await {
            Some(Ok(Message::Binary(cell))) => ServerFrame::from_cell(&cell)?,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(anyhow!(e)),
            None => bail!("the relay closed a sender's connection"),
        };
        match frame {
            ServerFrame::Response { response: Response::Ok, .. } => {}
            ServerFrame::Response { response, .. } => bail!("a send was answered {response:?}"),
            _ => continue,
        }
        answered += 1;
        window.add_permits(1);
    }
    Ok(())
}

/// Receives `expected` deliveries, acknowledging each. Acks are written by a task of their
/// own, so reading never waits on a write (with both directions full, that would deadlock).
async fn receive(link: Link, mb: Mailbox, expected: usize) -> Result<ReceiverResult> {
    let mut result = ReceiverResult { latencies_us: Vec::with_capacity(expected), last: None };
    let Link { ws, nonce, .. } = link;
    let (mut sink, mut stream) = ws.split();
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let writer = tokio::spawn(async move {
        let mut corr = 0u32;
        while let Some(seq) = ack_rx.recv().await {
            let mut request = Request::Ack { recv_id: mb.recv_id, seq, signature: NO_SIG };
            sign(&mb.owner, &nonce, &mut request);
            corr = corr.wrapping_add(1);
            sink.send(Message::Binary(ClientFrame { corr, request }.to_cell().into())).await?;
        }
        anyhow::Ok(())
    });
    while result.latencies_us.len() < expected {
        let frame = match stream.next().await {
            Some(Ok(Message::Binary(cell))) => ServerFrame::from_cell(&cell)?,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("the relay closed a receiver's connection"),
        };
        let (seq, envelope) = match frame {
            ServerFrame::Push(Push::Deliver { seq, envelope, .. }) => (seq, envelope),
            ServerFrame::Push(Push::Unsubscribed { .. }) => bail!("a receiver was unsubscribed"),
            ServerFrame::Response { response: Response::Ok, .. } => continue,
            other => bail!("a receiver got {other:?}"),
        };
        if let Some(l) = load::latency_us(envelope.as_bytes()) {
            result.latencies_us.push(l);
        }
        result.last = Some(Instant::now());
        ack_tx.send(seq).map_err(|_| anyhow!("the ack writer stopped"))?;
    }
    drop(ack_tx);
    // The last acks are still being written and their answers arrive: keep reading, or
    // the relay's writes back up while the acks wait.
    let drain = async { while let Some(Ok(_)) = stream.next().await {} };
    tokio::select! {
        w = writer => w??,
        () = drain => {}
    }
    Ok(result)
}
