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

use crate::arch::{CpuNet, CpuScratch, Network};
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
    /// The network answered a NaN or infinity for a valid input (a weight
    /// blew up, or an input far outside the training range): never passed
    /// on as a number.
    #[error("non-finite model output")]
    NonFiniteOutput,
}

pub use candlewick_core::Prediction;

/// Counters since the predictor was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PredictorStats {
    /// Forward passes run (one per `predict` call with a valid input).
    pub batches: u64,
    pub predicted: u64,
    pub short_history: u64,
    pub non_finite: u64,
    pub shape_mismatch: u64,
    /// Valid inputs whose output was not finite.
    pub non_finite_output: u64,
}

/// Which implementation runs a [`Predictor`]'s forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// [`CpuNet`]: packed weights, preallocated buffers, run-time SIMD; the
    /// default on the CPU (tested against candle's output).
    Cpu,
    /// candle's [`Network::forward`] on the predictor's device: the
    /// reference, and the path on a GPU.
    Candle,
}

/// A loaded network plus its scaler, answering batches of windows.
#[derive(Debug)]
pub struct Predictor {
    network: Network,
    /// The packed CPU network and its buffers when the kernel is [`Kernel::Cpu`].
    cpu: Option<(CpuNet, CpuScratch)>,
    /// Reused: logits, then probabilities, `(B, classes)`.
    logits: Vec<f32>,
    scaler: Scaler,
    window: usize,
    width: usize,
    device: Device,
    stats: PredictorStats,
    /// Reused packing buffer, `(B, T, F)`.
    packed: Vec<f32>,
    /// Reused: the input index of each packed window.
    valid: Vec<usize>,
}

/// One answer per input.
pub type Outcome = Result<Prediction, NoPrediction>;

impl Predictor {
    /// A predictor for a verified artifact on `device`: [`Kernel::Cpu`] on
    /// the CPU, [`Kernel::Candle`] on any other device.
    ///
    /// # Errors
    /// [`ModelError::Config`] when the network does not have 3 classes.
    pub fn new(artifact: &Artifact, device: Device) -> Result<Self, ModelError> {
        let kernel = if device.is_cpu() {
            Kernel::Cpu
        } else {
            Kernel::Candle
        };
        Self::with_kernel(artifact, device, kernel)
    }

