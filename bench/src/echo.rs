//! The ceiling: a bare rustls TLS forwarder moving the same cells between the same pairs.
//!
//! It uses the relay's own TLS configuration (TLS 1.3, aws-lc-rs, the same key type) and
//! exchanges exactly the relay's cells per message (send up, ok down to the sender;
//! deliver down, ack up, ok down on the receiver's side), each written and flushed on its
//! own as the relay does. It has no WebSocket, parses nothing, checks no signature and
//! stores nothing: what is left is TLS, TCP and the scheduler.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rustls::pki_types::ServerName;
use sotto_proto::limits::CELL_SIZE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::load::{self, Load, ReceiverResult, RunResult};

/// The first cell of a connection names its role and pair.
const ROLE_RECEIVER: u8 = 1;
const ROLE_SENDER: u8 = 2;
/// Byte of a cell (after the 8-byte stamp) telling a forwarded message from an answer.
const KIND_AT: usize = 8;
const KIND_MESSAGE: u8 = 1;
const KIND_ANSWER: u8 = 2;
/// Cells queued towards one receiver: the relay's delivery window, so the forwarder
/// buffers no more than the relay may.
const RECEIVER_QUEUE: usize = sotto_server::config::DEFAULT_DELIVERY_WINDOW;

type Receivers = Arc<Mutex<HashMap<u32, mpsc::Sender<Vec<u8>>>>>;

/// Serves the forwarder on `listener` until the runtime ends.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor) {
    let receivers: Receivers = Arc::default();
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let receivers = receivers.clone();
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                // A failed bench connection ends only itself.
                let _ = serve_conn(tls, receivers).await;
            }
        });
    }
}

fn answer_cell() -> Vec<u8> {
    let mut c = vec![0u8; CELL_SIZE];
    c[KIND_AT] = KIND_ANSWER;
    c
}

async fn serve_conn(mut tls: tokio_rustls::server::TlsStream<TcpStream>, receivers: Receivers) -> Result<()> {
    let mut cell = vec![0u8; CELL_SIZE];
    tls.read_exact(&mut cell).await?;
    let pair = u32::from_be_bytes([cell[1], cell[2], cell[3], cell[4]]);
    match cell[0] {
        ROLE_RECEIVER => {
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(RECEIVER_QUEUE);
            let (mut rd, mut wr) = tokio::io::split(tls);
            // Registered before the answer, so the sender that follows it finds the pair.
            receivers.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.insert(pair, tx.clone());
            wr.write_all(&answer_cell()).await?;
            wr.flush().await?;
            let writer = tokio::spawn(async move {
                while let Some(c) = rx.recv().await {
                    wr.write_all(&c).await?;
                    wr.flush().await?;
                }
                anyhow::Ok(())
            });
            // Every ack is answered, like the relay's Ok.
            while rd.read_exact(&mut cell).await.is_ok() {
                if tx.send(answer_cell()).await.is_err() {
                    break;
                }
            }
            drop(tx);
            receivers.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.remove(&pair);
            writer.abort();
            Ok(())
        }
        ROLE_SENDER => {
            let to = receivers.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.get(&pair).cloned();
            let Some(to) = to else { bail!("no receiver for pair") };
            loop {
                if tls.read_exact(&mut cell).await.is_err() {
                    return Ok(());
                }
                to.send(cell.clone()).await?;
                tls.write_all(&answer_cell()).await?;
                tls.flush().await?;
            }
        }
        _ => bail!("unknown role"),
    }
}

/// Where the forwarder listens.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: TlsConnector,
}

async fn join(target: &Target, role: u8, pair: u32) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(target.addr).await.context("cannot connect to the echo server")?;
    tcp.set_nodelay(true)?;
    let mut tls = target.tls.connect(ServerName::IpAddress(target.addr.ip().into()), tcp).await?;
    let mut cell = vec![0u8; CELL_SIZE];
    cell[0] = role;
    cell[1..5].copy_from_slice(&pair.to_be_bytes());
    tls.write_all(&cell).await?;
    tls.flush().await?;
    if role == ROLE_RECEIVER {
        // Registered once its first answer arrives.
        tls.read_exact(&mut cell).await?;
    }
    Ok(tls)
}

/// Runs `load` through the forwarder; `first_pair` keeps pair numbers of runs apart.
pub async fn run(target: &Target, load: Load, first_pair: u32) -> Result<RunResult> {
    let mut conns = Vec::with_capacity(load.pairs);
    for p in 0..load.pairs {
        let pair = first_pair.wrapping_add(p as u32);
        let receiver = join(target, ROLE_RECEIVER, pair).await?;
        let sender = join(target, ROLE_SENDER, pair).await?;
        conns.push((sender, receiver));
    }
    let start = Instant::now();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (sender, receiver) in conns {
        receivers.push(tokio::spawn(receive(receiver, load.messages)));
        senders.push(tokio::spawn(send(sender, load, start)));
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

async fn send(tls: tokio_rustls::client::TlsStream<TcpStream>, load: Load, start: Instant) -> Result<()> {
    let (mut rd, mut wr) = tokio::io::split(tls);
    let window = Arc::new(Semaphore::new(load.window));
    let answers = {
        let window = window.clone();
        let expected = load.messages;
        tokio::spawn(async move {
            let mut cell = vec![0u8; CELL_SIZE];
            for _ in 0..expected {
                if let Err(e) = rd.read_exact(&mut cell).await {
                    // Wakes the sending loop, which would otherwise wait for the window.
                    window.close();
                    return Err(e.into());
                }
                window.add_permits(1);
            }
            anyhow::Ok(())
        })
    };
    let mut cell = vec![0u8; CELL_SIZE];
    cell[KIND_AT] = KIND_MESSAGE;
    for i in 0..load.messages {
        if window.acquire().await.map(|p| p.forget()).is_err() {
            break;
        }
        let sent = load::pace(&load, start, i).await;
        load::stamp(&mut cell, sent);
        wr.write_all(&cell).await?;
        wr.flush().await?;
    }
    answers.await??;
    Ok(())
}

async fn receive(tls: tokio_rustls::client::TlsStream<TcpStream>, expected: usize) -> Result<ReceiverResult> {
    let mut result = ReceiverResult { latencies_us: Vec::with_capacity(expected), last: None };
    let (mut rd, mut wr) = tokio::io::split(tls);
    // Acks are written by a task of their own, so reading never waits on a write: with
    // both directions full, a reader that stops to write would deadlock with the server.
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<()>();
    let writer = tokio::spawn(async move {
        let ack = answer_cell();
        while ack_rx.recv().await.is_some() {
            wr.write_all(&ack).await?;
            wr.flush().await?;
        }
        anyhow::Ok(())
    });
    let mut cell = vec![0u8; CELL_SIZE];
    while result.latencies_us.len() < expected {
        rd.read_exact(&mut cell).await?;
        if cell[KIND_AT] != KIND_MESSAGE {
            continue;
        }
        if let Some(l) = load::latency_us(&cell) {
            result.latencies_us.push(l);
        }
        result.last = Some(Instant::now());
        ack_tx.send(()).map_err(|_| anyhow::anyhow!("the ack writer stopped"))?;
    }
    drop(ack_tx);
    // The last acks are still being written and their answers arrive: keep reading, or
    // the server's writes back up and it stops reading those acks.
    let drain = async { while rd.read_exact(&mut cell).await.is_ok() {} };
    tokio::select! {
        w = writer => w??,
        () = drain => {}
    }
    Ok(result)
}
