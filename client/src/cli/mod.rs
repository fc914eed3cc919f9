//! The `sotto` command line.
//!
//! - [`args`]: the commands and options.
//! - [`commands`]: what each command does, writing through an [`Out`].
//! - [`holder`]: the process holding the profile: its client, the notice pump, and
//!   serving commands forwarded by other `sotto` processes.
//! - [`demo`]: `sotto demo`.
//! - [`chat`]: `sotto chat`, the terminal UI (its sentences in [`chat_text`]).
//! - [`files`], [`files_cmd`]: `send --file`, progress bars, and received files.
//! - [`group`]: `sotto group …`; [`group_files`]: `group send --file` and group files received.
//! - [`text`]: every sentence shown to a person.

mod args;
mod chat;
mod chat_text;
mod commands;
mod defences;
mod demo;
mod files;
mod files_cmd;
mod forward;
mod group;
mod group_files;
mod holder;
mod local_time;
mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use zeroize::Zeroizing;

pub use args::{Cli, Command};

/// Environment variable naming the profile directory.
pub const PROFILE_ENV: &str = "SOTTO_PROFILE";
/// Environment variable holding the passphrase, for scripts and tests.
pub const PASSPHRASE_ENV: &str = "SOTTO_PASSPHRASE";

/// Exit code: the message is queued but the relay could not be reached (EX_TEMPFAIL).
pub const EXIT_QUEUED: u8 = 75;

/// Where a command's output goes: this terminal, or a forwarding process.
pub trait Out {
    /// A line of normal output.
    fn out(&self, line: &str);
    /// A line of diagnostics.
    fn err(&self, line: &str);
    /// Whether whoever reads this output went away.
    fn closed(&self) -> bool {
        false
    }

    /// Whether this is the process's own terminal (so Ctrl-C here is meant for it).
    fn is_terminal(&self) -> bool {
        false
    }
}

/// This process's own stdout and stderr.
pub struct Terminal;

impl Out for Terminal {
    fn out(&self, line: &str) {
        use std::io::Write;
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn err(&self, line: &str) {
        eprintln!("{line}");
    }

    fn is_terminal(&self) -> bool {
        true
    }
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let code = local.block_on(&runtime, run(cli));
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let dir = profile_dir(cli.profile.as_deref());
    let options = match cli.connect_options() {
        Ok(o) => o,
        Err(e) => {
            Terminal.err(&e);
            return 2;
        }
    };
    match &cli.command {
        Command::Init { relay, name } => commands::init(&dir, relay, name.as_deref(), options, &Terminal).await,
        Command::Demo => demo::run(&Terminal).await,
        Command::Panic => defences::panic(&dir, &Terminal).await,
        Command::Duress(d) => defences::duress(&dir, d, options, &Terminal).await,
        _ => holder::run_on_profile(&dir, options, &cli, std::env::args().skip(1).collect()).await,
    }
}

/// The profile directory: `--profile`, else `$SOTTO_PROFILE`, else the per-user data
/// directory (`$XDG_DATA_HOME/sotto` or `~/.local/share/sotto`).
fn profile_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(PROFILE_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("sotto");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local").join("share").join("sotto")
}

/// The passphrase: `$SOTTO_PASSPHRASE`, else asked without echo. `confirm` asks twice.
fn passphrase(confirm: bool) -> Result<Zeroizing<String>, String> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return if p.is_empty() { Err(text::EMPTY_PASSPHRASE.into()) } else { Ok(Zeroizing::new(p)) };
    }
    let prompt = if confirm { text::NEW_PASSPHRASE_PROMPT } else { text::PASSPHRASE_PROMPT };
    let first = Zeroizing::new(rpassword::prompt_password(prompt).map_err(|_| text::NO_PASSPHRASE.to_string())?);
    if first.is_empty() {
        return Err(text::EMPTY_PASSPHRASE.into());
    }
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password(text::REPEAT_PASSPHRASE_PROMPT).map_err(|_| text::NO_PASSPHRASE.to_string())?,
        );
        if *first != *second {
            return Err(text::PASSPHRASES_DIFFER.into());
        }
    }
    Ok(first)
}
