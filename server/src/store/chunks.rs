//! Where blob chunks live: in the key-value map itself, or in one plain file per blob
//! beside a durable engine.
//!
//! A log-structured engine such as sled rewrites a tree node with every value in it when
//! it consolidates the node, so 16 KiB chunks stored as values are written to disk many
//! times over (measured: a quarter of a file transfer's CPU time went to sled's log
//! writes and syncs). A blob is written once, front to back, and read by offset: a file
//! is the structure that fits. The key-value record keeps the blob's size, read id,
//! expiry and how much has arrived; the file only holds bytes.
//!
//! How much of an incomplete blob arrived is the file's length in whole chunks, so a
//! chunk costs one positioned write and no write to the key-value engine; the record
//! changes once, when the blob is complete.
//!
//! Durability: a chunk before the last is written without a sync (an upload resumes
//! from what the relay reports, and a crash can only shorten the file). The last chunk
//! syncs the file and its directory entry before the record that says "complete" is
//! written, so a complete record never outlives its bytes in a crash; the client's
//! digest check catches anything else. While a blob arrives, its file is written back to
//! disk in the background every [`WRITEBACK_CHUNKS`] chunks, so the last chunk's sync
//! waits for a few megabytes, not for the whole file (a 1 GiB blob would otherwise hold
//! its sender's final answer for as long as the disk takes to write a gigabyte, and
//! gigabytes of dirty pages would pile up on a busy relay).

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sotto_proto::limits::BLOB_CHUNK_SIZE;
use sotto_proto::{BlobWriteId, Chunk};

use super::StoreError;
use super::kv::{BatchOp, Kv, KvStore};

/// Permissions of a blob file: the relay's user only, like the rest of its data.
const FILE_MODE: u32 = 0o600;

/// Blob files kept open between chunks: a transfer touches one blob thousands of times
/// in a row, and opening it for each chunk costs two system calls more. A few cover the
/// transfers of one moment; the least recently used is closed first.
const OPEN_BLOB_FILES: usize = 8;

/// Chunks between background write-backs of a blob file being uploaded (512 × 16 KiB,
/// about 8 MiB).
pub(super) const WRITEBACK_CHUNKS: u64 = 512;

/// Background write-backs running at once, across all blobs. One more is skipped, not
/// queued: the next span starts it, and the last chunk's sync covers everything anyway.
const MAX_WRITEBACKS: usize = 2;

/// Where a store keeps its chunks.
pub(crate) enum Chunks {
    /// As values in the key-value map (the in-memory engine).
    InKv,
    /// One file per blob in a directory, named by the blob's write id in hex.
    Files(BlobFiles),
}

/// The blob directory and the files open in it.
pub(crate) struct BlobFiles {
    dir: PathBuf,
    /// Most recently used last.
    open: std::sync::Mutex<Vec<(BlobWriteId, Arc<File>)>>,
    /// Background write-backs running now.
    writebacks: Arc<AtomicUsize>,
}

impl BlobFiles {
    fn path(&self, write_id: &BlobWriteId) -> PathBuf {
        self.dir.join(hex::encode(write_id.0))
    }

    /// The blob's file, opened (and created if `create`) unless it is open already.
    fn file(&self, write_id: &BlobWriteId, create: bool) -> std::io::Result<Arc<File>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = open.iter().position(|(w, _)| w == write_id) {
            let entry = open.remove(i);
            let file = entry.1.clone();
            open.push(entry);
            return Ok(file);
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .mode(FILE_MODE)
                .open(self.path(write_id))?,
        );
        if open.len() >= OPEN_BLOB_FILES {
            open.remove(0);
        }
        open.push((*write_id, file.clone()));
        Ok(file)
    }

    /// Closes the blob's file if it is open (before it is deleted).
    fn forget(&self, write_id: &BlobWriteId) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).retain(|(w, _)| w != write_id);
    }
}

impl Chunks {
    /// A blob directory, created if missing (owner-only).
    pub(crate) fn files(dir: &Path) -> Result<Self, StoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("creating the blob directory"))?;
        Ok(Self::Files(BlobFiles {
            dir: dir.to_path_buf(),
            open: std::sync::Mutex::default(),
            writebacks: Arc::default(),
        }))
    }
}

impl<K: Kv> KvStore<K> {
    /// Writes chunk `index` of a blob. For [`Chunks::InKv`] the chunk is returned as a
    /// batch write instead, to commit together with the blob's record.
    pub(super) fn write_chunk(
        &self,
        write_id: &BlobWriteId,
        index: u64,
        data: &Chunk,
    ) -> Result<Option<BatchOp>, StoreError> {
        match self.chunks() {
            Chunks::InKv => Ok(Some((chunk_key(write_id, index), Some(data.as_bytes().to_vec())))),
            Chunks::Files(files) => {
                let file = files.file(write_id, true).map_err(io("opening a blob file"))?;
                file.write_all_at(data.as_bytes(), index * BLOB_CHUNK_SIZE as u64)
                    .map_err(io("writing a blob file"))?;
                Ok(None)
            }
        }
    }

