//! Logging policy: the relay's own events at the chosen level, every dependency capped
//! at `warn`. The relay's events carry counts only; dependencies' verbose levels are
//! not audited for that, so they are never enabled.

use tracing_subscriber::EnvFilter;

/// The filter for a relay log at `level` (`error`, `warn`, `info`, `debug`, `trace`).
pub fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!("warn,sotto_server={level}"))
}