    /// A predictor that runs `kernel` ([`Kernel::Cpu`] always runs on the
    /// CPU, whatever `device`).
    ///
    /// # Errors
    /// As [`Predictor::new`], and [`ModelError::Tensor`] when the weights
    /// cannot be packed.
    pub fn with_kernel(
        artifact: &Artifact,
        device: Device,
        kernel: Kernel,
    ) -> Result<Self, ModelError> {
        let network = artifact.network().clone();
        if network.config().classes != 3 {
            return Err(ModelError::config(
                "classes",
                "the predictor answers 3 classes",
            ));
        }
        let cpu = match kernel {
            Kernel::Cpu => Some((CpuNet::new(&network)?, CpuScratch::default())),
            Kernel::Candle => None,
        };
        Ok(Predictor {
            cpu,
            logits: Vec::new(),
            window: artifact.window(),
            width: artifact.features().width(),
            scaler: artifact.scaler().clone(),
            network,
            device,
            stats: PredictorStats::default(),
            packed: Vec::new(),
            valid: Vec::new(),
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

    /// Whether [`Kernel::Cpu`]'s large batches use rayon's pool (the
    /// default) or stay on the calling thread ([`CpuNet::set_parallel`]);
    /// candle's forward is unaffected.
    pub fn set_parallel(&mut self, on: bool) {
        if let Some((net, _)) = &mut self.cpu {
            net.set_parallel(on);
        }
    }

    pub fn kernel(&self) -> Kernel {
        if self.cpu.is_some() {
            Kernel::Cpu
        } else {
            Kernel::Candle
        }
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
        self.begin();
        for (i, rows) in inputs.iter().enumerate() {
            out.push(self.admit(i, rows));
        }
        self.finish(&mut out)?;
        Ok(out)
    }

    /// [`Predictor::predict`] for callers that keep their windows in one
    /// buffer: `windows` holds whole windows back to back, each exactly
    /// `window() * width()` values (row-major, oldest row first). Answers
    /// go to `out` (cleared first), one per window, in order; reusing `out`
    /// and the buffer saves the per-batch allocations of `predict`.
    ///
    /// # Errors
    /// [`ModelError::Config`] when `windows` is not a whole number of
    /// windows; [`ModelError::Tensor`] when the forward fails.
    pub fn predict_windows(
        &mut self,
        windows: &[f64],
        out: &mut Vec<Outcome>,
    ) -> Result<(), ModelError> {
        let len = self.window * self.width;
        out.clear();
        if len == 0 || !windows.len().is_multiple_of(len) {
            return Err(ModelError::config(
                "windows",
                format!("{} values are not whole windows of {len}", windows.len()),
            ));
        }
        self.begin();
        for (i, w) in windows.chunks_exact(len).enumerate() {
            let outcome = self.admit(i, w);
            out.push(outcome);
        }
        self.finish(out)
    }

    /// Empties the packing buffers for a new batch.
    fn begin(&mut self) {
        self.packed.clear();
        self.valid.clear();
    }

    /// Checks input `i` and packs its scaled window when valid. A valid
    /// input's answer is a placeholder until [`Predictor::finish`].
    fn admit(&mut self, i: usize, rows: &[f64]) -> Outcome {
        if let Err(reason) = self.check(rows) {
            match reason {
                NoPrediction::ShortHistory { .. } => self.stats.short_history += 1,
                NoPrediction::NonFinite { .. } => self.stats.non_finite += 1,
                NoPrediction::ShapeMismatch { .. } => self.stats.shape_mismatch += 1,
                NoPrediction::NonFiniteOutput => self.stats.non_finite_output += 1,
            }
            return Err(reason);
        }
        let f = self.width;
        let start = self.packed.len();
        self.packed.resize(start + self.window * f, 0.0);
        let win = &rows[rows.len() - self.window * f..];
        for (src, dst) in win
            .chunks_exact(f)
            .zip(self.packed[start..].chunks_exact_mut(f))
        {
            self.scaler.transform_into(src, dst);
        }
        self.valid.push(i);
        Err(NoPrediction::ShortHistory { have: 0, need: 0 })
    }

    /// One forward over the packed windows; fills their answers in `out`,
    /// refusing non-finite outputs.
    fn finish(&mut self, out: &mut [Outcome]) -> Result<(), ModelError> {
        if self.valid.is_empty() {
            return Ok(());
        }
        let (b, t, f) = (self.valid.len(), self.window, self.width);
        self.logits.resize(b * 3, 0.0);
        match &mut self.cpu {
            Some((net, scratch)) => net.forward(&self.packed, b, t, scratch, &mut self.logits)?,
            None => {
                let x = Tensor::from_slice(&self.packed, (b, t, f), &self.device)?;
                let y = self
                    .network
                    .forward(&x)?
                    .to_device(&Device::Cpu)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                self.logits.copy_from_slice(&y);
            }
        }
        for row in self.logits.chunks_exact_mut(3) {
            softmax3(row);
        }
        let probs = &self.logits;
        for (k, &i) in self.valid.iter().enumerate() {
            let p = [probs[3 * k], probs[3 * k + 1], probs[3 * k + 2]];
            // A non-finite logit makes every probability of its row NaN.
            out[i] = if p.iter().all(|v| v.is_finite()) {
                self.stats.predicted += 1;
                Ok(Prediction { probs: p })
            } else {
                self.stats.non_finite_output += 1;
                Err(NoPrediction::NonFiniteOutput)
            };
        }
        self.stats.batches += 1;
        Ok(())
    }
}

/// Softmax of one row of logits in place (max subtracted first, so large
/// logits do not overflow); a non-finite logit leaves a NaN in the row.
fn softmax3(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}
