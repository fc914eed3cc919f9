//! Files sent to a group.
//!
//! The sender uploads the file once ([`Client::upload_file`]: one blob, one fresh key) and
//! fans the same pointer out to every other member ([`Client::group_send`]), each copy
//! inside its own pairwise ratchet, exactly like a text. A member that receives it files it
//! as a pending download through the same machinery as a file from a contact
//! (`app::downloads`: same checks, same temporary file, same resume); only the record the
//! outcome is written into differs: the group's history entry instead of a conversation.

use std::path::{Path, PathBuf};

use super::record::{self, GroupEntry, GroupRecord};
use super::state::GroupId;
use super::{FanOutReport, GroupError};
use crate::app::error::AppError;
use crate::app::incoming::Notice;
use crate::app::records::Contact;
use crate::app::{Client, downloads};
use crate::files::{FileError, FileSettings, Progress, describe};
use crate::store::Txn;
use crate::store::signal::ProtocolTxn;
use crate::wire::content::{AttachmentPointer, Body};

/// Where a file sent to a group stands (inside [`Notice::GroupFile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileState {
    /// The pointer arrived; the file is being downloaded.
    Downloading,
    /// Downloaded, checked and saved at this path.
    Saved(PathBuf),
    /// Not received (altered, cut short, expired, too large), and why.
    Failed(String),
}

impl Client {
    /// Uploads the file at `path` once and sends its pointer to every other member of
    /// `group`, each copy encrypted over the pairwise session (see [`Self::group_send`]).
    /// Members whose relay is out of reach get their copy later, from the outbox.
    pub async fn group_send_file(
        &mut self,
        group: &str,
        path: &Path,
        progress: &dyn Progress,
    ) -> Result<FanOutReport, AppError> {
        // Refuse before uploading anything if the group cannot take it.
        {
            let txn = self.profile.store.txn();
            let g = record::by_name(&txn, group)?;
            if !g.membership().is_member(&g.me) {
                return Err(GroupError::NotMember(g.name.clone()).into());
            }
        }
        let pointer = self.upload_file(path, progress).await?;
        self.group_send(group, Body::Attachment(pointer)).await
    }
}

/// A file from the member `sender` to the group `rec`, in the transaction that consumes
/// the envelope: its history entry, and a pending download that will fill in how it ended.
pub(super) fn on_file(
    ptxn: &ProtocolTxn<'_>,
    rec: &mut GroupRecord,
    sender: &Contact,
    pointer: &AttachmentPointer,
    (text, (sent_at_ms, expires)): (String, (u64, Option<u64>)),
    settings: &FileSettings,
) -> Result<Notice, AppError> {
    let base = describe(&pointer.file_name, pointer.size);
    let too_large = (pointer.size > settings.max_file_size)
        .then(|| FileError::TooLarge { size: pointer.size, max: settings.max_file_size }.to_string());
    let entry = GroupEntry {
        outgoing: false,
        from: sender.name.clone(),
        text,
        file_name: Some(pointer.file_name.clone()),
        sent_at_ms,
        file_note: Some(match &too_large {
            Some(reason) => format!("{base} — {reason}"),
            None => base,
        }),
    };
    let mut txn = ptxn.txn()?;
    let key = record::put_entry(&mut txn, rec, &entry, expires)?;
    let state = match too_large {
        Some(reason) => FileState::Failed(reason),
        None => {
            downloads::file_download(&mut txn, sender.id, key, Some(rec.id), pointer)?;
            FileState::Downloading
        }
    };
    Ok(Notice::GroupFile {
        group: rec.name.clone(),
        from: sender.name.clone(),
        file_name: pointer.file_name.clone(),
        size: pointer.size,
        state,
    })
}

/// Writes how a group file's download ended into its history entry (if the entry is
/// still there). Returns the group's name here (empty if the group is gone).
pub(crate) fn close_entry(txn: &mut Txn<'_>, group: &GroupId, key: &[u8], note: String) -> Result<String, AppError> {
    if let Some(mut e) = record::entry_at(txn, key)? {
        e.file_note = Some(note);
        record::update_entry(txn, key, &e)?;
    }
    Ok(record::get(txn, group)?.map(|g| g.name.clone()).unwrap_or_default())
}

impl Notice {
    /// Whether this notice means a new download was filed (so the download worker looks).
    pub(crate) fn starts_download(&self) -> bool {
        matches!(self, Notice::FileIncoming { .. } | Notice::GroupFile { state: FileState::Downloading, .. })
    }
}
