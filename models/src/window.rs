//! Per-symbol feature history for inference.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::features::{FeatureEngine, FeatureSpec, FeatureSpecError};

/// One symbol's feature engine and its last `window` feature rows.
///
/// Invariant: `rows.len()` is a multiple of the width and at most
/// `2 * window * width`; when a push would pass that, the oldest
/// `window` rows are dropped, so pushes are amortised O(width) and
/// [`FeatureWindow::rows`] is always one contiguous slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureWindow {
    engine: FeatureEngine,
    window: usize,
    width: usize,
    rows: Vec<f64>,
}

impl FeatureWindow {
    /// # Errors
    /// As [`FeatureSpec::engine`].
    pub fn new(spec: &FeatureSpec, window: usize) -> Result<Self, FeatureSpecError> {
        let width = spec.width();
        Ok(FeatureWindow {
            engine: spec.engine()?,
            window,
            width,
            rows: Vec::with_capacity(2 * window * width),
        })
    }

    /// Applies one closed candle.
    pub fn push(&mut self, c: &Candle) {
        let cap = 2 * self.window.max(1) * self.width;
        if self.rows.len() + self.width > cap {
            let drop = self.rows.len() - (self.window.max(1) - 1) * self.width;
            self.rows.drain(..drop);
        }
        let start = self.rows.len();
        self.rows.resize(start + self.width, f64::NAN);
        self.engine.update(c, &mut self.rows[start..]);
    }

    /// True when `saved` (e.g. decoded from a checkpoint) reads as many
    /// features over as long a window as `self` and its buffers are
    /// consistent, so it can replace `self`.
    pub fn same_shape(&self, saved: &FeatureWindow) -> bool {
        saved.window == self.window
            && saved.width == self.width
            && saved.engine.width() == self.width
            && saved.rows.len().is_multiple_of(self.width.max(1))
            && saved.rows.len() <= 2 * self.window.max(1) * self.width
    }

    /// The last `min(pushed, window)` rows, row-major, oldest first: the
    /// input [`Predictor::predict`](crate::Predictor::predict) takes.
    pub fn rows(&self) -> &[f64] {
        let keep = self.window * self.width;
        &self.rows[self.rows.len().saturating_sub(keep)..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_window_rows() {
        let spec = FeatureSpec::parse("body logvol").unwrap();
        let mut w = FeatureWindow::new(&spec, 3).unwrap();
        for i in 0..10 {
            let v = i as f64;
            w.push(&Candle {
                open_time: i,
                open: 1.0,
                high: 1.0,
                low: 1.0,
                close: 1.0,
                volume: v,
            });
            let rows = w.rows();
            let n = (i as usize + 1).min(3);
            assert_eq!(rows.len(), n * 2);
            assert_eq!(rows[rows.len() - 1], v.ln_1p());
            assert_eq!(rows[1], ((i as usize + 1 - n) as f64).ln_1p());
        }
    }
}
