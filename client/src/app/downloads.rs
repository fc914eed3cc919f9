//! Receiving files. A pointer that arrives is committed with the message that carries
//! it, as a pending download, before the envelope is acknowledged; the download then
//! runs in its own task so `listen` goes on showing messages. When it ends, the pending
//! record becomes a saved (or failed) entry in the conversation (or, for a file sent to a
//! group, in the group's history: see `group::files`). Pending downloads left by a program
//! that stopped are resumed by the next one that polls.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sotto_proto::{BlobReadId, ErrorCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::Client;
use super::error::AppError;
use super::group::FileState;
use super::group::state::GroupId;
use super::incoming::Notice;
use super::pool::Backoff;
use super::profile;
use super::records::{self, Contact, ContactId, Delivery, Direction, Message};
use crate::files::download::{self, Job};
use crate::files::format::FileKey;
use crate::files::{FileError, FileSettings, NoProgress, describe};
use crate::store::{Table, Txn};
use crate::wire::content::AttachmentPointer;

/// How often the pending downloads are looked for again when some are waiting to retry.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(2);

/// Where pending downloads are filed in the profile (under a keyed hash of this label).
const PENDING_LABEL: &[u8] = b"pending-downloads";

/// A download not yet finished. Holds the file's key: zeroized, never printed.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub(super) struct PendingDownload {
    id: [u8; 16],
    contact: ContactId,
    message_key: Vec<u8>,
    relay: String,
    read_id: [u8; 24],
    key: [u8; 32],
    digest: [u8; 32],
    size: u64,
    file_name: String,
    /// For a file sent to a group: the group, whose history entry `message_key` names.
    #[serde(default)]
    group: Option<GroupId>,
}

/// How a download task ended.
pub(super) struct Done {
    id: [u8; 16],
    result: Result<(), FileError>,
    /// Whether it fetched anything (a retry after progress starts its backoff afresh).
    progressed: bool,
}

/// Downloads running in this process.
pub(super) struct Transfers {
    running: HashMap<[u8; 16], JoinHandle<()>>,
    retry: HashMap<[u8; 16], (Instant, Backoff)>,
    scan_at: Option<Instant>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
}

impl Transfers {
    pub(super) fn new() -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        // Scan at the first poll: a previous run may have left downloads pending.
        Self { running: HashMap::new(), retry: HashMap::new(), scan_at: Some(Instant::now()), done_tx, done_rx }
    }

    /// The next finished download (never resolves while none runs).
    pub(super) async fn next_done(&mut self) -> Option<Done> {
        if self.running.is_empty() {
            std::future::pending::<()>().await;
        }
        self.done_rx.recv().await
    }

    /// Whether any download runs or waits.
    pub(super) fn busy(&self) -> bool {
        !self.running.is_empty() || self.scan_at.is_some()
    }
}

impl Drop for Transfers {
    fn drop(&mut self) {
        // A download outlives nothing: the next program resumes it from its temporary file.
        for (_, task) in self.running.drain() {
            task.abort();
        }
    }
}

/// Files a received pointer as a pending download and its message as "pending", in the
/// transaction that consumes the envelope. Returns what to tell the user.
pub(super) fn record_incoming(
    txn: &mut Txn<'_>,
    contact: &mut Contact,
    (sent_at_ms, seq, expires): (u64, u64, Option<u64>),
    pointer: &AttachmentPointer,
    settings: &FileSettings,
) -> Result<Notice, AppError> {
    let text = describe(&pointer.file_name, pointer.size);
    let message =
        Message { direction: Direction::In, text: text.clone(), sent_at_ms, seq, delivery: Delivery::Received };
    let key = profile::message_key(txn, &contact.id, contact.next_local);
    contact.next_local += 1;
    let file_name = pointer.file_name.clone();
    if pointer.size > settings.max_file_size {
        let reason = FileError::TooLarge { size: pointer.size, max: settings.max_file_size }.to_string();
        let mut failed = message;
        failed.text = format!("{text} — {reason}");
        super::defences::expiry::put_until(txn, &key, &failed, expires)?;
        return Ok(Notice::FileFailed { from: contact.name.clone(), file_name, reason });
    }
    // Under a timer the entry disappears like a text would; the saved file itself stays
    // in the downloads directory, where the user put it out of Sotto's hands.
    super::defences::expiry::put_until(txn, &key, &message, expires)?;
    file_download(txn, contact.id, key, None, pointer)?;
    Ok(Notice::FileIncoming { from: contact.name.clone(), file_name, size: pointer.size })
}

