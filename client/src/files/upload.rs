//! Sending a file's encrypted segments to a relay.
//!
//! Segments are produced in order from the file (read through a buffer, never whole),
//! sealed, hashed into the blob digest once each (on the digest thread,
//! [`super::hasher`]), and put with up to [`WINDOW`] chunks in flight on the link, one put
//! in [`ANSWER_EVERY`] asking for an answer. An attempt ends at the first failure; the
//! caller asks the relay how much it holds (`BlobStatus`) and calls [`Upload::run`] again
//! from there. Sealing is deterministic by position, so a resent segment is
//! byte-identical.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::time::Duration;

use sotto_proto::{BlobReadId, BlobWriteId, Chunk, Request, Response};

use super::format::{FileKey, SEGMENT_CIPHER, SEGMENT_PLAIN, SegmentCipher};
use super::hasher::Hasher;
use super::{ANSWER_EVERY, FileError, Progress, WINDOW};
use crate::relay::{RelayLink, Replies};

/// Read buffer for the file: large reads, few system calls.
pub const READ_BUFFER: usize = 1 << 20;

/// How long to wait after the relay says a transfer goes faster than it allows: a
/// default relay's budget (2,000 frames a second) refills 200 frames in this time.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_millis(100);

/// An upload under way.
pub struct Upload {
    pub write_id: BlobWriteId,
    pub read_id: BlobReadId,
    /// The file's size, before padding.
    pub size: u64,
    cipher: SegmentCipher,
    reader: BufReader<File>,
    /// Where the reader stands in the file.
    pos: u64,
    /// The blob digest, hashed on its own thread; taken by [`Self::digest`].
    digest: Option<Hasher>,
    /// Segments hashed into the digest so far (always a prefix of the stream).
    hashed: u64,
    /// The file bytes of one segment, reused.
    read_buf: Vec<u8>,
}

impl Upload {
    /// An upload of `file` (of `size` bytes) under `key` into the blob `write_id`.
    pub fn new(
        file: File,
        size: u64,
        key: &FileKey,
        write_id: BlobWriteId,
        read_id: BlobReadId,
    ) -> Result<Self, FileError> {
        Ok(Self {
            write_id,
            read_id,
            size,
            cipher: SegmentCipher::new(key, size),
            reader: BufReader::with_capacity(READ_BUFFER, file),
            pos: 0,
            digest: Some(Hasher::start()?),
            hashed: 0,
            read_buf: vec![0; SEGMENT_PLAIN],
        })
    }

    /// Puts every segment from the relay's `received` offset on. Returns once the relay
    /// holds the whole blob; a failure ends the attempt (see the module docs).
    ///
    /// Only every [`ANSWER_EVERY`]th put and the last ask for an answer. The relay handles
    /// a connection's frames in order and a put only where the last one ended, so once
    /// one put is refused every later one is too: an answer that says the relay holds
    /// everything up to that put vouches for the unanswered puts before it, and a refusal
    /// anywhere shows up in the next answer asked for.
    pub async fn run(&mut self, link: &RelayLink, received: u64, progress: &dyn Progress) -> Result<(), FileError> {
        if received % SEGMENT_CIPHER as u64 != 0 {
            return Err(FileError::Protocol);
        }
        let count = self.cipher.count();
        let mut next = received / SEGMENT_CIPHER as u64;
        if next > self.hashed {
            // The relay claims more than was ever sent.
            return Err(FileError::Protocol);
        }
        // The puts waiting for an answer, with the segment index each one ends before and
        // the blob offset where it ends.
        let mut answers: VecDeque<(Replies, u64, u64)> = VecDeque::with_capacity(WINDOW / ANSWER_EVERY as usize + 1);
        let mut acked = next;
        let mut offset = received;
        while next < count || !answers.is_empty() {
            while next < count && next - acked < WINDOW as u64 {
                let segment = self.segment(next)?;
                let len = segment.len() as u64;
                let data = Chunk::new(segment).map_err(|_| FileError::Crypto)?;
                let first_time = next == self.hashed;
                let index = next;
                next += 1;
                let answer = next % ANSWER_EVERY == 0 || next == count;
                let put = Request::BlobPut { write_id: self.write_id, offset, answer, data };
                offset += len;
                // The digest takes the chunk after it is queued: an unanswered put comes
                // back from the link, an answered one (one in 32) is copied.
                let for_digest = if answer {
                    let copy = first_time.then(|| put.clone());
                    answers.push_back((link.request_many(put, 1).await?, next, offset));
                    copy
                } else {
                    Some(link.send_unanswered(put).await?)
                };
                if let Some(Request::BlobPut { data, .. }) = for_digest {
                    self.hash(index, data.into_inner())?;
                }
            }
            let Some((mut replies, end, end_offset)) = answers.pop_front() else { break };
            match replies.next().await? {
                Response::BlobStatus { received, .. } if received == end_offset => {
                    acked = end;
                    progress.set(self.plain_done(received));
                }
                // Refused, by this put or one before it (the rate limit, a full disk, an
                // expired blob): the caller asks where the relay stands and goes on.
                Response::Error(code) => return Err(FileError::Refused(code)),
                _ => return Err(FileError::Protocol),
            }
        }
        Ok(())
    }

    /// The blob's digest, once every segment has been produced. Asked once.
    pub fn digest(&mut self) -> Result<[u8; 32], FileError> {
        if self.hashed != self.cipher.count() {
            return Err(FileError::Protocol);
        }
        self.digest.take().ok_or(FileError::Protocol)?.finish()
    }

    /// File bytes covered by `blob_bytes` of the blob, for progress.
    pub fn plain_done(&self, blob_bytes: u64) -> u64 {
        (blob_bytes / SEGMENT_CIPHER as u64 * SEGMENT_PLAIN as u64).min(self.size)
    }

    /// Reads, pads and seals segment `index`.
    fn segment(&mut self, index: u64) -> Result<Vec<u8>, FileError> {
        let start = index * SEGMENT_PLAIN as u64;
        let from_file = self.cipher.file_bytes_in(index);
        if self.pos != start {
            self.reader.seek(SeekFrom::Start(start)).map_err(FileError::io("reading the file"))?;
            self.pos = start;
        }
        let file_bytes = self.read_buf.get_mut(..from_file).ok_or(FileError::Crypto)?;
        self.reader.read_exact(file_bytes).map_err(|e| match e.kind() {
            // The file shrank while it was being sent.
            std::io::ErrorKind::UnexpectedEof => {
                FileError::Io { what: "the file changed while it was sent", source: e }
            }
            _ => FileError::Io { what: "reading the file", source: e },
        })?;
        self.pos += from_file as u64;
        self.cipher.seal(index, file_bytes).map_err(|_| FileError::Crypto)
    }

    /// Adds segment `index` to the digest if it is the next one never hashed (a segment
    /// sent again after a failure was hashed the first time).
    fn hash(&mut self, index: u64, segment: Vec<u8>) -> Result<(), FileError> {
        if index != self.hashed {
            return Ok(());
        }
        self.digest.as_mut().ok_or(FileError::Protocol)?.update(segment)?;
        self.hashed += 1;
        Ok(())
    }
}
