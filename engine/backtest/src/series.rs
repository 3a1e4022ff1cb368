//! Checks that a candle stream is a series a backtest can trust.
//!
//! Readers already refuse bad rows and times that do not increase. Here
//! the stream is checked as a *series*: no duplicate bar, and no missing
//! bars, with one tolerance by default: market closures. Exchange-traded
//! and FX data stop over weekends and holidays; a hole that contains a
//! whole Saturday (UTC) and lasts at most four days is such a closure. Any other hole is an error naming the bar, because a strategy
//! computing "the last 20 bars" across it is computing something else.

use crate::error::SeriesError;

const DAY_MS: i64 = 86_400_000;

/// Which holes in the series are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GapPolicy {
    /// Every missing bar is an error.
    Reject,
    /// Weekend and holiday closures (see the module docs) are accepted.
    #[default]
    Weekends,
    /// Any hole is accepted.
    Allow,
}

/// Streaming checker: feed it every bar's time in order.
#[derive(Debug, Clone)]
pub struct SeriesCheck {
    policy: GapPolicy,
    /// Expected spacing, from [`SeriesCheck::with_interval`] or inferred.
    interval: Option<i64>,
    previous: Option<i64>,
    index: usize,
}

impl SeriesCheck {
    pub fn new(policy: GapPolicy) -> Self {
        SeriesCheck {
            policy,
            interval: None,
            previous: None,
            index: 0,
        }
    }

    /// Sets the bar spacing instead of inferring it.
    pub fn with_interval(mut self, ms: i64) -> Self {
        self.interval = Some(ms);
        self
    }

    /// The smallest spacing in `times` (the leading bars of the series):
    /// the interval the rest is checked against.
    pub fn infer_interval(&mut self, times: &[i64]) {
        if self.interval.is_none() {
            self.interval = times
                .windows(2)
                .map(|w| w[1] - w[0])
                .filter(|&d| d > 0)
                .min();
        }
    }

    pub fn interval(&self) -> Option<i64> {
        self.interval
    }

    /// Checks the next bar's time.
    ///
    /// # Errors
    /// A duplicate, a time before the previous one, or a hole the policy
    /// does not accept.
    pub fn push(&mut self, time: i64) -> Result<(), SeriesError> {
        let index = self.index;
        self.index += 1;
        let Some(previous) = self.previous.replace(time) else {
            return Ok(());
        };
        if time == previous {
            return Err(SeriesError::Duplicate { index, time });
        }
        if time < previous {
            return Err(SeriesError::OutOfOrder {
                index,
                time,
                previous,
            });
        }
        let Some(interval) = self.interval else {
            return Ok(());
        };
        let gap = time - previous;
        if gap <= interval || self.accepts(previous, gap) {
            return Ok(());
        }
        Err(SeriesError::Gap {
            index,
            previous,
            gap_ms: gap,
            interval_ms: interval,
            missing: gap / interval - 1,
        })
    }

    fn accepts(&self, previous: i64, gap: i64) -> bool {
        match self.policy {
            GapPolicy::Allow => true,
            GapPolicy::Reject => false,
            GapPolicy::Weekends => is_weekend_closure(previous, previous + gap),
        }
    }
}

/// Whether a hole from the bar at `from` to the bar at `to` is a weekend
/// closure: it holds a whole Saturday (UTC) and lasts at most four days.
/// The series check accepts these by default, and the statistics count
/// them apart from the other holes.
pub(crate) fn is_weekend_closure(from: i64, to: i64) -> bool {
    to - from <= 4 * DAY_MS
        && (from.div_euclid(DAY_MS)..=to.div_euclid(DAY_MS)).any(|d| {
            let start = d * DAY_MS;
            (d + 3).rem_euclid(7) == 5 && from <= start && start + DAY_MS <= to
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    /// Friday 2017-04-21 20:00 UTC.
    const FRIDAY_20H: i64 = 1_492_804_800_000;

    #[test]
    fn accepts_a_weekend_closure_and_refuses_a_weekday_hole() {
        let mut c = SeriesCheck::new(GapPolicy::Weekends).with_interval(H);
        c.push(FRIDAY_20H).unwrap();
        c.push(FRIDAY_20H + 49 * H).unwrap(); // Sunday 21:00
        let tuesday_10h = FRIDAY_20H + 4 * DAY_MS - 10 * H;
        c.push(tuesday_10h).unwrap_err(); // Sunday 21:00 -> Tuesday: no whole Saturday
        let mut c = SeriesCheck::new(GapPolicy::Weekends).with_interval(H);
        c.push(tuesday_10h).unwrap();
        assert!(matches!(
            c.push(tuesday_10h + 4 * H),
            Err(SeriesError::Gap { missing: 3, .. })
        ));
    }

    #[test]
    fn names_duplicates_and_gaps() {
        let mut c = SeriesCheck::new(GapPolicy::Reject);
        c.infer_interval(&[0, H, 2 * H]);
        c.push(0).unwrap();
        assert_eq!(c.push(0), Err(SeriesError::Duplicate { index: 1, time: 0 }));
        let mut c = SeriesCheck::new(GapPolicy::Reject).with_interval(H);
        c.push(0).unwrap();
        let err = c.push(4 * H).unwrap_err();
        assert!(matches!(err, SeriesError::Gap { missing: 3, .. }), "{err}");
    }
}
