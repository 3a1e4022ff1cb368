//! Where klines open: the time grid of each interval, and the holes in a
//! series of klines.
//!
//! Binance opens klines on a fixed UTC grid: intervals up to a day at
//! multiples of their length since the epoch, weeks on Mondays, months on
//! the first day of the month. Three-day klines are the exception we know
//! no fixed phase for, so for them only the spacing is checked. Knowing
//! the grid lets a download check every kline's open time and tell a hole
//! the exchange has no data for from a page that merely ended.

use candlewick_market::time::{civil_from_days, days_from_civil};
use candlewick_market::Interval;

const DAY: i64 = 86_400_000;
/// 1970-01-01 was a Thursday; weekly klines open on Mondays, four days on.
const MONDAY_OFFSET: i64 = 4 * DAY;

/// The grid an interval's klines open on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grid {
    /// Multiples of `step` after `offset`.
    Fixed { step: i64, offset: i64 },
    /// Every `step`, phase unknown (3d).
    Spaced { step: i64 },
    /// First day of each UTC month.
    Months,
}

fn grid(interval: Interval) -> Grid {
    match interval {
        Interval::Mo1 => Grid::Months,
        Interval::D3 => Grid::Spaced {
            step: interval.nominal_ms(),
        },
        Interval::W1 => Grid::Fixed {
            step: interval.nominal_ms(),
            offset: MONDAY_OFFSET,
        },
        other => Grid::Fixed {
            step: other.nominal_ms(),
            offset: 0,
        },
    }
}

/// Whether a kline of `interval` may open at `t` (always true for 3d).
pub fn is_open_time(interval: Interval, t: i64) -> bool {
    match grid(interval) {
        Grid::Fixed { step, offset } => (t - offset).rem_euclid(step) == 0,
        Grid::Spaced { .. } => true,
        Grid::Months => month_start(t) == t,
    }
}

/// The first open time at or after `t` (`t` itself for 3d).
pub fn open_at_or_after(interval: Interval, t: i64) -> i64 {
    match grid(interval) {
        Grid::Fixed { step, offset } => {
            let rem = (t - offset).rem_euclid(step);
            if rem == 0 {
                t
            } else {
                t - rem + step
            }
        }
        Grid::Spaced { .. } => t,
        Grid::Months if month_start(t) == t => t,
        Grid::Months => add_months(month_start(t), 1),
    }
}

/// The last open time at or before `t` (`t` itself for 3d): the kline
/// still forming at time `t` opens there.
pub fn open_at_or_before(interval: Interval, t: i64) -> i64 {
    match grid(interval) {
        Grid::Fixed { step, offset } => t - (t - offset).rem_euclid(step),
        Grid::Spaced { .. } => t,
        Grid::Months => month_start(t),
    }
}

/// The open time of the kline after the one opening at `t`.
pub fn next_open(interval: Interval, t: i64) -> i64 {
    match grid(interval) {
        Grid::Fixed { step, .. } | Grid::Spaced { step } => t + step,
        Grid::Months => add_months(month_start(t), 1),
    }
}

/// How many klines open in `[from, to)`, `from` on the grid.
pub fn count(interval: Interval, from: i64, to: i64) -> u64 {
    if to <= from {
        return 0;
    }
    match grid(interval) {
        Grid::Fixed { step, .. } | Grid::Spaced { step } => ((to - from + step - 1) / step) as u64,
        Grid::Months => {
            let mut n = 0;
            let mut t = from;
            while t < to {
                n += 1;
                t = add_months(t, 1);
            }
            n
        }
    }
}

fn month_start(t: i64) -> i64 {
    let (y, m, _) = civil_from_days(t.div_euclid(DAY));
    days_from_civil(y, m, 1) * DAY
}

fn add_months(month_start: i64, n: i64) -> i64 {
    let (y, m, _) = civil_from_days(month_start.div_euclid(DAY));
    let months = y * 12 + (m - 1) + n;
    days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1, 1) * DAY
}

/// Open times `[from, to)` where a series has no kline although the range
/// asked for covers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Open time of the first missing kline.
    pub from: i64,
    /// Open time of the next kline present, or the end of the range.
    pub to: i64,
    /// Klines missing.
    pub missing: u64,
}

/// Follows a series of klines in open-time order and names every hole in
/// it, including one at the start or the end of the range.
#[derive(Debug, Clone)]
pub struct Continuity {
    interval: Interval,
    /// Open time the next kline should have.
    expected: i64,
}

impl Continuity {
    /// A series that should start at `from` (on the grid).
    pub fn new(interval: Interval, from: i64) -> Self {
        Continuity {
            interval,
            expected: from,
        }
    }

    /// Takes the next kline's open time; the hole before it, if any.
    pub fn push(&mut self, open_time: i64) -> Option<Gap> {
        let gap = self.hole_until(open_time);
        self.expected = next_open(self.interval, open_time);
        gap
    }

    /// The hole between the last kline and `end` (exclusive), if any.
    pub fn finish(&self, end: i64) -> Option<Gap> {
        self.hole_until(end)
    }

    fn hole_until(&self, t: i64) -> Option<Gap> {
        (t > self.expected).then(|| Gap {
            from: self.expected,
            to: t,
            missing: count(self.interval, self.expected, t),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAN1_2024: i64 = 1_704_067_200_000;

    #[test]
    fn fixed_grids_align_to_the_epoch() {
        let m1 = Interval::M1;
        assert!(is_open_time(m1, JAN1_2024));
        assert!(!is_open_time(m1, JAN1_2024 + 1));
        assert_eq!(open_at_or_after(m1, JAN1_2024 + 1), JAN1_2024 + 60_000);
        assert_eq!(open_at_or_before(m1, JAN1_2024 + 59_999), JAN1_2024);
        assert_eq!(count(m1, JAN1_2024, JAN1_2024 + DAY), 1440);
    }

    #[test]
    fn weeks_open_on_mondays_and_months_on_the_first() {
        // 2024-01-01 was a Monday.
        assert!(is_open_time(Interval::W1, JAN1_2024));
        assert!(!is_open_time(Interval::W1, JAN1_2024 + DAY));
        assert!(is_open_time(Interval::Mo1, JAN1_2024));
        let feb1 = JAN1_2024 + 31 * DAY;
        let mar1 = feb1 + 29 * DAY; // 2024 is a leap year
        assert_eq!(next_open(Interval::Mo1, JAN1_2024), feb1);
        assert_eq!(next_open(Interval::Mo1, feb1), mar1);
        assert_eq!(open_at_or_after(Interval::Mo1, JAN1_2024 + 1), feb1);
        assert_eq!(open_at_or_before(Interval::Mo1, mar1 - 1), feb1);
        assert_eq!(count(Interval::Mo1, JAN1_2024, mar1 + 1), 3);
    }

    #[test]
    fn continuity_names_holes_at_the_start_inside_and_at_the_end() {
        let m = 60_000;
        let mut c = Continuity::new(Interval::M1, 0);
        assert_eq!(
            c.push(2 * m),
            Some(Gap {
                from: 0,
                to: 2 * m,
                missing: 2
            })
        );
        assert_eq!(c.push(3 * m), None);
        assert_eq!(
            c.push(10 * m),
            Some(Gap {
                from: 4 * m,
                to: 10 * m,
                missing: 6
            })
        );
        assert_eq!(c.finish(11 * m), None);
        assert_eq!(
            c.finish(12 * m),
            Some(Gap {
                from: 11 * m,
                to: 12 * m,
                missing: 1
            })
        );
    }
}
