//! Who is subscribed to which mailbox, on this relay process.
//!
//! The store is the truth about what is queued; the hub only wakes the connection that
//! holds a subscription so it reads the store again. A wake-up carries no data, so one
//! lost or doubled is harmless: the connection reads from its cursor either way.
//!
//! With a store shared by several relay processes, the hub tells the store's [`Watcher`]
//! which mailboxes have a subscriber here, so wake-ups from other processes reach it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sotto_proto::RecvId;
use tokio::sync::Notify;

use crate::store::Watcher;

/// What a connection is told.
#[derive(Default)]
pub(crate) struct InboxEvents {
    /// Mailboxes with something new.
    pub wakes: HashSet<RecvId>,
    /// Mailboxes whose subscription moved elsewhere or that were deleted.
    pub ended: Vec<RecvId>,
}

/// A connection's end of the hub.
#[derive(Default)]
pub(crate) struct Inbox {
    events: Mutex<InboxEvents>,
    notify: Notify,
}

impl Inbox {
    /// Waits until there is something to take.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Takes everything queued for this connection.
    pub fn take(&self) -> InboxEvents {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn wake(&self, recv_id: RecvId) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).wakes.insert(recv_id);
        self.notify.notify_one();
    }

    fn end(&self, recv_id: RecvId) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).ended.push(recv_id);
        self.notify.notify_one();
    }
}

struct Subscriber {
    conn: u64,
    inbox: Arc<Inbox>,
}

/// A connection id no connection has: `end(.., NOBODY)` tells every subscriber.
pub(crate) const NOBODY: u64 = u64::MAX;

/// The subscription table.
#[derive(Default)]
pub(crate) struct Hub {
    subs: Mutex<HashMap<RecvId, Subscriber>>,
    watcher: Option<Arc<dyn Watcher>>,
}

impl Hub {
    /// A hub that tells `watcher` when a mailbox gains or loses its subscriber here.
    pub fn with_watcher(watcher: Option<Arc<dyn Watcher>>) -> Self {
        Self { subs: Mutex::default(), watcher }
    }

    fn watched(&self, recv_id: RecvId, now: bool) {
        if let Some(w) = &self.watcher {
            if now { w.watch(recv_id) } else { w.unwatch(recv_id) }
        }
    }

    /// Makes `conn` the mailbox's subscriber; a previous one on another connection is
    /// told its subscription ended.
    pub fn subscribe(&self, recv_id: RecvId, conn: u64, inbox: &Arc<Inbox>) {
        let prev = self.lock().insert(recv_id, Subscriber { conn, inbox: inbox.clone() });
        if prev.is_none() {
            self.watched(recv_id, true);
        }
        if let Some(prev) = prev.filter(|p| p.conn != conn) {
            prev.inbox.end(recv_id);
        }
    }

    /// Removes `conn`'s subscription, if it still holds it.
    pub fn unsubscribe(&self, recv_id: &RecvId, conn: u64) {
        let mut subs = self.lock();
        if subs.get(recv_id).is_some_and(|s| s.conn == conn) {
            subs.remove(recv_id);
            drop(subs);
            self.watched(*recv_id, false);
        }
    }

    /// Ends the mailbox's subscription wherever it is (the mailbox was deleted).
    pub fn end(&self, recv_id: &RecvId, except_conn: u64) {
        let Some(prev) = self.lock().remove(recv_id) else { return };
        self.watched(*recv_id, false);
        if prev.conn != except_conn {
            prev.inbox.end(*recv_id);
        }
    }

    /// Tells the mailbox's subscriber, if any, to read its queue again.
    pub fn wake(&self, recv_id: &RecvId) {
        if let Some(s) = self.lock().get(recv_id) {
            s.inbox.wake(*recv_id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RecvId, Subscriber>> {
        self.subs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Passes a shared store's events to this process's subscribers until shutdown.
pub(crate) async fn forward<S: crate::store::Store>(
    mut events: tokio::sync::mpsc::UnboundedReceiver<crate::store::StoreEvent>,
    shared: Arc<crate::conn::Shared<S>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = stop.changed() => return,
        };
        match event {
            Some(crate::store::StoreEvent::Wake(recv_id)) => shared.hub.wake(&recv_id),
            Some(crate::store::StoreEvent::Ended(recv_id)) => shared.hub.end(&recv_id, NOBODY),
            None => return,
        }
    }
}
