//! Counters. Counts only: never an id, an address or a key.

use std::sync::atomic::{AtomicU64, Ordering};

/// What the relay counts.
#[derive(Default)]
pub struct Metrics {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub mailboxes_created: AtomicU64,
    pub envelopes_stored: AtomicU64,
    pub envelopes_delivered: AtomicU64,
    pub envelopes_acked: AtomicU64,
    pub blob_chunks_stored: AtomicU64,
    pub blob_chunks_served: AtomicU64,
    pub errors_sent: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A one-line summary for the log.
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "connections={} refused={} handshake_failures={} frames_in={} frames_out={} mailboxes_created={} \
             envelopes_stored={} delivered={} acked={} blob_chunks_in={} blob_chunks_out={} errors={} rate_limited={}",
            g(&self.connections_accepted),
            g(&self.connections_refused),
            g(&self.handshakes_failed),
            g(&self.frames_in),
            g(&self.frames_out),
            g(&self.mailboxes_created),
            g(&self.envelopes_stored),
            g(&self.envelopes_delivered),
            g(&self.envelopes_acked),
            g(&self.blob_chunks_stored),
            g(&self.blob_chunks_served),
            g(&self.errors_sent),
            g(&self.rate_limited),
        )
    }
}
