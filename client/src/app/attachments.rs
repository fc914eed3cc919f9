//! Sending files: upload once ([`Client::upload_file`]), then send the pointer to whoever
//! should get it ([`Client::send_attachment`]); [`Client::send_file`] does both for one
//! contact. A group send uploads once and sends the same pointer to every member.

use std::path::Path;

use sotto_proto::{BlobReadId, ErrorCode, RelayAddress, Request, Response};

use super::error::AppError;
use super::profile;
use super::{Client, pool::Backoff};
use crate::files::format::{FileKey, blob_len};

use crate::files::upload::{RATE_LIMIT_PAUSE, Upload};
use crate::files::{FileError, Progress, content_type};
use crate::wire::content::{AttachmentPointer, BlobAddress, Body, MAX_NAME_BYTES};

/// Attempts in a row that may fail without any progress before an upload gives up.
pub const MAX_STALLED_ATTEMPTS: u32 = 12;

impl Client {
    /// Encrypts and uploads the file at `path` to this profile's relay, as a blob that
    /// expires (48 hours on a default relay). Returns the pointer to send, inside the
    /// ratchet, to whoever should get the file. A dropped connection is resumed where the
    /// relay says it stopped. Memory stays bounded whatever the file's size.
    pub async fn upload_file(&mut self, path: &Path, progress: &dyn Progress) -> Result<AttachmentPointer, AppError> {
        let file = std::fs::File::open(path).map_err(FileError::io("opening the file"))?;
        let meta = file.metadata().map_err(FileError::io("reading the file"))?;
        if !meta.is_file() {
            return Err(FileError::Io {
                what: "not a regular file",
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            }
            .into());
        }
        let size = meta.len();
        if size > self.files.max_file_size {
            return Err(FileError::TooLarge { size, max: self.files.max_file_size }.into());
        }
        let relay = {
            let txn = self.profile.store.txn();
            profile::settings(&txn)?.relay
        };
        let key = crate::files::format::generate_key();
        let link = self.shared_link(&relay).await?;
        let created = link.request(Request::BlobCreate { size: blob_len(size) }).await;
        let (write_id, read_id) = match created {
            Ok(Response::BlobCreated { write_id, read_id }) => (write_id, read_id),
            Ok(Response::Error(code)) => return Err(FileError::Refused(code).into()),
            Ok(_) => return Err(FileError::Protocol.into()),
            Err(e) => {
                self.pool.drop_link(&relay);
                return Err(e.into());
            }
        };
        let mut upload = Upload::new(file, size, &key, write_id, read_id)?;
        progress.start(size, 0);
        let result = self.upload_with_resume(&relay, &mut upload, progress).await;
        progress.finish();
        result?;
        let address: RelayAddress = relay.parse().map_err(crate::wire::WireError::from)?;
        Ok(pointer(&address, &read_id, &key, upload.digest()?, size, path))
    }

    /// Runs `upload` until the relay holds it all, resuming after failures.
    async fn upload_with_resume(
        &mut self,
        relay: &str,
        upload: &mut Upload,
        progress: &dyn Progress,
    ) -> Result<(), AppError> {
        let mut received = 0;
        let mut stalled = 0;
        let mut backoff = Backoff::new();
        loop {
            let link = self.pool.shared(relay).await;
            let attempt = match link {
                Ok(link) => match status(&link, upload).await {
                    Ok(r) => {
                        if r > received {
                            stalled = 0;
                        }
                        received = r;
                        progress.set(upload.plain_done(received));
                        upload.run(&link, received, progress).await
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(FileError::Link(e)),
            };
            match attempt {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() || matches!(e, FileError::Refused(ErrorCode::BadOffset)) => {
                    stalled += 1;
                    if stalled > MAX_STALLED_ATTEMPTS {
                        return Err(e.into());
                    }
                    match e {
                        FileError::Link(_) => {
                            self.pool.drop_link(relay);
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                        FileError::Refused(ErrorCode::RateLimited) => tokio::time::sleep(RATE_LIMIT_PAUSE).await,
                        _ => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends a file's pointer to a contact, and records it in the conversation. The same
    /// pointer may go to several contacts (a group): each copy is encrypted separately.
    pub async fn send_attachment(&mut self, name: &str, pointer: &AttachmentPointer) -> Result<(), AppError> {
        let shown = crate::files::describe(&pointer.file_name, pointer.size);
        self.send_body(name, Body::Attachment(pointer.clone()), shown, None).await
    }

    /// Uploads the file at `path` and sends it to the contact `name`.
    pub async fn send_file(&mut self, name: &str, path: &Path, progress: &dyn Progress) -> Result<(), AppError> {
        // Refuse before uploading anything if the contact cannot get it now.
        {
            let txn = self.profile.store.txn();
            let contact = profile::contact_by_name(&txn, name)?;
            if contact.identity_changed {
                return Err(AppError::IdentityChanged(contact.name.clone()));
            }
            if contact.peer.is_none() {
                return Err(AppError::NotReady(contact.name.clone()));
            }
        }
        let pointer = self.upload_file(path, progress).await?;
        self.send_attachment(name, &pointer).await
    }
}

/// How much of the blob the relay holds (0 for a fresh upload on a fresh link).
async fn status(link: &crate::relay::RelayLink, upload: &Upload) -> Result<u64, FileError> {
    match link.request(Request::BlobStatus { write_id: upload.write_id }).await? {
        Response::BlobStatus { received, .. } => Ok(received),
        Response::Error(code) => Err(FileError::Refused(code)),
        _ => Err(FileError::Protocol),
    }
}

/// The pointer for an uploaded file. The name is the file's own (not its directory),
/// cut to [`MAX_NAME_BYTES`] on a character boundary.
fn pointer(
    relay: &RelayAddress,
    read_id: &BlobReadId,
    key: &FileKey,
    digest: [u8; 32],
    size: u64,
    path: &Path,
) -> AttachmentPointer {
    let mut file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if file_name.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !file_name.is_char_boundary(end) {
            end -= 1;
        }
        file_name.truncate(end);
    }
    AttachmentPointer {
        blob: Some(BlobAddress::new(relay, read_id)),
        key: key.as_bytes().to_vec(),
        digest: digest.to_vec(),
        size,
        content_type: content_type(&file_name).to_string(),
        file_name,
    }
}
