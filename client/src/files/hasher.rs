//! The blob digest, computed on a thread of its own.
//!
//! SHA-256 over every encrypted segment costs about as much as sealing or opening it.
//! Done in line, the two take turns on one core; here the transfer seals (or opens) the
//! next segment while this thread hashes the last ones, so a device with a spare core
//! moves files faster. Segments are handed over in order, in batches of [`BATCH`],
//! through a bounded channel, so at most [`QUEUE`] batches wait in memory.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::FileError;
use super::format::BlobDigest;

/// Segments handed to the thread at once (64 KiB): one wake-up of the thread per batch,
/// not per segment.
pub const BATCH: usize = 4;

/// Batches that may wait for the hashing thread (16 × 4 × 16 KiB = 1 MiB).
pub const QUEUE: usize = 16;

/// A digest being computed on its own thread.
pub struct Hasher {
    tx: Option<SyncSender<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<[u8; 32]>>,
    /// Segments not yet handed over.
    batch: Vec<Vec<u8>>,
}

impl Hasher {
    /// Starts the thread.
    pub fn start() -> Result<Self, FileError> {
        let (tx, rx) = sync_channel::<Vec<Vec<u8>>>(QUEUE);
        let thread = std::thread::Builder::new()
            .name("sotto-digest".into())
            .spawn(move || {
                let mut digest = BlobDigest::default();
                for batch in rx {
                    for segment in batch {
                        digest.update(&segment);
                    }
                }
                digest.finish()
            })
            .map_err(FileError::io("starting the digest thread"))?;
        Ok(Self { tx: Some(tx), thread: Some(thread), batch: Vec::with_capacity(BATCH) })
    }

    /// Adds the next encrypted segment. Blocks the caller only when [`QUEUE`] batches are
    /// waiting, that is when hashing is the slower side: the wait is the back-pressure
    /// that keeps memory bounded.
    pub fn update(&mut self, segment: Vec<u8>) -> Result<(), FileError> {
        self.batch.push(segment);
        if self.batch.len() < BATCH {
            return Ok(());
        }
        self.hand_over()
    }

    /// The digest of everything added.
    pub fn finish(mut self) -> Result<[u8; 32], FileError> {
        if !self.batch.is_empty() {
            self.hand_over()?;
        }
        // Closing the channel ends the thread's loop.
        drop(self.tx.take());
        let thread = self.thread.take().ok_or(FileError::Crypto)?;
        thread.join().map_err(|_| FileError::Crypto)
    }

    fn hand_over(&mut self) -> Result<(), FileError> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let tx = self.tx.as_ref().ok_or(FileError::Crypto)?;
        tx.send(batch).map_err(|_| FileError::Crypto)
    }
}

impl Drop for Hasher {
    fn drop(&mut self) {
        // An abandoned transfer: close the channel so the thread ends; nobody waits for it.
        drop(self.tx.take());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn equals_the_digest_computed_in_line() {
        let segments: Vec<Vec<u8>> = (0..200u32).map(|i| vec![i as u8; 1000 + i as usize]).collect();
        let mut inline = BlobDigest::default();
        let mut hasher = Hasher::start().unwrap();
        for s in &segments {
            inline.update(s);
            hasher.update(s.clone()).unwrap();
        }
        assert_eq!(hasher.finish().unwrap(), inline.finish());
        assert_eq!(Hasher::start().unwrap().finish().unwrap(), BlobDigest::default().finish());
    }
}
