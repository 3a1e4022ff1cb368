//! Time spans as pandas prints them, and the data's bar period.

use serde::{Serialize, Serializer};

const DAY_MS: i64 = 86_400_000;
/// Units a duration is rounded up to, largest first (pandas' resolutions
/// `D`, `h`, `min`, `s`, `ms`).
const UNITS_MS: [i64; 5] = [DAY_MS, 3_600_000, 60_000, 1_000, 1];

/// A span of time in milliseconds, or none (pandas' `NaT`: e.g. the
/// average trade duration of a run without trades).
///
/// Displayed and serialised as pandas displays a `Timedelta`:
/// `294 days 06:00:00`, `0 days 00:00:00.500000`; none is `null` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span(pub Option<i64>);

impl Span {
    pub fn exact(ms: i64) -> Span {
        Span(Some(ms))
    }

    /// A mean of spans, kept to the millisecond.
    pub(crate) fn mean(values: impl Iterator<Item = i64>) -> Span {
        let (mut sum, mut n) = (0_i128, 0_i128);
        for v in values {
            sum += i128::from(v);
            n += 1;
        }
        if n == 0 {
            return Span(None);
        }
        Span(i64::try_from(sum / n).ok())
    }

    /// Rounded up to the unit of the bar period (`ceil('h')` for hourly
    /// bars), as backtesting.py rounds its durations.
    pub fn ceil_to(self, period_ms: Option<i64>) -> Span {
        let (Some(ms), Some(period)) = (self.0, period_ms) else {
            return self;
        };
        let unit = resolution(period);
        Span(Some(
            ms.div_euclid(unit) * unit + if ms.rem_euclid(unit) > 0 { unit } else { 0 },
        ))
    }

    pub fn ms(self) -> Option<i64> {
        self.0
    }
}

impl std::fmt::Display for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(ms) = self.0 else {
            return f.write_str("NaT");
        };
        let (days, rem) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
        let secs = rem / 1_000;
        write!(
            f,
            "{days} days {:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        match rem % 1_000 {
            0 => Ok(()),
            frac => write!(f, ".{:06}", frac * 1_000),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(_) => s.collect_str(self),
            None => s.serialize_none(),
        }
    }
}

/// pandas' `Timedelta.resolution_string` of a bar period, in ms.
fn resolution(period_ms: i64) -> i64 {
    UNITS_MS
        .into_iter()
        .find(|u| period_ms % u == 0)
        .unwrap_or(1)
}

/// The bar period as backtesting.py infers it: the median spacing of the
/// last 100 timestamps. `None` with fewer than two bars.
pub(crate) fn data_period(time: &[i64]) -> Option<i64> {
    let tail = &time[time.len().saturating_sub(100)..];
    let mut diffs: Vec<i64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    if diffs.is_empty() {
        return None;
    }
    diffs.sort_unstable();
    let mid = diffs.len() / 2;
    Some(if diffs.len() % 2 == 1 {
        diffs[mid]
    } else {
        // pandas averages the two middle values (in ns); ms is enough here.
        (diffs[mid - 1] + diffs[mid]) / 2
    })
}

/// Years in a span as backtesting.py counts them for CAGR:
/// `(days + seconds / 86400) / 365.25`.
pub(crate) fn years(ms: i64) -> f64 {
    let days = ms.div_euclid(DAY_MS) as f64;
    let seconds = (ms.rem_euclid(DAY_MS) / 1_000) as f64;
    (days + seconds / 86_400.0) / 365.25
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_pandas() {
        assert_eq!(
            Span::exact(294 * DAY_MS + 6 * 3_600_000).to_string(),
            "294 days 06:00:00"
        );
        assert_eq!(Span::exact(3 * 3_600_000).to_string(), "0 days 03:00:00");
        assert_eq!(Span::exact(500).to_string(), "0 days 00:00:00.500000");
        assert_eq!(Span(None).to_string(), "NaT");
    }

    #[test]
    fn rounds_up_to_the_bar_unit() {
        let hour = 3_600_000;
        assert_eq!(
            Span::exact(hour + 1).ceil_to(Some(hour)),
            Span::exact(2 * hour)
        );
        assert_eq!(
            Span::exact(2 * hour).ceil_to(Some(hour)),
            Span::exact(2 * hour)
        );
        assert_eq!(
            Span::exact(hour + 1).ceil_to(Some(DAY_MS)),
            Span::exact(DAY_MS)
        );
        assert_eq!(
            Span::exact(90_500).ceil_to(Some(1_800_000)),
            Span::exact(120_000)
        );
    }

    #[test]
    fn period_is_the_median_spacing() {
        assert_eq!(data_period(&[0, 10, 20, 50]), Some(10));
        assert_eq!(data_period(&[0]), None);
    }
}
