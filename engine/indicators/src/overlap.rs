//! Moving averages and bands: SMA, EMA, WMA, DEMA, TEMA, Bollinger bands.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::primitives::{is_zero_or_neg, EmaCore, Ring, SmaCore};
use crate::Streaming;

/// Simple moving average of the close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sma {
    period: usize,
    core: SmaCore,
}

impl Sma {
    pub fn new(period: usize) -> Self {
        Sma {
            period,
            core: SmaCore::new(period),
        }
    }
}

impl Streaming for Sma {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = self.core.update(c.close).unwrap_or(f64::NAN);
    }
}

/// Exponential moving average of the close, SMA-seeded as in TA-Lib.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ema {
    period: usize,
    core: EmaCore,
}

impl Ema {
    pub fn new(period: usize) -> Self {
        Ema {
            period,
            core: EmaCore::new(period),
        }
    }
}

impl Streaming for Ema {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = self.core.update(c.close).unwrap_or(f64::NAN);
    }
}

/// Linearly weighted moving average (weights 1..N, newest heaviest).
///
/// TA-Lib keeps the weighted sum and the plain sum and slides both:
/// `sum += N * x; out = sum / divider; sum -= plain` where `plain` is the
/// sum of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wma {
    period: usize,
    window: Ring,
    weighted: f64,
    plain: f64,
    trailing: f64,
    seen: usize,
}

impl Wma {
    pub fn new(period: usize) -> Self {
        Wma {
            period,
            window: Ring::new(period),
            weighted: 0.0,
            plain: 0.0,
            trailing: 0.0,
            seen: 0,
        }
    }
}

impl Streaming for Wma {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        let x = c.close;
        let n = self.period;
        self.window.push(x);
        if !self.window.is_full() {
            self.seen += 1;
            self.plain += x;
            self.weighted += x * self.seen as f64;
            out[0] = f64::NAN;
            return;
        }
        self.plain += x;
        self.plain -= self.trailing;
        self.weighted += x * n as f64;
        // The value that leaves the window after this bar (TA-Lib's trailingValue).
        self.trailing = self.window.oldest();
        let divider = (n * (n + 1) / 2) as f64;
        out[0] = self.weighted / divider;
        self.weighted -= self.plain;
    }
}

/// Double EMA: `2 * ema - ema(ema)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dema {
    period: usize,
    first: EmaCore,
    second: EmaCore,
}

impl Dema {
    pub fn new(period: usize) -> Self {
        Dema {
            period,
            first: EmaCore::new(period),
            second: EmaCore::new(period),
        }
    }
}

impl Streaming for Dema {
    fn lookback(&self) -> usize {
        2 * (self.period - 1)
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = f64::NAN;
        if let Some(e1) = self.first.update(c.close) {
            if let Some(e2) = self.second.update(e1) {
                out[0] = (2.0 * e1) - e2;
            }
        }
    }
}

/// Triple EMA: `e3 + (3 * e1 - 3 * e2)`, in TA-Lib's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tema {
    period: usize,
    first: EmaCore,
    second: EmaCore,
    third: EmaCore,
}

impl Tema {
    pub fn new(period: usize) -> Self {
        Tema {
            period,
            first: EmaCore::new(period),
            second: EmaCore::new(period),
            third: EmaCore::new(period),
        }
    }
}

impl Streaming for Tema {
    fn lookback(&self) -> usize {
        3 * (self.period - 1)
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = f64::NAN;
        let Some(e1) = self.first.update(c.close) else {
            return;
        };
        let Some(e2) = self.second.update(e1) else {
            return;
        };
        let Some(e3) = self.third.update(e2) else {
            return;
        };
        out[0] = e3 + ((3.0 * e1) - (3.0 * e2));
    }
}

/// Running sums of x and x² over a window, in TA-Lib's `INT_VAR` order.
///
/// Returns `(mean, mean of squares)` once the window is full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Moments {
    period: usize,
    sum: f64,
    sum_sq: f64,
    window: Ring,
}

impl Moments {
    pub(crate) fn new(period: usize) -> Self {
        Moments {
            period,
            sum: 0.0,
            sum_sq: 0.0,
            window: Ring::new(period),
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, x: f64) -> Option<(f64, f64)> {
        self.sum += x;
        self.sum_sq += x * x;
        self.window.push(x);
        if !self.window.is_full() {
            return None;
        }
        let n = self.period as f64;
        let out = (self.sum / n, self.sum_sq / n);
        let old = self.window.oldest();
        self.sum -= old;
        self.sum_sq -= old * old;
        Some(out)
    }
}

/// Bollinger bands over an SMA, with the population standard deviation.
/// Outputs `upper, middle, lower`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bbands {
    period: usize,
    dev_up: f64,
    dev_down: f64,
    moments: Moments,
}

impl Bbands {
    pub fn new(period: usize, dev_up: f64, dev_down: f64) -> Self {
        Bbands {
            period,
            dev_up,
            dev_down,
            moments: Moments::new(period),
        }
    }
}

impl Streaming for Bbands {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        let Some((middle, mean_sq)) = self.moments.update(c.close) else {
            out[..3].fill(f64::NAN);
            return;
        };
        let variance = mean_sq - middle * middle;
        let sd = if is_zero_or_neg(variance) {
            0.0
        } else {
            variance.sqrt()
        };
        let (up, down) = if self.dev_up == self.dev_down {
            let d = if self.dev_up == 1.0 {
                sd
            } else {
                sd * self.dev_up
            };
            (d, d)
        } else {
            (sd * self.dev_up, sd * self.dev_down)
        };
        out[0] = middle + up;
        out[1] = middle;
        out[2] = middle - down;
    }
}
