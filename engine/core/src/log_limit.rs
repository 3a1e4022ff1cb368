//! [`LogLimiter`]: one log line per period, the rest counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Logs at most one line per `period` and counts what it held back, so that
/// a flood (refused handshakes, a full channel) cannot fill the log. Shared
/// by the parts beside the pipeline (the feed, the notifier).
#[derive(Debug)]
pub struct LogLimiter {
    period: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub fn new(period: Duration) -> Self {
        LogLimiter {
            period,
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be written now (`n` lines were held back
    /// since the last one); `None` when this one is held back. Never
    /// blocks: a contended lock counts as held back.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let Ok(mut last) = self.last.try_lock() else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < self.period) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_and_the_rest_counted() {
        let l = LogLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(l.admit(t0), Some(0));
        for _ in 0..1000 {
            assert_eq!(l.admit(t0 + Duration::from_millis(10)), None);
        }
        assert_eq!(l.admit(t0 + Duration::from_secs(1)), Some(1000));
    }
}