/// Files a pending download of `pointer`, sent by `contact`, whose outcome goes into the
/// record at `message_key`: a conversation message, or the entry of `group`'s history.
/// The caller has checked the size limit.
pub(super) fn file_download(
    txn: &mut Txn<'_>,
    contact: ContactId,
    message_key: Vec<u8>,
    group: Option<GroupId>,
    pointer: &AttachmentPointer,
) -> Result<(), AppError> {
    // `decode_content` checked the blob address, key and digest lengths.
    let blob = pointer.blob.as_ref().ok_or(crate::wire::WireError::MissingField("attachment.blob"))?;
    let (relay, read_id) = blob.to_parts()?;
    let mut id = [0u8; 16];
    rand::rng().fill_bytes(&mut id);
    let pending = PendingDownload {
        id,
        contact,
        message_key,
        relay: relay.to_string(),
        read_id: read_id.0,
        key: crate::wire::content::fixed("attachment.key", &pointer.key)?,
        digest: crate::wire::content::fixed("attachment.digest", &pointer.digest)?,
        size: pointer.size,
        file_name: pointer.file_name.clone(),
        group,
    };
    put_pending(txn, &pending)
}

impl Client {
    /// Where files go and how large they may be.
    pub fn set_file_settings(&mut self, settings: FileSettings) {
        self.files = settings;
    }

    /// Whether downloads are running or waiting to be retried.
    pub fn downloads_busy(&self) -> bool {
        self.transfers.busy()
    }

    /// Starts pending downloads that are not running and whose retry time has come.
    pub(super) async fn start_downloads(&mut self) -> Vec<Notice> {
        let now = Instant::now();
        if self.transfers.scan_at.is_none_or(|t| t > now) {
            return Vec::new();
        }
        self.transfers.scan_at = None;
        let pending = {
            let txn = self.profile.store.txn();
            match all_pending(&txn) {
                Ok(p) => p,
                Err(e) => return vec![Notice::RelayTrouble(e.to_string())],
            }
        };
        let mut notices = Vec::new();
        for p in pending {
            if self.transfers.running.contains_key(&p.id) {
                continue;
            }
            if let Some((at, _)) = self.transfers.retry.get(&p.id)
                && *at > now
            {
                self.schedule_scan(*at);
                continue;
            }
            if let Err(reason) = self.allowed_relay(&p) {
                notices.extend(self.end_download(&p.id, Err(reason)));
                continue;
            }
            match self.shared_link(&p.relay).await {
                Ok(link) => self.spawn_download(&p, link),
                Err(e) => {
                    self.pool.drop_link(&p.relay);
                    self.retry_later(&p.id);
                    notices.push(Notice::RelayTrouble(e.to_string()));
                }
            }
        }
        notices
    }

    fn spawn_download(&mut self, p: &PendingDownload, link: Arc<crate::relay::RelayLink>) {
        let dir = self.files.downloads.clone();
        let job = Job {
            read_id: BlobReadId(p.read_id),
            key: FileKey::from_bytes(p.key),
            digest: p.digest,
            size: p.size,
            temp: download::temp_path(&dir, &p.id),
        };
        let progress = self.files.progress.as_ref().map(|f| f(&p.file_name, p.size));
        let tx = self.transfers.done_tx.clone();
        let id = p.id;
        let task = tokio::spawn(async move {
            let mut fetched = 0;
            let result = match std::fs::create_dir_all(&dir) {
                Ok(()) => match &progress {
                    Some(bar) => download::fetch(&link, &job, bar.as_ref(), &mut fetched).await,
                    None => download::fetch(&link, &job, &NoProgress, &mut fetched).await,
                },
                Err(e) => Err(FileError::Io { what: "creating the downloads folder", source: e }),
            };
            if let Some(bar) = &progress {
                bar.finish();
            }
            let _ = tx.send(Done { id, result, progressed: fetched > 0 });
        });
        self.transfers.running.insert(id, task);
    }

    /// A download task ended: what it ended with, for the user.
    pub(super) fn download_finished(&mut self, done: Done) -> Vec<Notice> {
        self.transfers.running.remove(&done.id);
        if done.progressed
            && let Some((_, backoff)) = self.transfers.retry.get_mut(&done.id)
        {
            backoff.reset();
        }
        self.end_download(&done.id, done.result)
    }

    /// Saves a finished download, or records why it failed, or schedules a retry.
    fn end_download(&mut self, id: &[u8; 16], result: Result<(), FileError>) -> Vec<Notice> {
        let pending = {
            let txn = self.profile.store.txn();
            match get_pending(&txn, id) {
                Ok(Some(p)) => p,
                Ok(None) => return Vec::new(),
                Err(e) => return vec![Notice::RelayTrouble(e.to_string())],
            }
        };
        let temp = download::temp_path(&self.files.downloads, id);
        let outcome = result.and_then(|()| download::finish(&temp, &self.files.downloads, &pending.file_name));
        let outcome = match outcome {
            Err(e) if e.is_transient() => {
                if matches!(e, FileError::Link(_)) {
                    self.pool.drop_link(&pending.relay);
                }
                self.retry_later(id);
                return Vec::new();
            }
            Err(e) => {
                // Nothing half-checked is kept.
                let _ = std::fs::remove_file(&temp);
                Err(match e {
                    FileError::Refused(ErrorCode::NoBlob) => "the file is no longer on the relay (it expired)".into(),
                    e => e.to_string(),
                })
            }
            Ok(path) => Ok(path),
        };
        self.transfers.retry.remove(id);
        match self.close_pending(&pending, &outcome) {
            Ok(n) => vec![n],
            Err(e) => vec![Notice::RelayTrouble(e.to_string())],
        }
    }

