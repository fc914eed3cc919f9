//! The load every system is measured under, and what one run of it measured.
//!
//! A load is `pairs` sender/receiver pairs, each sender sending `messages` cells to its
//! receiver with at most `window` unanswered at once, either as fast as the system allows
//! or at a fixed total rate. Every message carries the time it was sent (or was due, under
//! a rate), so the receiver measures end-to-end latency without a clock of its own.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bytes at the start of a payload holding its send time (nanoseconds since [`epoch`]).
const STAMP_LEN: usize = 8;

/// The instant all stamps count from; one per process, so senders and receivers agree.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from [`epoch`] to `t` (0 before it).
pub fn nanos_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// Writes the stamp for `sent` at the start of `payload` (which is at least 8 bytes).
pub fn stamp(payload: &mut [u8], sent: Instant) {
    if let Some(head) = payload.get_mut(..STAMP_LEN) {
        head.copy_from_slice(&nanos_since_epoch(sent).to_be_bytes());
    }
}

/// Microseconds from the stamp in `payload` to now, or `None` if the payload is too short.
pub fn latency_us(payload: &[u8]) -> Option<u32> {
    let head: [u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
    let sent = u64::from_be_bytes(head);
    let now = nanos_since_epoch(Instant::now());
    Some(u32::try_from(now.saturating_sub(sent) / 1_000).unwrap_or(u32::MAX))
}

/// What is offered to a system.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Sender/receiver pairs, each on its own two connections.
    pub pairs: usize,
    /// Messages each sender sends.
    pub messages: usize,
    /// Messages a sender may have sent and not yet had answered.
    pub window: usize,
    /// Total messages per second over all pairs; `None`: as fast as possible.
    pub rate: Option<f64>,
}

impl Load {
    /// When message `i` of one sender is due under the rate, counting from `start`.
    pub fn due(&self, start: Instant, i: usize) -> Option<Instant> {
        let rate = self.rate?;
        let per_sender = rate / self.pairs as f64;
        Some(start + Duration::from_secs_f64(i as f64 / per_sender))
    }
}

/// Paces one sender: under a rate, waits until each message is due and returns the
/// instant to stamp (the due time, so a stalled system's queueing counts in the
/// latency); at full speed, returns now.
pub async fn pace(load: &Load, start: Instant, i: usize) -> Instant {
    match load.due(start, i) {
        Some(due) => {
            tokio::time::sleep_until(due.into()).await;
            due
        }
        None => Instant::now(),
    }
}

/// What one receiver saw.
#[derive(Debug, Default)]
pub struct ReceiverResult {
    /// End-to-end latency of every message, in microseconds.
    pub latencies_us: Vec<u32>,
    /// When the last message arrived.
    pub last: Option<Instant>,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub delivered: u64,
    pub elapsed: Duration,
    pub msgs_per_s: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub p999_us: u32,
    /// CPU seconds the system under test used during the run.
    pub server_cpu_s: f64,
    /// Its peak resident memory, in KiB, when it can be told apart.
    pub server_peak_rss_kib: Option<u64>,
    /// CPU seconds the load generator used (its clients, TLS and signatures included).
    pub client_cpu_s: f64,
}

impl RunResult {
    /// Combines the receivers' results of a run that started at `start`.
    pub fn from_receivers(start: Instant, receivers: Vec<ReceiverResult>) -> Self {
        let last = receivers.iter().filter_map(|r| r.last).max().unwrap_or(start);
        let mut lat: Vec<u32> = receivers.into_iter().flat_map(|r| r.latencies_us).collect();
        lat.sort_unstable();
        let delivered = lat.len() as u64;
        let elapsed = last.saturating_duration_since(start);
        let secs = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            delivered,
            elapsed,
            msgs_per_s: delivered as f64 / secs,
            p50_us: percentile(&lat, 0.50),
            p99_us: percentile(&lat, 0.99),
            p999_us: percentile(&lat, 0.999),
            server_cpu_s: 0.0,
            server_peak_rss_kib: None,
            client_cpu_s: 0.0,
        }
    }

    /// Server CPU per delivered message, in microseconds.
    pub fn cpu_us_per_msg(&self) -> f64 {
        self.server_cpu_s * 1e6 / (self.delivered.max(1) as f64)
    }

    /// Load generator CPU per delivered message, in microseconds.
    pub fn client_cpu_us_per_msg(&self) -> f64 {
        self.client_cpu_s * 1e6 / (self.delivered.max(1) as f64)
    }
}

/// The `q` quantile of sorted values (nearest rank); 0 for none.
pub fn percentile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some values (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&v, 0.5), 500);
        assert_eq!(percentile(&v, 0.99), 990);
        assert_eq!(percentile(&v, 0.999), 999);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn stamp_round_trips_into_a_latency() {
        // Stamps count from the epoch: start it well before the stamped instant.
        let _ = epoch();
        std::thread::sleep(Duration::from_millis(5));
        let mut p = [0u8; 32];
        stamp(&mut p, Instant::now() - Duration::from_millis(3));
        let l = latency_us(&p).unwrap_or(0);
        assert!((3_000..1_000_000).contains(&l), "{l}");
        assert_eq!(latency_us(&p[..4]), None);
    }

    #[test]
    fn rate_spreads_messages_over_senders() {
        let load = Load { pairs: 4, messages: 10, window: 8, rate: Some(400.0) };
        let t = Instant::now();
        // 100 per second per sender: message 10 is due after 100 ms.
        assert_eq!(load.due(t, 10), Some(t + Duration::from_millis(100)));
        assert_eq!(Load { rate: None, ..load }.due(t, 10), None);
    }
}
