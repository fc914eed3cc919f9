//! The durable engine: sled, with group commit.
//!
//! sled's `flush` writes everything dirty and syncs it. Calling it once per send would
//! cost one sync per message; instead every caller that needs durability queues a
//! waiter, and one flusher thread runs a flush for all waiters queued so far. A waiter
//! is queued only after its write was applied, and the flush it gets starts after it
//! was taken off the queue, so that flush covers the write.

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::StoreError;
use super::kv::{BatchOp, Kv, Rows};

type Waiter = oneshot::Sender<Result<(), String>>;

/// sled's page cache. Its default (1 GiB) is sized for a database server, not for a
/// relay that mostly holds envelopes briefly.
pub const SLED_CACHE_BYTES: u64 = 128 << 20;

/// A sled database used as an ordered map, plus its flusher thread.
pub struct SledKv {
    db: sled::Db,
    flush_requests: Option<mpsc::Sender<Waiter>>,
    flusher: Option<thread::JoinHandle<()>>,
}

impl SledKv {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(dir).cache_capacity(SLED_CACHE_BYTES).open().map_err(engine)?;
        let (tx, rx) = mpsc::channel::<Waiter>();
        let flusher_db = db.clone();
        let handle = thread::Builder::new()
            .name("sotto-flusher".into())
            .spawn(move || flusher(&flusher_db, &rx))
            .map_err(|e| StoreError::Engine(e.to_string()))?;
        Ok(Self { db, flush_requests: Some(tx), flusher: Some(handle) })
    }

    /// Flushes synchronously (used at shutdown).
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(engine)
    }
}

/// Runs until the engine is dropped: waits for a waiter, takes every waiter queued by
/// then, flushes once and answers them all.
fn flusher(db: &sled::Db, rx: &mpsc::Receiver<Waiter>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let result = db.flush().map(drop).map_err(|e| e.to_string());
        for w in batch {
            let _ = w.send(result.clone());
        }
    }
}

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(engine)?.map(|v| v.to_vec()))
    }

    fn apply(&self, batch: Vec<BatchOp>) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b).map_err(engine)
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Rows, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        self.db
            .range(start..end)
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
            .collect()
    }

    async fn durable(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::Engine("flusher stopped".into());
        self.flush_requests.as_ref().ok_or_else(stopped)?.send(tx).map_err(|_| stopped())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Engine(e)),
            Err(_) => Err(stopped()),
        }
    }
}

impl Drop for SledKv {
    /// Stops the flusher and waits for it, so the database is closed (and its lock
    /// released) when this returns: a restart in the same process can reopen it.
    fn drop(&mut self) {
        self.flush_requests = None;
        if let Some(h) = self.flusher.take() {
            let _ = h.join();
        }
        let _ = self.db.flush();
    }
}
