//! Fetching a blob, checking it, and saving the file.
//!
//! The file is written to a temporary name in the downloads directory as it arrives, each
//! segment authenticated before it is written. A download that stops (link dropped,
//! program ended) resumes from what the temporary file holds: the segments already there
//! are sealed again (sealing is deterministic) to rebuild the digest, and fetching goes
//! on from the next offset. Only when every segment is in, the last one marked last, the
//! size right and the digest equal to the sender's, is the file synced and linked under
//! its final name, which is never overwritten. A file that fails a check is deleted.
//! While it arrives, the file is written back to disk in the background every
//! [`WRITEBACK_SEGMENTS`] segments, so the final sync is short.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sotto_proto::{BlobReadId, Request, Response};

use super::format::{FileKey, SEGMENT_CIPHER, SEGMENT_PLAIN, SegmentCipher, blob_len};
use super::hasher::Hasher;
use super::{FileError, GET_CHUNKS, Progress, WINDOW, names};
use crate::relay::{RelayLink, Replies};

/// Write buffer for the temporary file.
pub const WRITE_BUFFER: usize = 1 << 20;

/// Segments between background write-backs of the download file (512 × 16 KiB, about
/// 8 MiB): the final sync then waits for a few megabytes, not for the whole file.
pub const WRITEBACK_SEGMENTS: u64 = 512;

/// Prefix of temporary download files (hidden, and never a name a sender can pick:
/// sanitized names never start with a dot).
pub const TEMP_PREFIX: &str = ".sotto-download-";

/// What to fetch.
pub struct Job {
    pub read_id: BlobReadId,
    pub key: FileKey,
    pub digest: [u8; 32],
    /// The file's size, before padding.
    pub size: u64,
    /// The temporary file, in the downloads directory.
    pub temp: PathBuf,
}

/// Fetches the blob into `job.temp`, resuming from what it holds. On success the
/// temporary file holds the checked file, synced to disk. `fetched` counts the segments
/// this attempt brought in (so a caller retrying after a failure knows if it moved).
pub async fn fetch(link: &RelayLink, job: &Job, progress: &dyn Progress, fetched: &mut u64) -> Result<(), FileError> {
    let cipher = SegmentCipher::new(&job.key, job.size);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&job.temp)
        .map_err(FileError::io("opening the download file"))?;
    let mut digest = Hasher::start()?;
    let first = resume_point(&mut file, &cipher, job.size, &mut digest)?;
    progress.start(job.size, (first * SEGMENT_PLAIN as u64).min(job.size));
    let count = cipher.count();
    let expected_blob = blob_len(job.size);
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut writeback = Writeback::default();
    // Ranged reads in flight, oldest first, with how many chunks each still owes.
    let mut reads: VecDeque<(Replies, u64)> = VecDeque::with_capacity(WINDOW / GET_CHUNKS as usize);
    let mut next = first;
    let mut done = first;
    while done < count {
        while next < count && next - done < WINDOW as u64 {
            let chunks = (count - next).min(u64::from(GET_CHUNKS));
            let request = Request::BlobGet {
                read_id: job.read_id,
                offset: next * SEGMENT_CIPHER as u64,
                count: u16::try_from(chunks).map_err(|_| FileError::Protocol)?,
            };
            reads.push_back((link.request_many(request, chunks as usize).await?, chunks));
            next += chunks;
        }
        let Some((replies, owed)) = reads.front_mut() else { break };
        let answer = replies.next().await?;
        *owed -= 1;
        if *owed == 0 {
            reads.pop_front();
        }
        let want = done * SEGMENT_CIPHER as u64;
        let data = match answer {
            Response::Error(sotto_proto::ErrorCode::RateLimited) => {
                // Faster than the relay allows: after a pause, ask again from here
                // (reads have no side effects; answers to the dropped reads are ignored).
                reads.clear();
                tokio::time::sleep(super::upload::RATE_LIMIT_PAUSE).await;
                next = done;
                continue;
            }
            Response::BlobData { offset, size, data } if offset == want => {
                if size < expected_blob {
                    return Err(FileError::Truncated);
                }
                if size > expected_blob {
                    return Err(FileError::Tampered);
                }
                data.into_inner()
            }
            // The relay's copy ends before the sender's did.
            Response::Error(sotto_proto::ErrorCode::BadOffset) => return Err(FileError::Truncated),
            Response::Error(code) => return Err(FileError::Refused(code)),
            _ => return Err(FileError::Protocol),
        };
        // A copy for the digest thread; this one is opened in place.
        digest.update(data.clone())?;
        let mut segment = data;
        cipher.open(done, &mut segment)?;
        out.write_all(&segment).map_err(FileError::io("writing the download file"))?;
        done += 1;
        if done % WRITEBACK_SEGMENTS == 0 {
            writeback.start(&mut out)?;
        }
        *fetched += 1;
        progress.set((done * SEGMENT_PLAIN as u64).min(job.size));
    }
    if digest.finish()? != job.digest {
        return Err(FileError::DigestMismatch);
    }
    let file =
        out.into_inner().map_err(|e| FileError::Io { what: "writing the download file", source: e.into_error() })?;
    file.sync_all().map_err(FileError::io("syncing the download file"))?;
    Ok(())
}

