//! [`Prediction`]: a model's answer for one bar, as plain data.

use serde::Serialize;

/// One symbol's answer: class probabilities in manifest order
/// (down, flat, up).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    pub probs: [f32; 3],
}

impl Prediction {
    /// Index of the most probable class (ties go to the lower index).
    pub fn class(&self) -> usize {
        let mut best = 0;
        for (i, p) in self.probs.iter().enumerate() {
            if *p > self.probs[best] {
                best = i;
            }
        }
        best
    }

    /// `p(up) - p(down)`, in `[-1, 1]`: a signed signal strength.
    pub fn score(&self) -> f32 {
        self.probs[2] - self.probs[0]
    }
}
