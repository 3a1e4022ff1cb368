//! Pacing: the retry schedule, the per-destination rate limit, and a log
//! line budget.

use std::time::{Duration, Instant};

/// When to try again after a failed attempt.
///
/// After the `k`-th failed attempt the wait is `min(initial * 2^(k-1),
/// max)`, scaled by a jitter in `[0.5, 1]` so that records failing together
/// (one receiver outage) do not retry in lockstep; the cap holds with the
/// jitter. A receiver's `Retry-After` is honoured when it is longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(600),
        }
    }
}

impl Retry {
    /// The wait after failed attempt `k` (1-based), with `jitter` in
    /// `[0, 1)` and the receiver's `retry_after`, if any.
    pub fn delay(&self, k: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << k.saturating_sub(1).min(24))
            .min(self.max);
        let wait = base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        match retry_after {
            Some(r) => wait.max(r),
            None => wait,
        }
    }
}

/// A number in `[0, 1)` that differs between calls: spreads retries, not
/// for anything random in earnest.
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // A multiplicative hash spreads the low bits.
    let h = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    h as f64 / (1u64 << 53) as f64
}

/// A destination's rate limit: a token bucket of `per_minute`, holding at
/// most ten seconds' worth (at least one) so that a backlog drains at the
/// rate, not in a burst.
#[derive(Debug)]
pub(crate) struct RateLimit {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(per_minute: f64, now: Instant) -> Self {
        let per_second = per_minute.max(0.0) / 60.0;
        let burst = (per_second * 10.0).max(1.0);
        RateLimit {
            tokens: burst,
            burst,
            per_second,
            last: now,
        }
    }

    /// Takes a token at `now`: `None` when one was there, else how long
    /// until one will be.
    pub(crate) fn take(&mut self, now: Instant) -> Option<Duration> {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else if self.per_second > 0.0 {
            Some(Duration::from_secs_f64(
                ((1.0 - self.tokens) / self.per_second).min(86_400.0),
            ))
        } else {
            Some(Duration::from_secs(86_400))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_to_the_cap_with_jitter_inside_it() {
        let r = Retry {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        };
        for (k, base) in [(1u32, 100u64), (2, 200), (3, 400), (30, 400)] {
            let base = Duration::from_millis(base);
            let high = r.delay(k, 0.999_999, None);
            assert!(high <= base && high > base.mul_f64(0.99), "k={k}: {high:?}");
            assert_eq!(r.delay(k, 0.0, None), base / 2);
        }
        let ra = Some(Duration::from_secs(2));
        assert_eq!(r.delay(1, 0.5, ra), Duration::from_secs(2));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn the_rate_limit_spaces_sends_after_its_burst() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(60.0, t0);
        // 1/s, a burst of 10.
        for _ in 0..10 {
            assert_eq!(r.take(t0), None);
        }
        let wait = r.take(t0).unwrap();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(r.take(t0 + Duration::from_secs(1)), None);
        assert!(r.take(t0 + Duration::from_secs(1)).is_some());
    }
}
