//! From candles to labelled windows: labels from the future return, and a
//! time-ordered train/validation split that leaks nothing.
//!
//! A sample is named by its last bar `t`: its input is the feature rows
//! `t-W+1 ..= t`, its label comes from `close[t+h] / close[t] - 1`.
//!
//! The split is by time: validation is the last `val_fraction` of samples.
//! Training samples whose label looks past the first validation bar
//! (`t + h >= v0`) are purged, so no training label overlaps a validation
//! label's period. The scaler is fitted on feature rows up to the last
//! training bar only.

use serde::{Deserialize, Serialize};

use crate::{ModelError, Scaler};

/// Class indices of the three-way label.
pub const DOWN: usize = 0;
pub const FLAT: usize = 1;
pub const UP: usize = 2;
/// Class names in index order, as the manifest lists them.
pub const CLASS_NAMES: [&str; 3] = ["down", "flat", "up"];

/// How a future return becomes a class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelRule {
    /// Bars ahead (`h >= 1`).
    pub horizon: usize,
    /// `up` when the return is strictly above this (e.g. 0.005 = +0.5%).
    pub up: f64,
    /// `down` when the return is strictly below minus this.
    pub down: f64,
}

impl LabelRule {
    /// # Errors
    /// [`ModelError::Config`] for a zero horizon or a negative or
    /// non-finite threshold.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.horizon == 0 {
            return Err(ModelError::config("horizon", "must be at least 1"));
        }
        for (field, v) in [("up threshold", self.up), ("down threshold", self.down)] {
            if !v.is_finite() || v < 0.0 {
                return Err(ModelError::config(field, format!("must be >= 0, got {v}")));
            }
        }
        Ok(())
    }

    /// The class of a return.
    pub fn classify(&self, ret: f64) -> usize {
        if ret > self.up {
            UP
        } else if ret < -self.down {
            DOWN
        } else {
            FLAT
        }
    }
}

/// Feature rows, labels and the split of one series.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Row-major `(n, width)` raw features.
    pub rows: Vec<f64>,
    pub width: usize,
    pub window: usize,
    /// Label of each sample end `t` (index by bar); `None` past `n - h`.
    pub labels: Vec<Option<usize>>,
    /// Sample ends, ascending.
    pub train: Vec<usize>,
    /// Sample ends, ascending; every one after every training label.
    pub val: Vec<usize>,
    pub scaler: Scaler,
}

impl Dataset {
    /// Labels, splits and fits the scaler.
    ///
    /// `first_bar` is the first bar where every feature has a value.
    ///
    /// # Errors
    /// [`ModelError::NotEnoughData`] when either split would be empty, and
    /// [`ModelError::Config`] for a bad fraction or window.
    pub fn build(
        rows: Vec<f64>,
        width: usize,
        closes: &[f64],
        first_bar: usize,
        window: usize,
        rule: LabelRule,
        val_fraction: f64,
    ) -> Result<Self, ModelError> {
        rule.validate()?;
        if !(0.0..1.0).contains(&val_fraction) || val_fraction == 0.0 {
            return Err(ModelError::config(
                "validation fraction",
                "must be in (0, 1)",
            ));
        }
        if window == 0 {
            return Err(ModelError::config("window", "must be at least 1"));
        }
        let n = closes.len();
        let h = rule.horizon;
        let labels: Vec<Option<usize>> = (0..n)
            .map(|t| (t + h < n).then(|| rule.classify(closes[t + h] / closes[t] - 1.0)))
            .collect();
        let first_end = first_bar + window - 1;
        let ends: Vec<usize> = (first_end..n.saturating_sub(h))
            .filter(|&t| {
                rows[(t + 1 - window) * width..(t + 1) * width]
                    .iter()
                    .all(|v| v.is_finite())
            })
            .collect();
        let n_val = ((ends.len() as f64) * val_fraction).round() as usize;
        if ends.len() < 2 || n_val == 0 || n_val >= ends.len() {
            return Err(ModelError::NotEnoughData(format!(
                "{n} bars give {} samples (first full window ends at bar {first_end}, horizon {h}); need at least 2",
                ends.len()
            )));
        }
        let val = ends[ends.len() - n_val..].to_vec();
        let v0 = val[0];
        let train: Vec<usize> = ends[..ends.len() - n_val]
            .iter()
            .copied()
            .filter(|&t| t + h < v0)
            .collect();
        let Some(&last_train) = train.last() else {
            return Err(ModelError::NotEnoughData(
                "no training samples remain after purging the horizon before validation".into(),
            ));
        };
        let scaler = Scaler::fit(
            rows[first_bar * width..(last_train + 1) * width].chunks_exact(width),
            width,
        );
        Ok(Dataset {
            rows,
            width,
            window,
            labels,
            train,
            val,
            scaler,
        })
    }

