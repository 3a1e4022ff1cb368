//! Momentum oscillators: RSI, MACD, ROC, MOM, CCI, Williams %R,
//! stochastic and stochastic RSI.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::primitives::{is_zero, EmaCore, Range, Ring, SmaCore};
use crate::Streaming;

/// Wilder's RSI core over any series, with TA-Lib's seed: the first N
/// changes are summed (a zero change counts as a gain) and divided by N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RsiCore {
    period: usize,
    previous: Option<f64>,
    changes: usize,
    gain: f64,
    loss: f64,
}

impl RsiCore {
    pub(crate) fn new(period: usize) -> Self {
        RsiCore {
            period,
            previous: None,
            changes: 0,
            gain: 0.0,
            loss: 0.0,
        }
    }

    /// A fall adds to the loss, anything else to the gain. Written as
    /// selects, not a branch: the sign of a price change is a coin toss a
    /// branch predictor cannot learn, and a miss costs the whole set's
    /// work in flight. Bit for bit the branch's result.
    #[inline]
    fn add_change(&mut self, d: f64) {
        let fell = d < 0.0;
        let loss = self.loss - d;
        let gain = self.gain + d;
        self.loss = if fell { loss } else { self.loss };
        self.gain = if fell { self.gain } else { gain };
    }

    #[inline]
    pub(crate) fn update(&mut self, x: f64) -> Option<f64> {
        let previous = self.previous.replace(x)?;
        let d = x - previous;
        let n = self.period as f64;
        if self.changes < self.period {
            self.changes += 1;
            self.add_change(d);
            if self.changes < self.period {
                return None;
            }
        } else {
            self.loss *= n - 1.0;
            self.gain *= n - 1.0;
            self.add_change(d);
        }
        self.loss /= n;
        self.gain /= n;
        let total = self.gain + self.loss;
        Some(if is_zero(total) {
            0.0
        } else {
            100.0 * (self.gain / total)
        })
    }
}

/// Relative strength index of the close.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rsi {
    period: usize,
    core: RsiCore,
}

impl Rsi {
    pub fn new(period: usize) -> Self {
        Rsi {
            period,
            core: RsiCore::new(period),
        }
    }
}

impl Streaming for Rsi {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = self.core.update(c.close).unwrap_or(f64::NAN);
    }
}

/// MACD: outputs `macd, signal, hist`.
///
/// Not `EMA(fast) - EMA(slow)` computed apart: as in TA-Lib, the fast EMA's
/// seed window ends on the same bar as the slow one's, so the fast EMA
/// starts `slow - fast` bars late.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Macd {
    fast_period: usize,
    slow_period: usize,
    signal_period: usize,
    seen: usize,
    fast: EmaCore,
    slow: EmaCore,
    signal: EmaCore,
}

impl Macd {
    /// TA-Lib swaps `fast` and `slow` when given in the wrong order; so do we.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Self {
        let (fast, slow) = if slow < fast {
            (slow, fast)
        } else {
            (fast, slow)
        };
        Macd {
            fast_period: fast,
            slow_period: slow,
            signal_period: signal,
            seen: 0,
            fast: EmaCore::new(fast),
            slow: EmaCore::new(slow),
            signal: EmaCore::new(signal),
        }
    }
}

impl Streaming for Macd {
    fn lookback(&self) -> usize {
        (self.slow_period - 1) + (self.signal_period - 1)
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[..3].fill(f64::NAN);
        let late_start = self.slow_period - self.fast_period;
        let fast = if self.seen >= late_start {
            self.fast.update(c.close)
        } else {
            None
        };
        self.seen = (self.seen + 1).min(late_start + 1);
        let slow = self.slow.update(c.close);
        let (Some(fast), Some(slow)) = (fast, slow) else {
            return;
        };
        let macd = fast - slow;
        if let Some(signal) = self.signal.update(macd) {
            out[0] = macd;
            out[1] = signal;
            out[2] = macd - signal;
        }
    }
}

/// Value of the close `period` bars ago, for ROC and MOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Lag {
    window: Ring,
}

impl Lag {
    fn new(period: usize) -> Self {
        Lag {
            window: Ring::new(period),
        }
    }

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        let past = self.window.is_full().then(|| self.window.oldest());
        self.window.push(x);
        past
    }
}

/// Rate of change in percent: `(x / x[-N] - 1) * 100`, 0 when `x[-N]` is 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roc {
    period: usize,
    lag: Lag,
}

impl Roc {
    pub fn new(period: usize) -> Self {
        Roc {
            period,
            lag: Lag::new(period),
        }
    }
}

