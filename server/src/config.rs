//! The relay's limits: named defaults, overridable from a TOML file.
//!
//! Every limit the relay enforces lives here, with its reason. A config file names only
//! what it changes; unknown keys are an error so a typo cannot silently keep a default.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::RelayError;

/// Envelopes a mailbox may hold before sends get `QueueFull`. A contact who is offline
/// for a week at a busy pace stays well under it; a flood stops here.
pub const DEFAULT_MAX_QUEUE_LEN: u32 = 10_000;

/// Bytes of envelopes a mailbox may hold: the queue length at the fixed envelope size
/// (about 155 MiB).
pub const DEFAULT_MAX_QUEUE_BYTES: u64 = DEFAULT_MAX_QUEUE_LEN as u64 * sotto_proto::limits::ENVELOPE_SIZE as u64;

/// Largest blob the relay accepts: a 1 GiB file (the client's default limit; Padmé leaves
/// 1 GiB as it is) plus its authentication tags (16 bytes per 16,240: about 1.01 MiB),
/// with room to spare.
pub const DEFAULT_MAX_BLOB_SIZE: u64 = (1 << 30) + (2 << 20);

/// All blobs together may hold at most this many bytes (declared sizes count at
/// creation); beyond it `BlobCreate` gets `TooLarge` until blobs expire.
pub const DEFAULT_BLOB_QUOTA_BYTES: u64 = 64 << 30;

/// Frames per second a connection may send, sustained. A file upload is the heaviest
/// honest load: 2,000 cells a second is about 32 MB/s.
pub const DEFAULT_FRAMES_PER_SECOND: u32 = 2_000;

/// Frames a connection may send in one burst above the sustained rate.
pub const DEFAULT_FRAME_BURST: u32 = 4_000;

/// Time allowed for TCP accept to an open WebSocket (TLS and HTTP upgrade). Slow-loris
/// connections are dropped after it.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection that sends nothing for this long is closed. Clients ping every 120 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Connections open at once; more are closed on accept.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Mailboxes one connection may be subscribed to at once.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 4_096;

/// Envelopes pushed on one subscription and not yet acknowledged. Bounds a connection's
/// memory and lets delivery run without waiting a round trip per envelope.
pub const DEFAULT_DELIVERY_WINDOW: usize = 64;

/// Sends from one connection waiting for the disk at once; further frames wait.
pub const DEFAULT_MAX_INFLIGHT_SENDS: usize = 256;

/// Undelivered envelopes are deleted after this many days.
pub const DEFAULT_ENVELOPE_TTL_DAYS: u32 = 21;

/// Blobs are deleted after this many hours (rounded up to whole days; see PROTOCOL.md).
pub const DEFAULT_BLOB_TTL_HOURS: u32 = 48;

/// A mailbox whose owner has not subscribed for this many days is deleted.
pub const DEFAULT_MAILBOX_TTL_DAYS: u32 = 90;

/// How often the sweeper deletes what has expired.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// How long a graceful shutdown waits for connections to close.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The relay's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_queue_len: u32,
    pub max_queue_bytes: u64,
    pub max_blob_size: u64,
    pub blob_quota_bytes: u64,
    pub frames_per_second: u32,
    pub frame_burst: u32,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_subscriptions: usize,
    pub delivery_window: usize,
    pub max_inflight_sends: usize,
    pub envelope_ttl_days: u32,
    pub blob_ttl_hours: u32,
    pub mailbox_ttl_days: u32,
    pub sweep_interval: Duration,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queue_len: DEFAULT_MAX_QUEUE_LEN,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            max_blob_size: DEFAULT_MAX_BLOB_SIZE,
            blob_quota_bytes: DEFAULT_BLOB_QUOTA_BYTES,
            frames_per_second: DEFAULT_FRAMES_PER_SECOND,
            frame_burst: DEFAULT_FRAME_BURST,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            delivery_window: DEFAULT_DELIVERY_WINDOW,
            max_inflight_sends: DEFAULT_MAX_INFLIGHT_SENDS,
            envelope_ttl_days: DEFAULT_ENVELOPE_TTL_DAYS,
            blob_ttl_hours: DEFAULT_BLOB_TTL_HOURS,
            mailbox_ttl_days: DEFAULT_MAILBOX_TTL_DAYS,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// The TOML form of [`Limits`]: every key optional, durations in seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_queue_len: Option<u32>,
    max_queue_bytes: Option<u64>,
    max_blob_size: Option<u64>,
    blob_quota_bytes: Option<u64>,
    frames_per_second: Option<u32>,
    frame_burst: Option<u32>,
    handshake_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_subscriptions: Option<usize>,
    delivery_window: Option<usize>,
    max_inflight_sends: Option<usize>,
    envelope_ttl_days: Option<u32>,
    blob_ttl_hours: Option<u32>,
    mailbox_ttl_days: Option<u32>,
    sweep_interval_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
}

