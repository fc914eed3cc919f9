//! The accept loop, the sweeper, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::clock::Clock;
use crate::config::Limits;
use crate::conn::{self, Shared};
use crate::error::RelayError;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls::Identity;

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Everything a relay needs besides its socket and store.
pub struct RelayConfig {
    /// Limits and time-outs.
    pub limits: Limits,
    /// The TLS key and certificate.
    pub identity: Identity,
    /// Where "today" comes from.
    pub clock: Arc<dyn Clock>,
    /// Counters, shared so the caller can read them.
    pub metrics: Arc<Metrics>,
}

impl RelayConfig {
    /// Default limits, the system clock and fresh counters.
    pub fn new(identity: Identity) -> Self {
        Self {
            limits: Limits::default(),
            identity,
            clock: Arc::new(crate::clock::SystemClock),
            metrics: Arc::new(Metrics::default()),
        }
    }
}

/// Serves relay connections from `listener` until `shutdown` resolves, then closes every
/// connection (waiting up to the shutdown grace) and flushes the store.
pub async fn run<S: Store>(
    listener: TcpListener,
    config: RelayConfig,
    store: Arc<S>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RelayError> {
    let tls = TlsAcceptor::from(config.identity.tls_config()?);
    let limits = config.limits;
    let grace = limits.shutdown_grace;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let events = store.events();
    let shared = Arc::new(Shared {
        store: store.clone(),
        limits,
        clock: config.clock,
        hub: Hub::with_watcher(events.as_ref().map(|e| e.watcher.clone())),
        metrics: config.metrics.clone(),
        next_conn: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(sweeper(shared.clone(), stop_rx.clone()));
    if let Some(events) = events {
        tasks.spawn(crate::hub::forward(events.events, shared.clone(), stop_rx.clone()));
    }
    tracing::info!("relay listening");

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                // The peer's address is dropped here, unread: the relay keeps none.
                Ok((tcp, _)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        Metrics::inc(&shared.metrics.connections_refused);
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    tasks.spawn(conn::serve(tcp, tls.clone(), shared.clone(), stop_rx.clone(), permit));
                }
                Err(e) => {
                    tracing::warn!(kind = ?e.kind(), "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    tracing::info!("relay shutting down");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
    }
    store.flush().await?;
    tracing::info!(summary = %shared.metrics.summary(), "relay stopped");
    Ok(())
}

/// Deletes what has expired, every sweep interval, until shutdown.
async fn sweeper<S: Store>(shared: Arc<Shared<S>>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.limits.sweep_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match shared.store.sweep(shared.clock.today()).await {
            Ok(c) => {
                // A subscriber of a mailbox that expired learns it, as after a delete.
                for recv_id in &c.deleted {
                    shared.hub.end(recv_id, crate::hub::NOBODY);
                }
                tracing::info!(envelopes = c.envelopes, mailboxes = c.mailboxes, blobs = c.blobs, "swept expired data")
            }
            Err(e) => tracing::error!(error = %e, "sweep failed"),
        }
    }
}
