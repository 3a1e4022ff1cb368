//! The account's value at every bar's close.

/// Per bar: open time, close price and equity at the close. All three
/// vectors have the same length, one entry per bar processed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EquityCurve {
    time: Vec<i64>,
    close: Vec<f64>,
    equity: Vec<f64>,
}

impl EquityCurve {
    pub(crate) fn reserve(&mut self, n: usize) {
        self.time.reserve(n);
        self.close.reserve(n);
        self.equity.reserve(n);
    }

    pub(crate) fn push(&mut self, time: i64, close: f64, equity: f64) {
        self.time.push(time);
        self.close.push(close);
        self.equity.push(equity);
    }

    /// Replaces the last equity value (the end-of-data close re-marks it).
    pub(crate) fn set_last_equity(&mut self, equity: f64) {
        if let Some(last) = self.equity.last_mut() {
            *last = equity;
        }
    }

    pub fn len(&self) -> usize {
        self.time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time.is_empty()
    }

    pub fn time(&self) -> &[i64] {
        &self.time
    }

    pub fn close(&self) -> &[f64] {
        &self.close
    }

    pub fn equity(&self) -> &[f64] {
        &self.equity
    }

    /// The final equity; NaN for an empty curve.
    pub fn last_equity(&self) -> f64 {
        self.equity.last().copied().unwrap_or(f64::NAN)
    }

    /// Drawdown per bar as a fraction of the running peak (0 at a peak),
    /// `1 - equity / max(equity so far)` as backtesting.py computes it.
    pub fn drawdown(&self) -> Vec<f64> {
        self.drawdown_iter().collect()
    }

    /// [`EquityCurve::drawdown`] bar by bar, without a vector.
    pub fn drawdown_iter(&self) -> impl Iterator<Item = f64> + '_ {
        let mut peak = f64::NEG_INFINITY;
        self.equity.iter().map(move |&e| {
            peak = peak.max(e);
            1.0 - e / peak
        })
    }
}