impl Streaming for Roc {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = match self.lag.update(c.close) {
            Some(past) if past != 0.0 => ((c.close / past) - 1.0) * 100.0,
            Some(_) => 0.0,
            None => f64::NAN,
        };
    }
}

/// Momentum: `x - x[-N]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mom {
    period: usize,
    lag: Lag,
}

impl Mom {
    pub fn new(period: usize) -> Self {
        Mom {
            period,
            lag: Lag::new(period),
        }
    }
}

impl Streaming for Mom {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = self
            .lag
            .update(c.close)
            .map_or(f64::NAN, |past| c.close - past);
    }
}

/// Commodity channel index over the typical price.
///
/// O(N) per update, not O(1): the mean absolute deviation has no running
/// form. It sums its ring in slot order, as TA-Lib does, and allocates
/// nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cci {
    period: usize,
    window: Ring,
}

impl Cci {
    pub fn new(period: usize) -> Self {
        Cci {
            period,
            window: Ring::new(period),
        }
    }
}

impl Streaming for Cci {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        let last = c.typical();
        self.window.push(last);
        if !self.window.is_full() {
            out[0] = f64::NAN;
            return;
        }
        let n = self.period as f64;
        let slots = self.window.slots();
        let mut average = 0.0;
        for v in slots {
            average += v;
        }
        average /= n;
        let mut deviation = 0.0;
        for v in slots {
            deviation += (v - average).abs();
        }
        let distance = last - average;
        out[0] = if distance != 0.0 && deviation != 0.0 {
            distance / (0.015 * (deviation / n))
        } else {
            0.0
        };
    }
}

/// TA-Lib's fast %K: `(x - LL) / ((HH - LL) / 100)`, 0 for a flat range.
#[inline]
fn fast_k(x: f64, highest: f64, lowest: f64) -> f64 {
    let diff = (highest - lowest) / 100.0;
    if diff != 0.0 {
        (x - lowest) / diff
    } else {
        0.0
    }
}

/// Williams %R: `(HH - C) / ((HH - LL) / -100)`, 0 for a flat range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Willr {
    period: usize,
    range: Range,
}

impl Willr {
    pub fn new(period: usize) -> Self {
        Willr {
            period,
            range: Range::new(period),
        }
    }
}

impl Streaming for Willr {
    fn lookback(&self) -> usize {
        self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = match self.range.push(c.high, c.low) {
            Some((hh, ll)) => {
                let diff = (hh - ll) / -100.0;
                if diff != 0.0 {
                    (hh - c.close) / diff
                } else {
                    0.0
                }
            }
            None => f64::NAN,
        };
    }
}

/// Slow stochastic with SMA smoothing: outputs `k, d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stoch {
    lookback: usize,
    range: Range,
    slow_k: SmaCore,
    slow_d: SmaCore,
}

impl Stoch {
    pub fn new(fast_k: usize, slow_k: usize, slow_d: usize) -> Self {
        Stoch {
            lookback: (fast_k - 1) + (slow_k - 1) + (slow_d - 1),
            range: Range::new(fast_k),
            slow_k: SmaCore::new(slow_k),
            slow_d: SmaCore::new(slow_d),
        }
    }
}

impl Streaming for Stoch {
    fn lookback(&self) -> usize {
        self.lookback
    }
    // Forced: left to itself the compiler calls it out of line from the
    // set's loop, which cost about a tenth of the 10-indicator set.
    #[inline(always)]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[..2].fill(f64::NAN);
        let Some((hh, ll)) = self.range.push(c.high, c.low) else {
            return;
        };
        let Some(k) = self.slow_k.update(fast_k(c.close, hh, ll)) else {
            return;
        };
        if let Some(d) = self.slow_d.update(k) {
            out[0] = k;
            out[1] = d;
        }
    }
}

/// Stochastic RSI: a fast stochastic over RSI values. Outputs `k, d`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StochRsi {
    lookback: usize,
    rsi: RsiCore,
    range: Range,
    fast_d: SmaCore,
}

impl StochRsi {
    pub fn new(period: usize, fast_k: usize, fast_d: usize) -> Self {
        StochRsi {
            lookback: period + (fast_k - 1) + (fast_d - 1),
            rsi: RsiCore::new(period),
            range: Range::new(fast_k),
            fast_d: SmaCore::new(fast_d),
        }
    }
}

impl Streaming for StochRsi {
    fn lookback(&self) -> usize {
        self.lookback
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[..2].fill(f64::NAN);
        let Some(rsi) = self.rsi.update(c.close) else {
            return;
        };
        let Some((hh, ll)) = self.range.push(rsi, rsi) else {
            return;
        };
        let k = fast_k(rsi, hh, ll);
        if let Some(d) = self.fast_d.update(k) {
            out[0] = k;
            out[1] = d;
        }
    }
}
