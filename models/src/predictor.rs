//! Batched inference across symbols, with every input validated first.
//!
//! A shard worker (DESIGN §2) drains a batch of closed candles, updates each
//! symbol's [`FeatureWindow`](crate::FeatureWindow), then hands every
//! symbol's window to [`Predictor::predict`] at once. The predictor checks
//! each input, packs the valid ones into one `(B, T, F)` tensor, runs **one**
//! forward, and answers per input, in input order, either a [`Prediction`]
//! or the reason there is none ([`NoPrediction`]). A bad symbol never fails
//! the batch and never yields a number computed from garbage; the reasons
//! are counted in [`PredictorStats`] for the metrics endpoint.

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::arch::Network;
use crate::{Artifact, ModelError, Scaler};

/// Why one symbol got no prediction this batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoPrediction {
    /// Fewer complete feature rows than the window.
    #[error("short history: {have} rows, the model needs {need}")]
    ShortHistory { have: usize, need: usize },
    /// A NaN or infinity in the window (an indicator still warming up, or a
    /// bad value): `row` counts from the window's start.
    #[error("non-finite feature {column} at window row {row}")]
    NonFinite { row: usize, column: usize },
    /// The input is not a whole number of rows of the model's width.
    #[error("shape mismatch: {len} values are not rows of {width} features")]
    ShapeMismatch { len: usize, width: usize },
}

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

/// Counters since the predictor was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PredictorStats {
    /// Forward passes run (one per `predict` call with a valid input).
    pub batches: u64,
    pub predicted: u64,
    pub short_history: u64,
    pub non_finite: u64,
    pub shape_mismatch: u64,
}

/// A loaded network plus its scaler, answering batches of windows.
#[derive(Debug)]
pub struct Predictor {
    network: Network,
    scaler: Scaler,
    window: usize,
    width: usize,
    device: Device,
    stats: PredictorStats,
    /// Reused packing buffer, `(B, T, F)`.
    packed: Vec<f32>,
}

/// One answer per input.
pub type Outcome = Result<Prediction, NoPrediction>;

impl Predictor {
    /// A predictor for a verified artifact on `device`.
    ///
    /// # Errors
    /// [`ModelError::Config`] when the network does not have 3 classes.
    pub fn new(artifact: &Artifact, device: Device) -> Result<Self, ModelError> {
        let network = artifact.network().clone();
        if network.config().classes != 3 {
            return Err(ModelError::config(
                "classes",
                "the predictor answers 3 classes",
            ));
        }
        Ok(Predictor {
            window: artifact.window(),
            width: artifact.features().width(),
            scaler: artifact.scaler().clone(),
            network,
            device,
            stats: PredictorStats::default(),
            packed: Vec::new(),
        })
    }

    /// Bars per window the model reads.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Features per bar.
    pub fn width(&self) -> usize {
        self.width
    }

    pub fn stats(&self) -> PredictorStats {
        self.stats
    }

    /// Checks one input: a symbol's recent raw feature rows, row-major,
    /// oldest first, any number of rows (only the last `window` are read).
    pub fn check(&self, rows: &[f64]) -> Result<(), NoPrediction> {
        if !rows.len().is_multiple_of(self.width) {
            return Err(NoPrediction::ShapeMismatch {
                len: rows.len(),
                width: self.width,
            });
        }
        let have = rows.len() / self.width;
        if have < self.window {
            return Err(NoPrediction::ShortHistory {
                have,
                need: self.window,
            });
        }
        let win = &rows[(have - self.window) * self.width..];
        if let Some(i) = win.iter().position(|v| !v.is_finite()) {
            return Err(NoPrediction::NonFinite {
                row: i / self.width,
                column: i % self.width,
            });
        }
        Ok(())
    }

    /// Answers every input in order with one batched forward over the
    /// valid ones (none when no input is valid).
    ///
    /// # Errors
    /// [`ModelError::Tensor`] only when the forward itself fails; invalid
    /// inputs are answers, not errors.
    pub fn predict(&mut self, inputs: &[&[f64]]) -> Result<Vec<Outcome>, ModelError> {
        let mut out: Vec<Outcome> = Vec::with_capacity(inputs.len());
        let mut valid = Vec::with_capacity(inputs.len());
        let (t, f) = (self.window, self.width);
        self.packed.clear();
        for (i, rows) in inputs.iter().enumerate() {
            match self.check(rows) {
                Ok(()) => {
                    let start = self.packed.len();
                    self.packed.resize(start + t * f, 0.0);
                    let win = &rows[rows.len() - t * f..];
                    for (src, dst) in win
                        .chunks_exact(f)
                        .zip(self.packed[start..].chunks_exact_mut(f))
                    {
                        self.scaler.transform_into(src, dst);
                    }
                    valid.push(i);
                    // Placeholder, replaced below.
                    out.push(Err(NoPrediction::ShortHistory { have: 0, need: 0 }));
                }
                Err(reason) => {
                    match reason {
                        NoPrediction::ShortHistory { .. } => self.stats.short_history += 1,
                        NoPrediction::NonFinite { .. } => self.stats.non_finite += 1,
                        NoPrediction::ShapeMismatch { .. } => self.stats.shape_mismatch += 1,
                    }
                    out.push(Err(reason));
                }
            }
        }
        if valid.is_empty() {
            return Ok(out);
        }
        let b = valid.len();
        let x = Tensor::from_slice(&self.packed, (b, t, f), &self.device)?;
        let probs = candle_nn::ops::softmax_last_dim(&self.network.forward(&x)?)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (k, &i) in valid.iter().enumerate() {
            let p = [probs[3 * k], probs[3 * k + 1], probs[3 * k + 2]];
            out[i] = Ok(Prediction { probs: p });
        }
        self.stats.batches += 1;
        self.stats.predicted += b as u64;
        Ok(out)
    }
}
