//! `sotto group send GROUP --file PATH`, and how `listen` shows files sent to a group.

use std::path::Path;
use std::rc::Rc;

use sotto_client::app::{FileState, Notice};
use sotto_client::files::human_size;

use super::holder::Holder;
use super::{Out, commands, files, text};

/// Uploads the file once (with a progress bar on a terminal) and sends it to every member.
pub async fn send_file(h: &Rc<Holder>, group: &str, path: &Path, out: &dyn Out) -> u8 {
    let progress = files::progress(&files::upload_label(path), out.is_terminal());
    let mut c = h.client.lock().await;
    match c.group_send_file(group, path, progress.as_ref()).await {
        Ok(r) => {
            out.err(&text::group_file_sent(&files::shown(path), r.copies));
            super::group::report(&r, out);
            0
        }
        Err(e) => commands::fail(out, &e),
    }
}

/// Shows a group file notice: saved files on stdout (text or JSON), the rest on stderr,
/// as for a file from a contact.
pub fn show(notice: &Notice, json: bool, out: &dyn Out) {
    let Notice::GroupFile { group, from, file_name, size, state } = notice else { return };
    match state {
        FileState::Downloading => out.err(&text::group_file_incoming(group, from, file_name, &human_size(*size))),
        FileState::Saved(path) => {
            let path = path.display().to_string();
            if json {
                let v = serde_json::json!({
                    "group": group, "from": from, "file": file_name, "size": size, "path": path,
                });
                out.out(&v.to_string());
            } else {
                out.out(&text::group_file_saved(group, from, file_name, &human_size(*size), &path));
            }
        }
        FileState::Failed(reason) => {
            if json {
                let v = serde_json::json!({ "group": group, "from": from, "file": file_name, "error": reason });
                out.out(&v.to_string());
            }
            out.err(&text::group_file_failed(group, from, file_name, reason));
        }
        _ => {}
    }
}
