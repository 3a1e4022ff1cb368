//! Candle intervals, named as Binance names them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A candle interval: `1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Interval {
    S1,
    M1,
    M3,
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H8,
    H12,
    D1,
    D3,
    W1,
    /// One calendar month: its length varies, see [`Interval::nominal_ms`].
    Mo1,
}

/// The string is not one of the intervals above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown interval {0:?}: expected one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M"
)]
pub struct IntervalError(pub String);

const TABLE: [(Interval, &str, i64); 16] = [
    (Interval::S1, "1s", 1_000),
    (Interval::M1, "1m", 60_000),
    (Interval::M3, "3m", 180_000),
    (Interval::M5, "5m", 300_000),
    (Interval::M15, "15m", 900_000),
    (Interval::M30, "30m", 1_800_000),
    (Interval::H1, "1h", 3_600_000),
    (Interval::H2, "2h", 7_200_000),
    (Interval::H4, "4h", 14_400_000),
    (Interval::H6, "6h", 21_600_000),
    (Interval::H8, "8h", 28_800_000),
    (Interval::H12, "12h", 43_200_000),
    (Interval::D1, "1d", 86_400_000),
    (Interval::D3, "3d", 259_200_000),
    (Interval::W1, "1w", 604_800_000),
    (Interval::Mo1, "1M", 2_592_000_000),
];

impl Interval {
    /// Length in milliseconds; a month counts as 30 days (nominal).
    pub fn nominal_ms(self) -> i64 {
        TABLE[self as usize].2
    }

    pub fn as_str(self) -> &'static str {
        TABLE[self as usize].1
    }

    /// The interval whose length is exactly `ms`, if any (months excluded).
    pub fn from_ms(ms: i64) -> Option<Interval> {
        TABLE[..15]
            .iter()
            .find(|(_, _, len)| *len == ms)
            .map(|(i, _, _)| *i)
    }
}

impl FromStr for Interval {
    type Err = IntervalError;
    fn from_str(s: &str) -> Result<Self, IntervalError> {
        TABLE
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(i, _, _)| *i)
            .ok_or_else(|| IntervalError(s.chars().take(16).collect()))
    }
}

impl TryFrom<String> for Interval {
    type Error = IntervalError;
    fn try_from(s: String) -> Result<Self, IntervalError> {
        s.parse()
    }
}

impl From<Interval> for String {
    fn from(i: Interval) -> String {
        i.as_str().to_owned()
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_name() {
        for (i, name, ms) in TABLE {
            assert_eq!(name.parse::<Interval>().unwrap(), i);
            assert_eq!(i.as_str(), name);
            assert_eq!(i.nominal_ms(), ms);
        }
        assert!("2m".parse::<Interval>().is_err());
        assert_eq!(Interval::from_ms(3_600_000), Some(Interval::H1));
    }
}
