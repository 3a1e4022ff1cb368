//! Directional movement: +DI, -DI and ADX (Wilder), in TA-Lib's order.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::primitives::{is_zero, true_range};
use crate::Streaming;

/// Smoothed +DM, -DM and true range.
///
/// Bar 0 only sets the previous values. Bars 1..N-1 sum the raw
/// movements; from bar N on, each sum decays by 1/N before the new
/// movement is added (`tr = tr - tr / N + new`). A movement counts for the
/// side that moved more, and for neither on a tie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DmCore {
    period: usize,
    seen: usize,
    previous: Option<(f64, f64, f64)>,
    plus_dm: f64,
    minus_dm: f64,
    tr: f64,
}

/// `(+DI, -DI)` in percent from smoothed sums, 0 when the range is 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Di {
    plus: f64,
    minus: f64,
    /// False when TA-Lib leaves the values undefined (zero true range).
    defined: bool,
}

impl DmCore {
    pub(crate) fn new(period: usize) -> Self {
        DmCore {
            period,
            seen: 0,
            previous: None,
            plus_dm: 0.0,
            minus_dm: 0.0,
            tr: 0.0,
        }
    }

    /// The DIs from bar N on.
    #[inline]
    pub(crate) fn update(&mut self, c: &Candle) -> Option<Di> {
        let (prev_high, prev_low, prev_close) = self.previous.replace((c.high, c.low, c.close))?;
        let up = c.high - prev_high;
        let down = prev_low - c.low;
        let tr = true_range(c.high, c.low, prev_close);
        let n = self.period as f64;
        let smoothing = self.seen + 1 >= self.period;
        if smoothing {
            self.minus_dm -= self.minus_dm / n;
            self.plus_dm -= self.plus_dm / n;
        } else {
            self.seen += 1;
        }
        // Selects, not branches: which side moved more is a coin toss to
        // a branch predictor. Bit for bit TA-Lib's `if / else if`.
        let minus = (down > 0.0) & (up < down);
        let plus = !minus & (up > 0.0) & (up > down);
        let minus_dm = self.minus_dm + down;
        let plus_dm = self.plus_dm + up;
        self.minus_dm = if minus { minus_dm } else { self.minus_dm };
        self.plus_dm = if plus { plus_dm } else { self.plus_dm };
        if !smoothing {
            self.tr += tr;
            return None;
        }
        self.tr = self.tr - (self.tr / n) + tr;
        if is_zero(self.tr) {
            return Some(Di {
                plus: 0.0,
                minus: 0.0,
                defined: false,
            });
        }
        Some(Di {
            plus: 100.0 * (self.plus_dm / self.tr),
            minus: 100.0 * (self.minus_dm / self.tr),
            defined: true,
        })
    }
}

/// Which directional indicator a [`DirectionalIndex`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiSide {
    Plus,
    Minus,
}

/// +DI or -DI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionalIndex {
    period: usize,
    side: DiSide,
    core: DmCore,
}

impl DirectionalIndex {
    pub fn new(period: usize, side: DiSide) -> Self {
        DirectionalIndex {
            period,
            side,
            core: DmCore::new(period),
        }
    }
}

impl Streaming for DirectionalIndex {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = match (self.core.update(c), self.side) {
            (None, _) => f64::NAN,
            (Some(di), DiSide::Plus) => di.plus,
            (Some(di), DiSide::Minus) => di.minus,
        };
    }
}

/// Average directional index: Wilder's average of DX, seeded with the
/// mean of the first N DX values, so the first value is at bar 2N - 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adx {
    period: usize,
    core: DmCore,
    dx_seen: usize,
    /// Sum of DX until `dx_seen == period`, then the ADX.
    value: f64,
}

impl Adx {
    pub fn new(period: usize) -> Self {
        Adx {
            period,
            core: DmCore::new(period),
            dx_seen: 0,
            value: 0.0,
        }
    }
}

/// DX from the DIs, or None where TA-Lib skips the bar.
#[inline]
fn dx(di: Di) -> Option<f64> {
    let total = di.minus + di.plus;
    (di.defined && !is_zero(total)).then(|| 100.0 * ((di.minus - di.plus).abs() / total))
}

impl Streaming for Adx {
    fn lookback(&self) -> usize {
        2 * self.period - 1
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = f64::NAN;
        let Some(di) = self.core.update(c) else {
            return;
        };
        let n = self.period as f64;
        if self.dx_seen < self.period {
            self.dx_seen += 1;
            if let Some(dx) = dx(di) {
                self.value += dx;
            }
            if self.dx_seen < self.period {
                return;
            }
            self.value /= n;
        } else if let Some(dx) = dx(di) {
            self.value = ((self.value * (n - 1.0)) + dx) / n;
        }
        out[0] = self.value;
    }
}
