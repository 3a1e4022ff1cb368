//! Volatility: ATR, NATR, standard deviation.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::overlap::Moments;
use crate::primitives::{is_zero, is_zero_or_neg, true_range};
use crate::Streaming;

/// Average true range with Wilder smoothing; with `normalised`, NATR
/// (ATR as a percent of the close).
///
/// TA-Lib's seed: bar 0 has no previous close and contributes nothing; the
/// seed is the mean of the true ranges of bars 1..=N; then
/// `atr = (atr * (N - 1) + tr) / N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Atr {
    period: usize,
    normalised: bool,
    previous_close: Option<f64>,
    ranges: usize,
    /// Sum of true ranges until `ranges == period`, then the ATR.
    value: f64,
}

impl Atr {
    pub fn new(period: usize, normalised: bool) -> Self {
        Atr {
            period,
            normalised,
            previous_close: None,
            ranges: 0,
            value: 0.0,
        }
    }
}

impl Streaming for Atr {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = f64::NAN;
        let Some(previous) = self.previous_close.replace(c.close) else {
            return;
        };
        let tr = true_range(c.high, c.low, previous);
        let n = self.period as f64;
        if self.ranges < self.period {
            self.ranges += 1;
            self.value += tr;
            if self.ranges < self.period {
                return;
            }
            self.value /= n;
        } else {
            self.value *= n - 1.0;
            self.value += tr;
            self.value /= n;
        }
        out[0] = match self.normalised {
            false => self.value,
            true if is_zero(c.close) => 0.0,
            true => (self.value / c.close) * 100.0,
        };
    }
}

/// Population standard deviation of the close over N bars, times `devs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stddev {
    period: usize,
    devs: f64,
    moments: Moments,
}

impl Stddev {
    pub fn new(period: usize, devs: f64) -> Self {
        Stddev {
            period,
            devs,
            moments: Moments::new(period),
        }
    }
}

impl Streaming for Stddev {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = match self.moments.update(c.close) {
            None => f64::NAN,
            Some((mean, mean_sq)) => {
                let variance = mean_sq - mean * mean;
                match (is_zero_or_neg(variance), self.devs == 1.0) {
                    (true, _) => 0.0,
                    (false, true) => variance.sqrt(),
                    (false, false) => variance.sqrt() * self.devs,
                }
            }
        };
    }
}
