//! Per-feature standardisation, fitted on the training split only.

use serde::{Deserialize, Serialize};

/// `z = (x - mean) / std` per column. `std` is the population standard
/// deviation of the fitted rows; a constant column gets `std = 1` so it
/// maps to 0 instead of dividing by zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// Below this a column is treated as constant.
const MIN_STD: f64 = 1e-12;

impl Scaler {
    /// Fits on `rows`, each `width` long (Welford's algorithm, so large
    /// offsets such as prices do not cancel). Rows holding a non-finite
    /// value are skipped.
    pub fn fit<'a>(rows: impl IntoIterator<Item = &'a [f64]>, width: usize) -> Self {
        let mut n = 0f64;
        let mut mean = vec![0.0; width];
        let mut m2 = vec![0.0; width];
        for row in rows {
            if row.len() != width || !row.iter().all(|v| v.is_finite()) {
                continue;
            }
            n += 1.0;
            for ((m, s), &x) in mean.iter_mut().zip(&mut m2).zip(row) {
                let d = x - *m;
                *m += d / n;
                *s += d * (x - *m);
            }
        }
        let std = m2
            .iter()
            .map(|&s| {
                let sd = if n > 0.0 { (s / n).sqrt() } else { 0.0 };
                if sd > MIN_STD {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { mean, std }
    }

    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// Scales `row` into `out` as f32.
    ///
    /// # Panics
    /// If the lengths differ from [`Scaler::width`].
    #[inline]
    pub fn transform_into(&self, row: &[f64], out: &mut [f32]) {
        assert!(row.len() == self.width() && out.len() == self.width());
        for (((o, &x), &m), &s) in out.iter_mut().zip(row).zip(&self.mean).zip(&self.std) {
            *o = ((x - m) / s) as f32;
        }
    }

    /// True when every value is finite and every std positive.
    pub fn is_valid(&self) -> bool {
        self.mean.len() == self.std.len()
            && self.mean.iter().all(|m| m.is_finite())
            && self.std.iter().all(|s| s.is_finite() && *s > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardises_and_handles_constant_columns() {
        let rows: Vec<Vec<f64>> = vec![vec![1.0, 5.0], vec![3.0, 5.0], vec![f64::NAN, 9.0]];
        let s = Scaler::fit(rows.iter().map(Vec::as_slice), 2);
        assert_eq!(s.mean, [2.0, 5.0]);
        assert_eq!(s.std, [1.0, 1.0]);
        let mut out = [0f32; 2];
        s.transform_into(&[3.0, 5.0], &mut out);
        assert_eq!(out, [1.0, 0.0]);
        assert!(s.is_valid());
    }
}
