//! Time, as the relay is allowed to know it: whole days.
//!
//! The relay stores no timestamp finer than a day, so the only clock it has tells the
//! day number. Tests inject a [`ManualClock`] to expire things without waiting.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: u64 = 86_400;

/// Tells today's day number (days since 1970-01-01, UTC).
pub trait Clock: Send + Sync + 'static {
    /// Today's day number.
    fn today(&self) -> u32;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn today(&self) -> u32 {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        u32::try_from(secs / SECONDS_PER_DAY).unwrap_or(u32::MAX)
    }
}

/// A clock set by hand, for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU32);

impl ManualClock {
    /// A clock that says `day`.
    pub fn new(day: u32) -> Self {
        Self(AtomicU32::new(day))
    }

    /// Moves the clock forward by `days`.
    pub fn advance(&self, days: u32) {
        self.0.fetch_add(days, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn today(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}