    /// Removes the pending record and updates the message, in one transaction.
    fn close_pending(
        &mut self,
        p: &PendingDownload,
        outcome: &Result<std::path::PathBuf, String>,
    ) -> Result<Notice, AppError> {
        let mut txn = self.profile.store.txn();
        let from = profile::contact(&txn, &p.contact)?.map(|c| c.name.clone()).unwrap_or_default();
        let base = describe(&p.file_name, p.size);
        let text = match outcome {
            Ok(path) => format!("{base} saved to {}", path.display()),
            Err(reason) => format!("{base} — {reason}"),
        };
        let group = match &p.group {
            Some(gid) => Some(super::group::files::close_entry(&mut txn, gid, &p.message_key, text)?),
            None => {
                if let Some(mut m) = profile::message(&txn, &p.message_key)? {
                    m.text = text;
                    profile::put_message(&mut txn, &p.message_key, &m)?;
                }
                None
            }
        };
        txn.remove(Table::Conversations, &pending_key(&txn, &p.id));
        txn.commit()?;
        let (file_name, size) = (p.file_name.clone(), p.size);
        if let Some(group) = group {
            let state = match outcome {
                Ok(path) => FileState::Saved(path.clone()),
                Err(reason) => FileState::Failed(reason.clone()),
            };
            return Ok(Notice::GroupFile { group, from, file_name, size, state });
        }
        Ok(match outcome {
            Ok(path) => Notice::FileSaved { from, file_name, size, path: path.clone() },
            Err(reason) => Notice::FileFailed { from, file_name, reason: reason.clone() },
        })
    }

    fn retry_later(&mut self, id: &[u8; 16]) {
        let entry = self.transfers.retry.entry(*id).or_insert_with(|| (Instant::now(), Backoff::new()));
        entry.0 = Instant::now() + entry.1.next_delay();
        let at = entry.0;
        self.schedule_scan(at);
    }

    fn schedule_scan(&mut self, at: Instant) {
        let at = at.max(Instant::now() + Duration::from_millis(1)).min(Instant::now() + RESCAN_INTERVAL);
        self.transfers.scan_at = Some(self.transfers.scan_at.map_or(at, |t| t.min(at)));
    }

    /// Marks that a new pending download was filed.
    pub(super) fn downloads_changed(&mut self) {
        self.transfers.scan_at = Some(Instant::now());
    }

    /// Files are fetched only from relays this profile already uses (its own, or the
    /// sender's mailbox relay): a pointer cannot make it connect anywhere a contact likes.
    fn allowed_relay(&mut self, p: &PendingDownload) -> Result<(), FileError> {
        let txn = self.profile.store.txn();
        let known = profile::settings(&txn).map(|s| s.relay == p.relay).unwrap_or(false)
            || profile::own_mailboxes(&txn).map(|m| m.iter().any(|m| m.relay == p.relay)).unwrap_or(false)
            || profile::contact(&txn, &p.contact)
                .ok()
                .flatten()
                .and_then(|c| c.peer.as_ref().map(|peer| peer.relay == p.relay))
                .unwrap_or(false);
        if known { Ok(()) } else { Err(FileError::BadPointer("the file is on a relay this profile does not use")) }
    }

    /// The time the next download scan is due, if any.
    pub(super) fn next_download_scan(&self) -> Option<Instant> {
        self.transfers.scan_at
    }
}

fn pending_prefix(txn: &Txn<'_>) -> [u8; 32] {
    txn.index_key(Table::Conversations, PENDING_LABEL)
}

fn pending_key(txn: &Txn<'_>, id: &[u8; 16]) -> Vec<u8> {
    let mut k = pending_prefix(txn).to_vec();
    k.extend_from_slice(id);
    k
}

fn put_pending(txn: &mut Txn<'_>, p: &PendingDownload) -> Result<(), AppError> {
    let key = pending_key(txn, &p.id);
    txn.put(Table::Conversations, &key, &records::encode(p)?);
    Ok(())
}

fn get_pending(txn: &Txn<'_>, id: &[u8; 16]) -> Result<Option<PendingDownload>, AppError> {
    match txn.get(Table::Conversations, &pending_key(txn, id))? {
        Some(raw) => Ok(Some(records::decode(&raw)?)),
        None => Ok(None),
    }
}

fn all_pending(txn: &Txn<'_>) -> Result<Vec<PendingDownload>, AppError> {
    let prefix = pending_prefix(txn);
    txn.scan_table(Table::Conversations)?
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && k.len() == prefix.len() + 16)
        .map(|(_, v)| Ok(records::decode(v)?))
        .collect()
}