impl Limits {
    /// Parses a TOML config, applying it over the defaults.
    pub fn from_toml(text: &str) -> Result<Self, RelayError> {
        let f: LimitsFile = toml::from_str(text).map_err(|e| RelayError::Config(e.message().to_string()))?;
        let d = Self::default();
        let secs = |v: Option<u64>, def: Duration| v.map(Duration::from_secs).unwrap_or(def);
        let limits = Self {
            max_queue_len: f.max_queue_len.unwrap_or(d.max_queue_len),
            max_queue_bytes: f.max_queue_bytes.unwrap_or(d.max_queue_bytes),
            max_blob_size: f.max_blob_size.unwrap_or(d.max_blob_size),
            blob_quota_bytes: f.blob_quota_bytes.unwrap_or(d.blob_quota_bytes),
            frames_per_second: f.frames_per_second.unwrap_or(d.frames_per_second),
            frame_burst: f.frame_burst.unwrap_or(d.frame_burst),
            handshake_timeout: secs(f.handshake_timeout_secs, d.handshake_timeout),
            idle_timeout: secs(f.idle_timeout_secs, d.idle_timeout),
            max_connections: f.max_connections.unwrap_or(d.max_connections),
            max_subscriptions: f.max_subscriptions.unwrap_or(d.max_subscriptions),
            delivery_window: f.delivery_window.unwrap_or(d.delivery_window),
            max_inflight_sends: f.max_inflight_sends.unwrap_or(d.max_inflight_sends),
            envelope_ttl_days: f.envelope_ttl_days.unwrap_or(d.envelope_ttl_days),
            blob_ttl_hours: f.blob_ttl_hours.unwrap_or(d.blob_ttl_hours),
            mailbox_ttl_days: f.mailbox_ttl_days.unwrap_or(d.mailbox_ttl_days),
            sweep_interval: secs(f.sweep_interval_secs, d.sweep_interval),
            shutdown_grace: secs(f.shutdown_grace_secs, d.shutdown_grace),
        };
        limits.validate()?;
        Ok(limits)
    }

    /// Reads and parses a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, RelayError> {
        let text = std::fs::read_to_string(path).map_err(|e| RelayError::Config(format!("cannot read config: {e}")))?;
        Self::from_toml(&text)
    }

    fn validate(&self) -> Result<(), RelayError> {
        let zero = [
            ("max_queue_len", self.max_queue_len == 0),
            ("frames_per_second", self.frames_per_second == 0),
            ("frame_burst", self.frame_burst == 0),
            ("max_connections", self.max_connections == 0),
            ("max_subscriptions", self.max_subscriptions == 0),
            ("delivery_window", self.delivery_window == 0),
            ("max_inflight_sends", self.max_inflight_sends == 0),
            ("envelope_ttl_days", self.envelope_ttl_days == 0),
            ("blob_ttl_hours", self.blob_ttl_hours == 0),
            ("mailbox_ttl_days", self.mailbox_ttl_days == 0),
            ("sweep_interval_secs", self.sweep_interval.is_zero()),
            ("idle_timeout_secs", self.idle_timeout.is_zero()),
            ("handshake_timeout_secs", self.handshake_timeout.is_zero()),
        ];
        if let Some((name, _)) = zero.iter().find(|(_, bad)| *bad) {
            return Err(RelayError::Config(format!("{name} must be greater than zero")));
        }
        if self.frame_burst < u32::from(sotto_proto::limits::BLOB_GET_MAX_CHUNKS) {
            // A read of that many chunks takes that many tokens at once; a smaller bucket
            // could never serve it.
            return Err(RelayError::Config(format!(
                "frame_burst must be at least {} (the chunks of one blob read)",
                sotto_proto::limits::BLOB_GET_MAX_CHUNKS
            )));
        }
        if self.max_queue_bytes < sotto_proto::limits::ENVELOPE_SIZE as u64 {
            return Err(RelayError::Config("max_queue_bytes must hold at least one envelope (16256 bytes)".into()));
        }
        if self.max_blob_size == 0 || self.blob_quota_bytes < self.max_blob_size {
            return Err(RelayError::Config(
                "max_blob_size must be above zero and blob_quota_bytes at least as large".into(),
            ));
        }
        if self.max_blob_size > sotto_proto::limits::MAX_BLOB_SIZE {
            return Err(RelayError::Config("max_blob_size exceeds the protocol maximum (4 GiB)".into()));
        }
        Ok(())
    }

    /// Days a blob lives after the day it was made: its hours rounded up to whole days.
    /// Expiry is kept only to the day and swept after that day ends, so a blob lives at
    /// least its hours and at most one day more.
    pub fn blob_ttl_days(&self) -> u32 {
        self.blob_ttl_hours.div_ceil(24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_keys_override() {
        assert_eq!(Limits::from_toml("").ok(), Some(Limits::default()));
        let l = Limits::from_toml("max_queue_len = 5\nidle_timeout_secs = 7").ok();
        assert_eq!(l.as_ref().map(|l| l.max_queue_len), Some(5));
        assert_eq!(l.map(|l| l.idle_timeout), Some(Duration::from_secs(7)));
    }

    #[test]
    fn typos_and_zeroes_are_errors() {
        assert!(matches!(Limits::from_toml("max_queue_lenn = 5"), Err(RelayError::Config(_))));
        assert!(matches!(Limits::from_toml("max_queue_len = 0"), Err(RelayError::Config(_))));
        assert!(matches!(Limits::from_toml("max_queue_len = \"x\""), Err(RelayError::Config(_))));
    }

    #[test]
    fn blob_ttl_rounds_up_to_days() {
        let l = Limits { blob_ttl_hours: 48, ..Limits::default() };
        assert_eq!(l.blob_ttl_days(), 2);
        let l = Limits { blob_ttl_hours: 49, ..Limits::default() };
        assert_eq!(l.blob_ttl_days(), 3);
    }
}
