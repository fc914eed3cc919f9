//! The commands and options of `sotto`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sotto_client::relay::ConnectOptions;
use sotto_proto::RelayAddress;

/// Sotto: end-to-end encrypted messages through relays that learn nothing about you.
#[derive(Parser, Debug)]
#[command(name = "sotto", version)]
pub struct Cli {
    /// Profile directory (default: $SOTTO_PROFILE, else ~/.local/share/sotto).
    #[arg(long, global = true)]
    pub profile: Option<PathBuf>,
    /// Reach relays through a SOCKS5 proxy, e.g. Tor: socks5://127.0.0.1:9050
    #[arg(long, global = true)]
    pub proxy: Option<String>,
    /// Where received files are saved (default: the `downloads` folder in the profile).
    #[arg(long, global = true, env = "SOTTO_DOWNLOADS")]
    pub downloads: Option<PathBuf>,
    /// Largest file sent or accepted, in bytes (default: 1 GiB).
    #[arg(long, global = true, env = "SOTTO_MAX_FILE_SIZE")]
    pub max_file_size: Option<u64>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a profile whose mailboxes live on RELAY.
    Init {
        /// The relay address, sotto://HOST:PORT#PIN (printed by sotto-relay).
        #[arg(long)]
        relay: RelayAddress,
        /// The name you suggest to people you invite.
        #[arg(long)]
        name: Option<String>,
    },
    /// Make a one-time invite link (and QR code) for one person.
    Invite {
        /// What you will call whoever accepts (default: the name they suggest).
        #[arg(long)]
        name: Option<String>,
        /// Put the invite's mailbox on this relay instead of the profile's.
        #[arg(long)]
        relay: Option<RelayAddress>,
        /// Print only the link, no QR code.
        #[arg(long)]
        no_qr: bool,
        /// A long, self-contained link instead of a short one. A short link works for as
        /// long as the relay keeps files (48 hours by default); a full one for as long as
        /// the invite's mailbox (90 days), but its QR code is 177 columns wide.
        #[arg(long)]
        full: bool,
    },
    /// Accept an invite link and save its sender as NAME.
    Accept {
        /// The invite link.
        link: String,
        /// What you will call them.
        #[arg(long)]
        name: String,
    },
    /// Send a text message, or a file with --file.
    Send {
        /// The contact's name.
        name: String,
        /// The message.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Send this file (or image) instead of a text.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Make this message disappear from both sides after this long (e.g. 1h, 2d).
        #[arg(long, conflicts_with = "file")]
        expire: Option<String>,
    },
    /// Print messages as they arrive.
    Listen {
        /// Wait for the first message, print everything waiting, then exit.
        #[arg(long)]
        once: bool,
        /// Stop after this many seconds without a new message.
        #[arg(long)]
        timeout: Option<u64>,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Send dummy cells to a mailbox of your own at random (Poisson) times, RATE a minute
        /// on average, so real messages hide among them on the network.
        #[arg(long, value_name = "RATE")]
        cover: Option<f64>,
    },
    /// List contacts, one per line, name first.
    Contacts,
    /// Show the conversation with a contact.
    History {
        /// The contact's name.
        name: String,
    },
    /// Show the safety number with a contact, to compare it with theirs.
    Verify {
        /// The contact's name.
        name: String,
        /// Mark the contact verified (after the numbers matched).
        #[arg(long)]
        mark_verified: bool,
        /// Accept the contact's changed safety number.
        #[arg(long)]
        accept: bool,
    },
    /// Private groups: create, add, remove, leave, members, send.
    Group {
        #[command(subcommand)]
        action: super::group::GroupCommand,
    },
    /// Start a local relay and two throw-away profiles, and show them talking.
    Demo,
    /// Show or set how long messages with a contact live (both sides): 1h, 2d, off.
    Timer(super::defences::TimerArgs),
    /// Settings of this profile.
    #[command(subcommand)]
    Settings(super::defences::SettingsCommand),
    /// Move conversations to fresh mailboxes now (this happens weekly anyway).
    Rotate(super::defences::RotateArgs),
    /// A duress passphrase that destroys this profile when used to unlock it.
    #[command(subcommand)]
    Duress(super::defences::DuressCommand),
    /// Destroy this profile at once (no passphrase needed).
    Panic,
    /// The full-screen terminal chat (F1 inside shows the keys).
    Chat,
}

impl Cli {
    /// How to reach relays, from `--proxy`.
    pub fn connect_options(&self) -> Result<ConnectOptions, String> {
        let mut options = ConnectOptions::default();
        if let Some(p) = &self.proxy {
            let hostport = p.strip_prefix("socks5://").or_else(|| p.strip_prefix("socks5h://")).ok_or_else(|| {
                format!("--proxy {p}: write it as socks5://HOST:PORT (for Tor: socks5://127.0.0.1:9050)")
            })?;
            let addr: SocketAddr =
                hostport.parse().map_err(|_| format!("--proxy {p}: HOST must be an IP address and PORT a number"))?;
            options.proxy = Some(addr);
        }
        Ok(options)
    }
}
