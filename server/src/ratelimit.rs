//! A token bucket per connection: a sustained rate of frames and a burst above it.

use std::time::Instant;

/// Refills at `rate` tokens a second up to `burst`; each frame takes one.
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self { rate: f64::from(rate), burst: f64::from(burst), tokens: f64::from(burst), last: now }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(1, now)
    }

    /// Takes `n` tokens if there are that many; takes none otherwise.
    pub fn take_n(&mut self, n: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens < f64::from(n) {
            return false;
        }
        self.tokens -= f64::from(n);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert_eq!((0..10).filter(|_| b.take(t0)).count(), 5);
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn takes_several_only_when_all_are_there() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 5, t0);
        assert!(!b.take_n(6, t0));
        assert!(b.take_n(5, t0));
        assert!(!b.take(t0));
        assert!(b.take_n(0, t0));
    }
}
