//! The profile's control socket: how several `sotto` processes share one profile.
//!
//! A profile's sled database can be opened by one process only. That process (the
//! *holder*) serves a Unix socket next to the database with [`ControlServer`]; a later
//! `sotto` process that finds the profile taken hands its whole command line to the holder
//! with [`forward`] and relays the holder's output, so a user never sees "database locked".
//!
//! - `path`: where the socket lives (inside the profile, or a short fallback when the
//!   profile's path is too long for a Unix socket) and keeping it private to its user.
//! - `wire`: the frames on the socket ([`Request`], [`Reply`]).
//! - `server`: [`ControlServer`] and the [`Output`] handle a command writes through.
//! - `client`: [`forward`] and the lower-level [`ControlClient`].
//!
//! Only Unix has these sockets; elsewhere every entry point returns
//! [`ControlError::Unsupported`] so the caller opens the profile itself.

use std::path::PathBuf;

#[cfg(unix)]
mod client;
#[cfg(unix)]
mod path;
#[cfg(unix)]
mod server;
#[cfg(not(unix))]
mod unsupported;
#[cfg_attr(not(unix), allow(dead_code))]
mod wire;

#[cfg(all(test, unix))]
mod tests;
#[cfg(all(test, unix))]
mod tests_edge;

#[cfg(unix)]
pub use client::{ControlClient, forward};
#[cfg(unix)]
pub use path::socket_path;
#[cfg(unix)]
pub use server::{ControlServer, Output};
#[cfg(not(unix))]
pub use unsupported::{ControlClient, ControlServer, Output, forward, socket_path};
pub use wire::{MAX_FRAME, Reply, Request};

/// The socket's file name inside the profile directory (or inside its fallback directory).
pub const SOCKET_NAME: &str = "control.sock";

/// Exit code [`forward`] returns when the user pressed Ctrl-C (128 + SIGINT, as shells do).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Exit code the holder reports when a forwarded request was malformed (EX_PROTOCOL).
pub const EXIT_PROTOCOL: i32 = 76;

/// Exit code the holder reports when it is already running too many forwarded commands
/// (EX_TEMPFAIL: trying again later may work).
pub const EXIT_BUSY: i32 = 75;

/// What can go wrong talking over the control socket.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Nobody serves this profile (no socket, a stale socket, or no profile directory):
    /// the caller should open the profile itself.
    #[error("no other sotto process holds this profile")]
    NoHolder,
    /// The holder closed the connection before the command finished (it exited or
    /// crashed): the caller may try to open the profile itself.
    #[error("the sotto process holding this profile went away before the command finished")]
    HolderGone,
    /// Another live process already serves this profile's socket.
    #[error("another sotto process already serves {0}")]
    InUse(PathBuf),
    /// Neither the socket path in the profile nor any fallback fits a Unix socket address.
    #[error("the control socket path {0} is too long for a Unix socket")]
    PathTooLong(PathBuf),
    /// The socket, its directory or its peer belongs to another user, or something that is
    /// not ours sits where the socket should be: refusing to use it.
    #[error("refusing to use {path}: {reason}")]
    Insecure {
        /// The file, directory or socket in question.
        path: PathBuf,
        /// Why it is not trusted.
        reason: String,
    },
    /// A frame was too large, malformed, or not what the protocol allows at that point.
    #[error("control protocol error: {0}")]
    Protocol(String),
    /// The operating system failed a socket or file operation.
    #[error("control socket I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// This platform has no Unix sockets; open the profile directly.
    #[error("forwarding commands to another sotto process is not supported on this platform")]
    Unsupported,
}