    /// Makes a blob's bytes and its directory entry durable (before its record says it
    /// is complete). Nothing to do for chunks in the map: they commit with the record.
    pub(super) async fn sync_chunks(&self, write_id: &BlobWriteId) -> Result<(), StoreError> {
        let Chunks::Files(files) = self.chunks() else { return Ok(()) };
        let file = files.file(write_id, false).map_err(io("syncing a blob file"))?;
        let dir = files.dir.clone();
        let synced = tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            file.sync_data().map_err(io("syncing a blob file"))?;
            File::open(&dir).and_then(|d| d.sync_all()).map_err(io("syncing the blob directory"))
        })
        .await;
        synced.map_err(|_| StoreError::Engine("blob sync task failed".into()))?
    }

    /// Starts writing a blob's file back to disk on a blocking thread, without waiting
    /// (see the module docs). Does nothing for chunks in the map, outside a runtime, or
    /// when [`MAX_WRITEBACKS`] are running; a failure is left for the final sync to meet.
    pub(super) fn start_writeback(&self, write_id: &BlobWriteId) {
        let Chunks::Files(files) = self.chunks() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let running = Running::enter(&files.writebacks, MAX_WRITEBACKS);
        let Some(running) = running else { return };
        let Ok(file) = files.file(write_id, false) else { return };
        runtime.spawn_blocking(move || {
            let _ = file.sync_data();
            drop(running);
        });
    }

    /// Chunk `index` of a blob, `len` bytes long.
    pub(super) fn read_chunk(&self, write_id: &BlobWriteId, index: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        match self.chunks() {
            Chunks::InKv => self.engine().get(&chunk_key(write_id, index))?.ok_or(StoreError::Corrupt),
            Chunks::Files(files) => {
                let file = files.file(write_id, false).map_err(missing_is_corrupt)?;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, index * BLOB_CHUNK_SIZE as u64).map_err(missing_is_corrupt)?;
                Ok(buf)
            }
        }
    }

    /// How much of a blob arrived: the record's count once complete (or for chunks in
    /// the map), else what its file holds in whole chunks.
    pub(super) fn chunks_received(&self, write_id: &BlobWriteId, recorded: u64, size: u64) -> u64 {
        let Chunks::Files(files) = self.chunks() else { return recorded };
        if recorded == size {
            return size;
        }
        // Never all of it: until the record says complete, the last chunk is still to
        // come (a crash after its write and before the record is written means sending
        // it again).
        let held = files.file(write_id, false).and_then(|f| f.metadata()).map_or(0, |m| m.len());
        let held = held.min(size.saturating_sub(1));
        held - held % BLOB_CHUNK_SIZE as u64
    }

    /// The removals of a blob's chunks, for the batch that deletes its record; files are
    /// removed by [`Self::remove_chunk_file`] once that batch is applied.
    pub(super) fn chunk_removals(&self, write_id: &BlobWriteId) -> Result<Vec<BatchOp>, StoreError> {
        match self.chunks() {
            Chunks::InKv => self.removals(chunk_key(write_id, 0), &chunk_key(write_id, u64::MAX)),
            Chunks::Files(_) => Ok(Vec::new()),
        }
    }

    /// Deletes a blob's file, if it has one.
    pub(super) fn remove_chunk_file(&self, write_id: &BlobWriteId) -> Result<(), StoreError> {
        let Chunks::Files(files) = self.chunks() else { return Ok(()) };
        files.forget(write_id);
        match std::fs::remove_file(files.path(write_id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing a blob file")(e)),
        }
    }

    /// Deletes blob files without a record (left by a crash between deleting a record
    /// and its file). Returns how many.
    pub(super) fn remove_orphan_files(&self, has_record: impl Fn(&BlobWriteId) -> bool) -> Result<u64, StoreError> {
        let Chunks::Files(files) = self.chunks() else { return Ok(0) };
        let mut removed = 0;
        for entry in std::fs::read_dir(&files.dir).map_err(io("listing the blob directory"))? {
            let entry = entry.map_err(io("listing the blob directory"))?;
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| hex::decode(n).ok()).and_then(|b| <[u8; 24]>::try_from(b).ok());
            // Anything that is not a blob file was not put there by the relay: leave it.
            let Some(id) = id else { continue };
            if !has_record(&BlobWriteId(id)) {
                self.remove_chunk_file(&BlobWriteId(id))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// A blob chunk's key in the map (for [`Chunks::InKv`]).
pub(super) fn chunk_key(write_id: &BlobWriteId, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + write_id.0.len() + 8);
    k.push(super::kv::T_CHUNK);
    k.extend_from_slice(&write_id.0);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Engine(format!("{what}: {}", e.kind()))
}

/// A blob file that is missing or short where its record says it is complete.
fn missing_is_corrupt(e: std::io::Error) -> StoreError {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::UnexpectedEof => StoreError::Corrupt,
        _ => io("reading a blob file")(e),
    }
}

/// One of a limited number of running tasks; leaving (on drop) frees its place.
struct Running(Arc<AtomicUsize>);

impl Running {
    /// A place among at most `max`, if one is free.
    fn enter(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        let taken = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        taken.ok().map(|_| Self(count.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_run_and_leaving_frees_a_place() {
        let count = Arc::new(AtomicUsize::new(0));
        let first = Running::enter(&count, 2);
        let second = Running::enter(&count, 2);
        assert!(first.is_some() && second.is_some());
        assert!(Running::enter(&count, 2).is_none());
        drop(first);
        assert!(Running::enter(&count, 2).is_some());
        assert_eq!(count.load(Ordering::Acquire), 1);
    }
}
