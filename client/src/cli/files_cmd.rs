//! `sotto send NAME --file PATH`, and how `listen` shows files.

use std::path::Path;
use std::rc::Rc;

use sotto_client::app::Notice;
use sotto_client::files::human_size;

use super::holder::Holder;
use super::{Out, commands, files, text};

/// Uploads the file (with a progress bar on a terminal) and sends it.
pub async fn send_file(h: &Rc<Holder>, name: &str, path: &Path, out: &dyn Out) -> u8 {
    let progress = files::progress(&files::upload_label(path), out.is_terminal());
    let mut c = h.client.lock().await;
    match c.send_file(name, path, progress.as_ref()).await {
        Ok(()) => {
            out.err(&text::file_sent(&files::shown(path)));
            0
        }
        Err(e) => commands::fail(out, &e),
    }
}

/// Whether a notice is about a received file.
pub fn is_file_notice(n: &Notice) -> bool {
    matches!(
        n,
        Notice::FileIncoming { .. } | Notice::FileSaved { .. } | Notice::FileFailed { .. } | Notice::GroupFile { .. }
    )
}

/// Shows a file notice: saved files on stdout (text or JSON), the rest on stderr.
pub fn show(notice: &Notice, json: bool, out: &dyn Out) {
    match notice {
        Notice::FileIncoming { from, file_name, size } => {
            out.err(&text::file_incoming(from, file_name, &human_size(*size)));
        }
        Notice::FileSaved { from, file_name, size, path } => {
            let path = path.display().to_string();
            if json {
                let v = serde_json::json!({ "from": from, "file": file_name, "size": size, "path": path });
                out.out(&v.to_string());
            } else {
                out.out(&text::file_saved(from, file_name, &human_size(*size), &path));
            }
        }
        Notice::FileFailed { from, file_name, reason } => {
            if json {
                let v = serde_json::json!({ "from": from, "file": file_name, "error": reason });
                out.out(&v.to_string());
            }
            out.err(&text::file_failed(from, file_name, reason));
        }
        _ => {}
    }
}
