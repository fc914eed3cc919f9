//! Wake-ups between relay processes: sharded pub/sub on each mailbox's own channel.
//!
//! A process subscribes (`SSUBSCRIBE`) to the channel of each mailbox one of its
//! connections is subscribed to; the scripts that queue, delete or expire publish on it
//! (`SPUBLISH`), so only the master of that slot and the one process holding the
//! subscriber do any work. A wake-up carries no data: the queue stays the truth.
//!
//! A process that gains a subscriber also publishes `s` and its own random node id, so a
//! subscription to the same mailbox held by another process ends there, as a second
//! subscription ends the first within one process.
//!
//! The client library does not restore sharded subscriptions when a slot's master fails
//! over (it moves to another node; measured with `redis` 1.8). So this task treats a
//! `Disconnection` push as losing every subscription and an unexpected `SUnsubscribe` as
//! losing that one, subscribes again with backoff, and after every (re)subscription tells
//! the subscriber to read its queue again: a wake-up published in the gap is lost, but the
//! envelope it announced is read from the queue.

use std::collections::HashSet;
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};
use sotto_proto::RecvId;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::keys::Keys;
use super::{builder, engine};
use crate::store::{StoreError, StoreEvent, StoreEvents, Watcher};

/// First pause before subscribing again after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// Longest pause between attempts to subscribe again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Random bytes naming this process on the channels (never stored anywhere).
const NODE_ID_LEN: usize = 16;

/// What a wake-up channel carries (one message kind per byte tag).
const MSG_DELETED: u8 = b'd';
const MSG_CLAIMED: u8 = b's';

/// What the hub asks of this task.
enum Command {
    Watch(RecvId),
    Unwatch(RecvId),
}

/// The [`Watcher`] the relay's hub calls: it only queues the request for the task.
struct ChannelWatcher(UnboundedSender<Command>);

impl Watcher for ChannelWatcher {
    fn watch(&self, recv_id: RecvId) {
        let _ = self.0.send(Command::Watch(recv_id));
    }
    fn unwatch(&self, recv_id: RecvId) {
        let _ = self.0.send(Command::Unwatch(recv_id));
    }
}

/// Connects a pub/sub client (RESP3, pushes to this task) and starts the task.
pub(super) async fn start(urls: &[String], keys: Keys) -> Result<StoreEvents, StoreError> {
    let (push_tx, pushes) = unbounded_channel::<PushInfo>();
    let client =
        builder(urls).use_protocol(redis::ProtocolVersion::RESP3).push_sender(push_tx).build().map_err(engine)?;
    let conn = client.get_async_connection().await.map_err(engine)?;
    let (cmd_tx, commands) = unbounded_channel();
    let (event_tx, events) = unbounded_channel();
    let mut node_id = [0u8; NODE_ID_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut node_id);
    let task = Subscriptions { conn, keys, node_id, events: event_tx, watched: HashSet::new(), lost: HashSet::new() };
    tokio::spawn(task.run(commands, pushes));
    Ok(StoreEvents { watcher: std::sync::Arc::new(ChannelWatcher(cmd_tx)), events })
}

struct Subscriptions {
    conn: redis::cluster_async::ClusterConnection,
    keys: Keys,
    node_id: [u8; NODE_ID_LEN],
    events: UnboundedSender<StoreEvent>,
    /// Mailboxes with a subscriber on this process.
    watched: HashSet<RecvId>,
    /// Watched mailboxes whose channel subscription is not (known to be) in place.
    lost: HashSet<RecvId>,
}

impl Subscriptions {
    async fn run(mut self, mut commands: UnboundedReceiver<Command>, mut pushes: UnboundedReceiver<PushInfo>) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let retry_due = !self.lost.is_empty();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(Command::Watch(r)) => {
                        if self.watched.insert(r) {
                            self.lost.insert(r);
                            backoff = FIRST_BACKOFF;
                            self.subscribe_lost().await;
                            self.claim(r).await;
                        }
                    }
                    Some(Command::Unwatch(r)) => {
                        self.watched.remove(&r);
                        self.lost.remove(&r);
                        let _ = self.conn.sunsubscribe(self.keys.channel(&r.0)).await;
                    }
                    // The store was dropped.
                    None => return,
                },
                Some(push) = pushes.recv() => self.on_push(push),
                () = tokio::time::sleep(backoff), if retry_due => {
                    if !self.subscribe_lost().await {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    } else {
                        backoff = FIRST_BACKOFF;
                    }
                }
            }
            if self.events.is_closed() {
                return;
            }
        }
    }

    /// Subscribes every lost channel; each that succeeds gets a wake-up so its queue is
    /// read again. Returns whether all succeeded.
    async fn subscribe_lost(&mut self) -> bool {
        let lost: Vec<RecvId> = self.lost.iter().copied().collect();
        let mut all = true;
        for r in lost {
            match self.conn.ssubscribe(self.keys.channel(&r.0)).await {
                Ok(()) => {
                    self.lost.remove(&r);
                    let _ = self.events.send(StoreEvent::Wake(r));
                }
                Err(e) => {
                    tracing::debug!(error = ?e.kind(), "sharded subscribe failed; retrying");
                    all = false;
                }
            }
        }
        all
    }

    /// Tells other processes that the mailbox's subscriber is here now. Best effort: a
    /// doubled subscription only means envelopes pushed twice, which clients deduplicate.
    async fn claim(&mut self, r: RecvId) {
        let mut msg = Vec::with_capacity(1 + NODE_ID_LEN);
        msg.push(MSG_CLAIMED);
        msg.extend_from_slice(&self.node_id);
        let mut cmd = redis::cmd("SPUBLISH");
        cmd.arg(self.keys.channel(&r.0)).arg(msg);
        let _: Result<Value, _> = cmd.query_async(&mut self.conn).await;
    }

    fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::SMessage => {
                let (Some(channel), Some(payload)) = (push.data.first(), push.data.get(1)) else { return };
                let Some(r) = self.recv_id(channel) else { return };
                let event = match payload {
                    Value::BulkString(p) => match p.split_first() {
                        Some((&MSG_DELETED, _)) => StoreEvent::Ended(r),
                        Some((&MSG_CLAIMED, id)) if id == self.node_id.as_slice() => return,
                        Some((&MSG_CLAIMED, _)) => StoreEvent::Ended(r),
                        _ => StoreEvent::Wake(r),
                    },
                    _ => StoreEvent::Wake(r),
                };
                let _ = self.events.send(event);
            }
            PushKind::SUnsubscribe => {
                // Ours after an unwatch; otherwise the server dropped it (its slot moved).
                if let Some(r) = push.data.first().and_then(|c| self.recv_id(c))
                    && self.watched.contains(&r)
                {
                    self.lost.insert(r);
                }
            }
            PushKind::SSubscribe => {
                // The library may restore a subscription by itself after a reconnect:
                // whatever was published meanwhile is in the queue.
                if let Some(r) = push.data.first().and_then(|c| self.recv_id(c))
                    && self.watched.contains(&r)
                {
                    let _ = self.events.send(StoreEvent::Wake(r));
                }
            }
            PushKind::Disconnection => {
                self.lost.extend(self.watched.iter().copied());
            }
            _ => {}
        }
    }

    fn recv_id(&self, channel: &Value) -> Option<RecvId> {
        match channel {
            Value::BulkString(name) => self.keys.id_of(name).map(RecvId),
            _ => None,
        }
    }
}
