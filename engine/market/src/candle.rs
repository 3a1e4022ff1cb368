//! The candle (kline): one interval of trading summarised as OHLCV.

use serde::{Deserialize, Serialize};

/// One closed (or forming) interval of trading.
///
/// Invariants, enforced by [`Candle::check`] at every boundary:
/// all prices and the volume are finite, `low <= min(open, close)`,
/// `max(open, close) <= high`, and `volume >= 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// Start of the interval, milliseconds since the Unix epoch, UTC.
    pub open_time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Why a candle is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandleFault {
    #[error("{field} is not a finite number")]
    NotFinite { field: &'static str },
    #[error("high is below max(open, close)")]
    HighBelowBody,
    #[error("low is above min(open, close)")]
    LowAboveBody,
    #[error("high is below low")]
    HighBelowLow,
    #[error("volume is negative")]
    NegativeVolume,
}

impl Candle {
    /// Checks the invariants listed on the type.
    ///
    /// # Errors
    /// The first [`CandleFault`] found, in the order of the fields.
    pub fn check(&self) -> Result<(), CandleFault> {
        for (field, v) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
        ] {
            if !v.is_finite() {
                return Err(CandleFault::NotFinite { field });
            }
        }
        if self.high < self.low {
            return Err(CandleFault::HighBelowLow);
        }
        if self.high < self.open.max(self.close) {
            return Err(CandleFault::HighBelowBody);
        }
        if self.low > self.open.min(self.close) {
            return Err(CandleFault::LowAboveBody);
        }
        if self.volume < 0.0 {
            return Err(CandleFault::NegativeVolume);
        }
        Ok(())
    }

    /// The typical price `(high + low + close) / 3`, in TA-Lib's order.
    #[inline]
    pub fn typical(&self) -> f64 {
        (self.high + self.low + self.close) / 3.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(o: f64, h: f64, l: f64, c: f64, v: f64) -> Candle {
        Candle {
            open_time: 0,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: v,
        }
    }

    #[test]
    fn accepts_a_well_formed_candle() {
        assert_eq!(candle(1.0, 2.0, 0.5, 1.5, 10.0).check(), Ok(()));
        assert_eq!(candle(1.0, 1.0, 1.0, 1.0, 0.0).check(), Ok(()));
    }

    #[test]
    fn names_each_fault() {
        assert_eq!(
            candle(f64::NAN, 2.0, 0.5, 1.5, 1.0).check(),
            Err(CandleFault::NotFinite { field: "open" })
        );
        assert_eq!(
            candle(1.0, 2.0, 0.5, 1.5, f64::INFINITY).check(),
            Err(CandleFault::NotFinite { field: "volume" })
        );
        assert_eq!(
            candle(1.0, 0.4, 0.5, 0.45, 1.0).check(),
            Err(CandleFault::HighBelowLow)
        );
        assert_eq!(
            candle(1.0, 1.2, 0.5, 1.5, 1.0).check(),
            Err(CandleFault::HighBelowBody)
        );
        assert_eq!(
            candle(1.0, 2.0, 1.1, 1.5, 1.0).check(),
            Err(CandleFault::LowAboveBody)
        );
        assert_eq!(
            candle(1.0, 2.0, 0.5, 1.5, -1.0).check(),
            Err(CandleFault::NegativeVolume)
        );
    }
}