/// Writes the download file back to disk on a blocking thread now and then, one at a
/// time, without waiting for it.
#[derive(Default)]
struct Writeback(Option<tokio::task::JoinHandle<()>>);

impl Writeback {
    /// Hands what is written so far to the file, and starts syncing it unless the last
    /// sync is still running. A failed sync is left for the final one to meet.
    fn start(&mut self, out: &mut BufWriter<File>) -> Result<(), FileError> {
        if self.0.as_ref().is_some_and(|task| !task.is_finished()) {
            return Ok(());
        }
        out.flush().map_err(FileError::io("writing the download file"))?;
        let file = out.get_ref().try_clone().map_err(FileError::io("writing the download file"))?;
        self.0 = Some(tokio::task::spawn_blocking(move || {
            let _ = file.sync_data();
        }));
        Ok(())
    }
}

/// The first segment still to fetch, the segments before it added to `digest`. The
/// temporary file is cut back to whole segments.
fn resume_point(file: &mut File, cipher: &SegmentCipher, size: u64, digest: &mut Hasher) -> Result<u64, FileError> {
    let have = file.metadata().map_err(FileError::io("reading the download file"))?.len();
    let whole = (have / SEGMENT_PLAIN as u64).min(cipher.count());
    // Keep only segments that end inside the file; the one holding the file's end is
    // fetched again (it is also where padding starts).
    let keep = if whole * SEGMENT_PLAIN as u64 > size { size / SEGMENT_PLAIN as u64 } else { whole };
    let keep_bytes = keep * SEGMENT_PLAIN as u64;
    file.set_len(keep_bytes).map_err(FileError::io("resuming the download file"))?;
    file.seek(SeekFrom::Start(0)).map_err(FileError::io("resuming the download file"))?;
    let mut reader = std::io::BufReader::with_capacity(WRITE_BUFFER, &mut *file);
    let mut buf = vec![0u8; SEGMENT_PLAIN];
    for index in 0..keep {
        let file_bytes = buf.get_mut(..cipher.file_bytes_in(index)).ok_or(FileError::Crypto)?;
        reader.read_exact(file_bytes).map_err(FileError::io("resuming the download file"))?;
        digest.update(cipher.seal(index, file_bytes).map_err(|_| FileError::Crypto)?)?;
    }
    drop(reader);
    file.seek(SeekFrom::Start(keep_bytes)).map_err(FileError::io("resuming the download file"))?;
    Ok(keep)
}

/// Gives the checked temporary file its final name in `dir`: the sanitized `wanted`
/// name, with a suffix if that is taken. Never replaces an existing file.
pub fn finish(temp: &Path, dir: &Path, wanted: &str) -> Result<PathBuf, FileError> {
    let name = names::sanitize(wanted);
    for _ in 0..names::MAX_COLLISION_SUFFIX {
        let target = names::unused_path(dir, &name).ok_or_else(|| FileError::NoFreeName(dir.to_path_buf()))?;
        // A hard link fails if the name exists, so a file that appeared since the check
        // is never overwritten; the temporary name is removed after.
        match std::fs::hard_link(temp, &target) {
            Ok(()) => {
                std::fs::remove_file(temp).map_err(FileError::io("renaming the download"))?;
                sync_dir(dir);
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) => {
                // A file system without hard links: rename (checked just above).
                std::fs::rename(temp, &target).map_err(FileError::io("renaming the download"))?;
                sync_dir(dir);
                return Ok(target);
            }
        }
    }
    Err(FileError::NoFreeName(dir.to_path_buf()))
}

/// The temporary file for download `id` in `dir`.
pub fn temp_path(dir: &Path, id: &[u8]) -> PathBuf {
    dir.join(format!("{TEMP_PREFIX}{}", hex::encode(id)))
}

/// Makes a new name durable (best effort: not every platform can sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
