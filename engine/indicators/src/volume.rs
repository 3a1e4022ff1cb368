//! Volume-based indicators: OBV, MFI, VWAP.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::primitives::Ring;
use crate::Streaming;

/// On-balance volume; its first value is the first bar's volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Obv {
    previous_close: Option<f64>,
    value: f64,
}

impl Obv {
    pub fn new() -> Self {
        Obv {
            previous_close: None,
            value: 0.0,
        }
    }
}

impl Default for Obv {
    fn default() -> Self {
        Self::new()
    }
}

impl Streaming for Obv {
    fn lookback(&self) -> usize {
        0
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        match self.previous_close.replace(c.close) {
            None => self.value = c.volume,
            // Selects, not branches (the direction of a close is a coin
            // toss to a predictor); bit for bit TA-Lib's branches.
            Some(p) => {
                let signed = if c.close > p { c.volume } else { -c.volume };
                let moved = self.value + signed;
                // Not `!=`: neither comparison holds for a NaN either.
                let moves = (c.close > p) | (c.close < p);
                self.value = if moves { moved } else { self.value };
            }
        }
        out[0] = self.value;
    }
}

/// Money flow index, ported from TA-Lib 0.6.4 (C library bundled with the
/// pinned wheel): 0 when the window's total money flow is below 1.0, a
/// fixed cut-off that later TA-Lib sources dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mfi {
    period: usize,
    previous_typical: Option<f64>,
    positive: Ring,
    negative: Ring,
    positive_sum: f64,
    negative_sum: f64,
}

impl Mfi {
    pub fn new(period: usize) -> Self {
        Mfi {
            period,
            previous_typical: None,
            positive: Ring::new(period),
            negative: Ring::new(period),
            positive_sum: 0.0,
            negative_sum: 0.0,
        }
    }
}

impl Streaming for Mfi {
    fn lookback(&self) -> usize {
        self.period
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        out[0] = f64::NAN;
        let typical = c.typical();
        let Some(previous) = self.previous_typical.replace(typical) else {
            return;
        };
        let change = typical - previous;
        let flow = typical * c.volume;
        let (up, down) = if change < 0.0 {
            (0.0, flow)
        } else if change > 0.0 {
            (flow, 0.0)
        } else {
            (0.0, 0.0)
        };
        if let Some(old) = self.positive.push(up) {
            self.positive_sum -= old;
        }
        if let Some(old) = self.negative.push(down) {
            self.negative_sum -= old;
        }
        // Adding the zero side is exact, so this is TA-Lib's either/or.
        self.negative_sum += down;
        self.positive_sum += up;
        if !self.positive.is_full() {
            return;
        }
        let total = self.positive_sum + self.negative_sum;
        out[0] = if total < 1.0 {
            0.0
        } else {
            100.0 * (self.positive_sum / total)
        };
    }
}

/// Volume-weighted average price since the first bar (no sessions):
/// `sum(typical * volume) / sum(volume)`. No TA-Lib counterpart; empty
/// until some volume has traded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Vwap {
    price_volume: f64,
    volume: f64,
}

impl Vwap {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Streaming for Vwap {
    fn lookback(&self) -> usize {
        0
    }
    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        self.price_volume += c.typical() * c.volume;
        self.volume += c.volume;
        out[0] = if self.volume > 0.0 {
            self.price_volume / self.volume
        } else {
            f64::NAN
        };
    }
}
