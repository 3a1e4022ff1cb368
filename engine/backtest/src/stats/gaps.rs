//! Holes in the series: reported, never filled.
//!
//! Real data has holes. A stock's daily bars skip weekends and exchange
//! holidays, its intraday bars skip nights, and a 24/7 crypto feed can miss
//! a minute. A backtest runs over what is there (no bar is interpolated:
//! a strategy sees the next real bar, as it would have live) and says what
//! was missing, so a reader can tell a calendar from a broken download.
//! `candlewick backtest --gaps fail` refuses any hole instead.

use serde::Serialize;

use super::duration::Span;
use crate::series::is_weekend_closure;

/// What the series is missing, measured against its bar interval (the
/// smallest spacing between two bars).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaps {
    /// Holes: consecutive bars further apart than the interval.
    pub count: u64,
    /// Of which weekend closures: a hole holding a whole Saturday (UTC)
    /// and lasting at most four days. The rest are holidays, nights,
    /// half-days, or missing data.
    pub weekend: u64,
    /// Bars the holes would hold at the interval.
    pub missing_bars: u64,
    /// The longest hole, from the bar before it to the bar after it.
    pub largest: Span,
    /// The open time of the bar before the longest hole.
    pub largest_after: Option<String>,
}

impl Gaps {
    /// Measures the holes of bars opening at `time` (strictly increasing).
    pub fn measure(time: &[i64]) -> Gaps {
        let interval = time
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|&d| d > 0)
            .min();
        let mut gaps = Gaps {
            count: 0,
            weekend: 0,
            missing_bars: 0,
            largest: Span(None),
            largest_after: None,
        };
        let Some(interval) = interval else {
            return gaps;
        };
        let mut largest: Option<(i64, i64)> = None;
        for w in time.windows(2) {
            let spacing = w[1] - w[0];
            if spacing <= interval {
                continue;
            }
            gaps.count += 1;
            gaps.missing_bars += u64::try_from((spacing - 1) / interval).unwrap_or(0);
            if is_weekend_closure(w[0], w[1]) {
                gaps.weekend += 1;
            }
            if largest.is_none_or(|(s, _)| spacing > s) {
                largest = Some((spacing, w[0]));
            }
        }
        if let Some((spacing, after)) = largest {
            gaps.largest = Span::exact(spacing);
            gaps.largest_after = Some(candlewick_market::time::format_ms(after));
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    /// Wednesday 2018-11-21 00:00 UTC, the day before Thanksgiving.
    const WED: i64 = 1_542_758_400_000;

    #[test]
    fn a_holiday_and_a_weekend_in_daily_bars() {
        // Wed, (Thanksgiving), Fri, (weekend), Mon, Tue
        let time = [WED, WED + 2 * DAY_MS, WED + 5 * DAY_MS, WED + 6 * DAY_MS];
        let g = Gaps::measure(&time);
        assert_eq!((g.count, g.weekend, g.missing_bars), (2, 1, 3));
        assert_eq!(g.largest, Span::exact(3 * DAY_MS));
        assert_eq!(g.largest_after.as_deref(), Some("2018-11-23 00:00:00"));
    }

    #[test]
    fn a_missing_minute_in_a_24_7_series_is_counted() {
        let m = 60_000;
        let time = [0, m, 2 * m, 4 * m, 5 * m];
        let g = Gaps::measure(&time);
        assert_eq!((g.count, g.weekend, g.missing_bars), (1, 0, 1));
        assert_eq!(g.largest, Span::exact(2 * m));
    }

    #[test]
    fn a_regular_series_has_none() {
        let g = Gaps::measure(&[0, 10, 20, 30]);
        assert_eq!((g.count, g.missing_bars, g.largest), (0, 0, Span(None)));
        assert_eq!(Gaps::measure(&[]).count, 0);
    }
}
