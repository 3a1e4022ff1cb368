//! Pacing: the request and token buckets, and the daily budget.

use std::time::{Duration, Instant};

/// A token bucket of `per_minute`, holding at most one minute's worth:
/// the provider's limits are per minute, so a full minute's burst is what
/// it allows anyway, and a request of any size up to `per_minute` can run.
///
/// [`Bucket::take`] may leave the level below zero when a call used more
/// than was estimated ([`Bucket::settle`]): the next calls then wait it out.
#[derive(Debug)]
pub(crate) struct Bucket {
    level: f64,
    capacity: f64,
    per_second: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(per_minute: f64, now: Instant) -> Self {
        Bucket {
            level: per_minute,
            capacity: per_minute,
            per_second: per_minute / 60.0,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.level = (self.level + dt * self.per_second).min(self.capacity);
    }

    /// How long until `n` can be taken (zero: now).
    pub(crate) fn wait(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        if self.level >= n {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(((n - self.level) / self.per_second).min(86_400.0))
        }
    }

    /// Takes `n` (after [`Bucket::wait`] said zero).
    pub(crate) fn take(&mut self, n: f64) {
        self.level -= n;
    }

    /// A call estimated at `estimated` used `used`: the difference goes
    /// back (or is owed).
    pub(crate) fn settle(&mut self, estimated: f64, used: f64) {
        self.level = (self.level + estimated - used).min(self.capacity);
    }

    pub(crate) fn capacity(&self) -> f64 {
        self.capacity
    }
}

/// The days since the Unix epoch of `unix_ms` (the UTC day).
pub fn utc_day(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(86_400_000)
}

/// The daily budget: what was spent on UTC day `day`, and what calls in
/// flight may still spend (their worst case, reserved before they start),
/// so that concurrent calls cannot together pass the limit.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) limit: Option<f64>,
    pub(crate) day: i64,
    pub(crate) spent: f64,
    reserved: f64,
    /// Whether "budget reached" was logged today.
    pub(crate) announced: bool,
}

/// The budget is spent for today.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetReached {
    pub spent: f64,
    pub limit: f64,
}

impl Budget {
    pub(crate) fn new(limit: Option<f64>, day: i64, spent: f64) -> Self {
        Budget {
            limit,
            day,
            spent,
            reserved: 0.0,
            announced: false,
        }
    }

    /// Whether a new day began (the caller loads its spend, usually 0).
    pub(crate) fn roll(&mut self, day: i64, spent: f64) {
        if day != self.day {
            self.day = day;
            self.spent = spent;
            self.announced = false;
        }
    }

    /// Reserves `worst` USD for a call.
    pub(crate) fn reserve(&mut self, worst: f64) -> Result<(), BudgetReached> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        if self.spent + self.reserved + worst > limit {
            return Err(BudgetReached {
                spent: self.spent,
                limit,
            });
        }
        self.reserved += worst;
        Ok(())
    }

    /// A call that reserved `worst` cost `cost`.
    pub(crate) fn settle(&mut self, worst: f64, cost: f64) {
        self.reserved = (self.reserved - worst).max(0.0);
        self.spent += cost;
    }

    /// Whether the limit leaves nothing for a call of `worst`.
    pub(crate) fn reached(&self, worst: f64) -> bool {
        self.limit
            .is_some_and(|l| self.spent + self.reserved + worst > l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_a_minute_and_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(60.0, t0);
        assert_eq!(b.wait(60.0, t0), Duration::ZERO);
        b.take(60.0);
        let w = b.wait(1.0, t0);
        assert!(
            w > Duration::from_millis(990) && w <= Duration::from_secs(1),
            "{w:?}"
        );
        assert_eq!(b.wait(1.0, t0 + Duration::from_secs(1)), Duration::ZERO);
        // A call that used more than estimated is owed.
        b.take(1.0);
        b.settle(1.0, 11.0);
        let w = b.wait(1.0, t0 + Duration::from_secs(1));
        assert!(w >= Duration::from_secs(10), "{w:?}");
    }

    #[test]
    fn the_budget_reserves_the_worst_case_and_keeps_what_was_spent() {
        let mut b = Budget::new(Some(1.0), 10, 0.0);
        b.reserve(0.4).unwrap();
        b.reserve(0.4).unwrap();
        // A third worst case would pass the limit with the two in flight.
        assert!(b.reserve(0.4).is_err());
        b.settle(0.4, 0.1);
        b.settle(0.4, 0.1);
        assert!((b.spent - 0.2).abs() < 1e-12);
        b.reserve(0.4).unwrap();
        b.settle(0.4, 0.75);
        assert!(b.reached(0.1) && !b.reached(0.01));
        let e = b.reserve(0.1).unwrap_err();
        assert!((e.spent - 0.95).abs() < 1e-9 && e.limit == 1.0, "{e:?}");
        b.roll(11, 0.0);
        b.reserve(0.01).unwrap();
        assert!(Budget::new(None, 0, 1e9).reserve(1e9).is_ok());
        assert_eq!(utc_day(86_400_000 * 3 + 5), 3);
        assert_eq!(utc_day(-1), -1);
    }
}
