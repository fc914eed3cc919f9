//! Files on the command line: progress bars, where received files go, and making
//! `--file` paths absolute before a command is handed to another `sotto` process (which
//! runs in another directory).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sotto_client::app::DOWNLOADS_DIR;
use sotto_client::files::{FileSettings, NoProgress, Progress};

use super::{Cli, Command, text};

/// How a progress bar looks: name, bar, bytes, rate and time left.
const BAR_TEMPLATE: &str = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}";

/// An indicatif bar on stderr.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: u64, done: u64) {
        self.0.set_length(total);
        self.0.set_position(done);
        self.0.reset_eta();
    }

    fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar for `label`, drawn only when stderr is a terminal (never for a
/// command forwarded from another process, whose output goes back as lines).
pub fn progress(label: &str, here: bool) -> Box<dyn Progress> {
    if !here || !std::io::stderr().is_terminal() {
        return Box::new(NoProgress);
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(BAR_TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    Box::new(Bar(bar))
}

/// File settings from the command line: `--downloads` (else the profile's folder) and
/// `--max-file-size`, with download progress bars on a terminal.
pub fn settings(cli: &Cli, profile: &Path) -> FileSettings {
    let downloads = cli.downloads.clone().unwrap_or_else(|| profile.join(DOWNLOADS_DIR));
    let mut s = FileSettings::new(downloads);
    if let Some(max) = cli.max_file_size {
        s.max_file_size = max;
    }
    if std::io::stderr().is_terminal() {
        s.progress = Some(Arc::new(|name: &str, _size: u64| progress(&text::downloading(name), true)));
    }
    s
}

/// The command line to forward, with the `--file` path made absolute.
pub fn absolute_args(cli: &Cli, mut args: Vec<String>) -> Vec<String> {
    let path = match &cli.command {
        Command::Send { file: Some(path), .. } => path,
        Command::Group { action: super::group::GroupCommand::Send { file: Some(path), .. } } => path,
        _ => return args,
    };
    let Ok(absolute) = std::path::absolute(path) else { return args };
    let absolute = absolute.to_string_lossy().into_owned();
    let given = path.to_string_lossy().into_owned();
    for i in 0..args.len() {
        if args[i] == "--file" && args.get(i + 1) == Some(&given) {
            args[i + 1] = absolute;
            break;
        }
        if args[i] == format!("--file={given}") {
            args[i] = format!("--file={absolute}");
            break;
        }
    }
    args
}

/// The label of an upload's progress bar.
pub fn upload_label(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    text::uploading(&name)
}

/// A path as the user gave it, for messages.
pub fn shown(path: &Path) -> String {
    PathBuf::from(path).display().to_string()
}
