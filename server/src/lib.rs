//! `sotto-server`: the Sotto relay.
//!
//! Modules:
//! - [`server`]: [`run`], the accept loop, the sweeper and graceful shutdown.
//! - `conn`: one connection: handshake, frames, one file per group of commands.
//! - [`ws`]: WebSocket framing after the upgrade, holding no buffer between messages.
//! - [`store`]: the [`store::Store`] trait and its sled and in-memory engines.
//! - `hub`: which connection is subscribed to which mailbox.
//! - [`tls`]: the relay's key, self-signed certificate and pin.
//! - [`config`]: limits, with named defaults and TOML overrides.
//! - [`clock`]: days, the only time the relay knows.
//! - [`metrics`]: counters (counts only).
//! - [`log`]: the logging filter.
//! - [`error`]: the library's error type, [`RelayError`].
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
mod conn;
pub mod error;
mod hub;
pub mod log;
pub mod metrics;
mod ratelimit;
pub mod server;
pub mod store;
pub mod tls;
pub mod ws;

pub use config::Limits;
pub use error::RelayError;
pub use server::{RelayConfig, run};

/// The HTTP path clients upgrade to WebSocket on.
pub use conn::WS_PATH;