    /// Label of sample end `t`.
    pub fn label(&self, t: usize) -> usize {
        self.labels[t].unwrap_or(FLAT)
    }

    /// Scaled windows of `ends`, packed `(B, W, F)` row-major f32.
    pub fn pack(&self, ends: &[usize]) -> Vec<f32> {
        let (w, f) = (self.window, self.width);
        let mut out = vec![0f32; ends.len() * w * f];
        for (dst, &t) in out.chunks_exact_mut(w * f).zip(ends) {
            let src = &self.rows[(t + 1 - w) * f..(t + 1) * f];
            for (d, s) in dst.chunks_exact_mut(f).zip(src.chunks_exact(f)) {
                self.scaler.transform_into(s, d);
            }
        }
        out
    }

    /// Count of each class among `ends`.
    pub fn class_counts(&self, ends: &[usize]) -> [usize; 3] {
        let mut c = [0; 3];
        for &t in ends {
            c[self.label(t)] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, window: usize, h: usize) -> Dataset {
        // Feature = bar index, so the scaler's fitted mean reveals which
        // rows it saw.
        let rows: Vec<f64> = (0..n).map(|i| i as f64).collect();
        let closes: Vec<f64> = (0..n).map(|i| 100.0 + (i % 7) as f64).collect();
        let rule = LabelRule {
            horizon: h,
            up: 0.001,
            down: 0.001,
        };
        Dataset::build(rows, 1, &closes, 3, window, rule, 0.25).unwrap()
    }

    #[test]
    fn split_is_time_ordered_and_purged() {
        for h in [1, 5, 12] {
            let ds = toy(200, 10, h);
            let last_train = *ds.train.last().unwrap();
            let first_val = ds.val[0];
            // No training label reaches the validation period.
            assert!(last_train + h < first_val, "h={h}");
            assert!(ds.train.windows(2).all(|w| w[0] < w[1]));
            // Every sample's label exists.
            assert!(ds.val.iter().all(|&t| t + h < 200));
            // Scaler saw rows 3..=last_train only: mean of 3..=L.
            let expect = (3 + last_train) as f64 / 2.0;
            assert!((ds.scaler.mean[0] - expect).abs() < 1e-9);
        }
    }

    #[test]
    fn labels_follow_thresholds() {
        let rule = LabelRule {
            horizon: 1,
            up: 0.005,
            down: 0.01,
        };
        assert_eq!(rule.classify(0.006), UP);
        assert_eq!(rule.classify(0.005), FLAT);
        assert_eq!(rule.classify(-0.009), FLAT);
        assert_eq!(rule.classify(-0.011), DOWN);
        assert!(LabelRule { horizon: 0, ..rule }.validate().is_err());
        assert!(LabelRule { up: -1.0, ..rule }.validate().is_err());
    }

    #[test]
    fn pack_scales_each_window() {
        let ds = toy(100, 4, 1);
        let t = ds.val[0];
        let packed = ds.pack(&[t]);
        assert_eq!(packed.len(), 4);
        let s = &ds.scaler;
        let want = ((t as f64 - s.mean[0]) / s.std[0]) as f32;
        assert_eq!(packed[3], want);
    }
}
