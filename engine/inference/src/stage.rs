//! [`InferenceStage`]: per-stream feature windows, one forward per model
//! per drained batch.

use candlewick_market::Candle;
use candlewick_models::{
    Device, FeatureWindow, Kernel, NoPrediction, Outcome, Prediction, Predictor,
};
use serde::{Deserialize, Serialize};

use crate::model::{NamedModel, OutputRef};
use crate::InferenceError;

/// A bar pushed in the current batch: where its model outputs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ticket(u32);

/// Counters since the stage was built, summed over its models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageStats {
    /// Forward passes run (at most one per model per batch).
    pub forwards: u64,
    /// Bars that got a prediction.
    pub predicted: u64,
    /// Bars before the stream had `window` feature rows.
    pub short_history: u64,
    /// Bars whose window held a NaN (a feature still warming up).
    pub non_finite_input: u64,
    /// Bars whose model output was not finite.
    pub non_finite_output: u64,
    /// Forward passes that failed (every bar of the batch got NaN).
    pub failed_forwards: u64,
}

/// One model over every stream of the stage.
#[derive(Debug)]
struct Lane {
    model: NamedModel,
    predictor: Predictor,
    /// Per stream.
    windows: Vec<FeatureWindow>,
    /// This batch's full windows, back to back.
    pending: Vec<f64>,
    /// The ticket of each pending window.
    pending_tickets: Vec<u32>,
    /// Per ticket of this batch; `None`: not available.
    outputs: Vec<Option<Prediction>>,
    answers: Vec<Outcome>,
}

/// What a checkpoint holds for one model on one stream.
#[derive(Serialize, Deserialize)]
struct Saved {
    /// The weights the window was built for: a checkpoint of another model
    /// of the same name is not restored.
    sha256: String,
    window: FeatureWindow,
}

/// The batched model runner of one shard worker (DESIGN §2: after the
/// indicators, before the plugin calls).
///
/// Per stream and model it keeps the rolling window of feature rows the
/// artifact asks for, computed by the engine's own indicators. A batch is:
/// [`InferenceStage::push`] each applied candle (the ticket says where its
/// outputs will be), [`InferenceStage::run_batch`] once, then read each
/// bar's outputs with [`InferenceStage::fill`]. The first push after a run
/// starts the next batch.
///
/// Every bar whose window is full and finite is one row of the batch
/// dimension, so each model runs **one** forward per batch over every
/// stream (and, under a burst, every bar) that has a prediction to make.
/// Each bar's prediction reads the window ending at that bar: the result
/// does not depend on how candles were batched. Bars without a prediction
/// (window not full, a NaN feature, a non-finite output) read NaN, the
/// ABI's "not available", as indicators in warm-up do.
///
/// The forward is the models crate's CPU path ([`Kernel::Cpu`]: packed
/// weights, buffers reused from batch to batch, SIMD chosen at run time,
/// batches of 16 windows or more split over rayon's pool), tested against
/// candle's forward; [`InferenceStage::with_kernel`] picks candle instead.
/// A bar's answer does not depend on which other bars share its batch.
#[derive(Debug)]
pub struct InferenceStage {
    lanes: Vec<Lane>,
    streams: usize,
    /// Tickets handed out in this batch.
    pushed: u32,
    /// `run_batch` ran since the last push: the next push starts afresh.
    ran: bool,
    stats: StageStats,
}

impl InferenceStage {
    /// A stage running `models` over `streams` streams (numbered
    /// `0..streams`), with empty windows.
    ///
    /// # Errors
    /// [`InferenceError::Duplicate`] for two models of one name, or
    /// [`InferenceError::Model`] when a predictor cannot be built.
    pub fn new(models: &[NamedModel], streams: usize) -> Result<Self, InferenceError> {
        Self::with_kernel(models, streams, Kernel::Cpu)
    }

    /// [`InferenceStage::new`] with the forward of `kernel` (candle's is
    /// the reference the CPU path is tested against; benches compare them).
    ///
    /// # Errors
    /// As [`InferenceStage::new`].
    pub fn with_kernel(
        models: &[NamedModel],
        streams: usize,
        kernel: Kernel,
    ) -> Result<Self, InferenceError> {
        crate::model::check_unique(models)?;
        let mut lanes = Vec::with_capacity(models.len());
        for m in models {
            let err = |source| InferenceError::Model {
                model: m.name().to_owned(),
                source: Box::new(source),
            };
            let a = m.artifact();
            let mut predictor = Predictor::with_kernel(a, Device::Cpu, kernel).map_err(err)?;
            // A shard worker runs its forwards on its own thread: the
            // engine's parallelism is its shards. Spread over rayon's pool,
            // a forward waited for the pool's threads to get a core beside
            // the engine's own: 30 windows took 12 ms instead of about 0.1
            // in the steady latency bench with the shipped LSTM.
            predictor.set_parallel(false);
            let window = FeatureWindow::new(a.features(), a.window())
                .map_err(|e| err(candlewick_models::ModelError::Features(e)))?;
            lanes.push(Lane {
                model: m.clone(),
                predictor,
                windows: vec![window; streams],
                pending: Vec::new(),
                pending_tickets: Vec::new(),
                outputs: Vec::new(),
                answers: Vec::new(),
            });
        }
        Ok(InferenceStage {
            lanes,
            streams,
            pushed: 0,
            ran: false,
            stats: StageStats::default(),
        })
    }

    /// The models, in the order [`OutputRef::model`] indexes.
    pub fn models(&self) -> impl ExactSizeIterator<Item = &NamedModel> {
        self.lanes.iter().map(|l| &l.model)
    }

    pub fn streams(&self) -> usize {
        self.streams
    }

    pub fn stats(&self) -> StageStats {
        self.stats
    }

    /// Resolves a plugin manifest's model outputs against this stage's
    /// models (see [`OutputRef::resolve`]).
    ///
    /// # Errors
    /// As [`OutputRef::resolve`].
    pub fn resolve(&self, wanted: &[String]) -> Result<Vec<OutputRef>, InferenceError> {
        let models: Vec<NamedModel> = self.models().cloned().collect();
        OutputRef::resolve_all(wanted, &models)
    }

    /// Applies one closed candle of `stream` to every model's window and
    /// queues the window ending at it for this batch's forward.
    ///
    /// # Errors
    /// [`InferenceError::UnknownStream`]; nothing is changed.
    pub fn push(&mut self, stream: usize, candle: &Candle) -> Result<Ticket, InferenceError> {
        if stream >= self.streams {
            return Err(InferenceError::UnknownStream {
                stream,
                streams: self.streams,
            });
        }
        if self.ran {
            self.start_batch();
        }
        let ticket = self.pushed;
        self.pushed += 1;
        for lane in &mut self.lanes {
            let window = &mut lane.windows[stream];
            window.push(candle);
            lane.outputs.push(None);
            let rows = window.rows();
            let need = lane.predictor.window() * lane.predictor.width();
            if rows.len() == need {
                lane.pending.extend_from_slice(rows);
                lane.pending_tickets.push(ticket);
            } else {
                self.stats.short_history += 1;
            }
        }
        Ok(Ticket(ticket))
    }

    /// Runs one forward per model over every full window pushed since the
    /// last run. Outputs stay readable until the next push.
    ///
    /// # Errors
    /// The first model whose forward failed ([`InferenceError::Model`]);
    /// its bars read NaN, the other models' outputs are still filled.
    pub fn run_batch(&mut self) -> Result<(), InferenceError> {
        self.ran = true;
        let mut first_error = None;
        for lane in &mut self.lanes {
            if lane.pending_tickets.is_empty() {
                continue;
            }
            let ran_before = lane.predictor.stats().batches;
            let result = lane
                .predictor
                .predict_windows(&lane.pending, &mut lane.answers);
            lane.pending.clear();
            match result {
                Ok(()) => {
                    self.stats.forwards += lane.predictor.stats().batches - ran_before;
                    for (answer, &t) in lane.answers.iter().zip(&lane.pending_tickets) {
                        match answer {
                            Ok(p) => {
                                self.stats.predicted += 1;
                                lane.outputs[t as usize] = Some(*p);
                            }
                            Err(NoPrediction::NonFiniteOutput) => self.stats.non_finite_output += 1,
                            Err(_) => self.stats.non_finite_input += 1,
                        }
                    }
                }
                Err(source) => {
                    self.stats.failed_forwards += 1;
                    first_error.get_or_insert(InferenceError::Model {
                        model: lane.model.name().to_owned(),
                        source: Box::new(source),
                    });
                }
            }
            lane.pending_tickets.clear();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes the outputs `needs` asks for of the bar of `ticket` into
    /// `out` (in order; NaN where not available). `out` shorter than
    /// `needs` gets the first ones.
    pub fn fill(&self, ticket: Ticket, needs: &[OutputRef], out: &mut [f64]) {
        for (slot, need) in out.iter_mut().zip(needs) {
            *slot = self.value(ticket, *need);
        }
    }

    /// One output of the bar of `ticket`; NaN when not available (no
    /// prediction, or the ticket or model is not of this batch).
    pub fn value(&self, ticket: Ticket, need: OutputRef) -> f64 {
        self.lanes
            .get(need.model)
            .and_then(|l| l.outputs.get(ticket.0 as usize))
            .and_then(|p| p.as_ref())
            .map_or(f64::NAN, |p| need.field.of(p))
    }

    /// The prediction of model `model` for the bar of `ticket`, if any.
    pub fn prediction(&self, ticket: Ticket, model: usize) -> Option<Prediction> {
        self.lanes
            .get(model)?
            .outputs
            .get(ticket.0 as usize)
            .copied()
            .flatten()
    }

    /// Window state of model `model` on `stream`, for a checkpoint (see
    /// [`InferenceStage::restore`]).
    ///
    /// # Errors
    /// [`InferenceError::UnknownStream`], or [`InferenceError::Snapshot`]
    /// when it cannot be encoded.
    pub fn save(&self, model: usize, stream: usize) -> Result<Vec<u8>, InferenceError> {
        let (lane, window) = self.window(model, stream)?;
        let saved = Saved {
            sha256: lane.model.sha256().to_owned(),
            window: window.clone(),
        };
        postcard::to_allocvec(&saved).map_err(|e| InferenceError::Snapshot {
            model: lane.model.name().to_owned(),
            reason: e.to_string(),
        })
    }

    /// Restores what [`InferenceStage::save`] wrote: the window continues
    /// bit for bit as if never interrupted.
    ///
    /// # Errors
    /// [`InferenceError::Snapshot`] when the bytes do not decode or were
    /// saved for other weights or another window shape; the window is
    /// left as it was.
    pub fn restore(
        &mut self,
        model: usize,
        stream: usize,
        bytes: &[u8],
    ) -> Result<(), InferenceError> {
        let (lane, window) = self.window(model, stream)?;
        let refuse = |reason: String| InferenceError::Snapshot {
            model: lane.model.name().to_owned(),
            reason,
        };
        let saved: Saved = postcard::from_bytes(bytes).map_err(|e| refuse(e.to_string()))?;
        if saved.sha256 != lane.model.sha256() {
            return Err(refuse(format!(
                "saved for weights {}, the model is {}",
                short(&saved.sha256),
                short(lane.model.sha256())
            )));
        }
        if !saved.window.same_shape(window) {
            return Err(refuse("the window's features or length differ".into()));
        }
        self.lanes[model].windows[stream] = saved.window;
        Ok(())
    }

    /// Rebuilds the window of model `model` on `stream` from recent
    /// candles (oldest first), without predicting: the fallback when no
    /// checkpoint of the window exists. Exact when `candles` reach back
    /// past every feature's warm-up and the window; recursive indicators
    /// (EMA, Wilder's RSI) otherwise come back to within their decay over
    /// the candles given.
    ///
    /// # Errors
    /// [`InferenceError::UnknownStream`] or an unknown model.
    pub fn warm<'a>(
        &mut self,
        model: usize,
        stream: usize,
        candles: impl IntoIterator<Item = &'a Candle>,
    ) -> Result<(), InferenceError> {
        self.window(model, stream)?;
        let window = &mut self.lanes[model].windows[stream];
        for c in candles {
            window.push(c);
        }
        Ok(())
    }

    fn window(
        &self,
        model: usize,
        stream: usize,
    ) -> Result<(&Lane, &FeatureWindow), InferenceError> {
        let unknown = InferenceError::UnknownStream {
            stream,
            streams: self.streams,
        };
        let lane = self
            .lanes
            .get(model)
            .ok_or_else(|| InferenceError::Snapshot {
                model: format!("#{model}"),
                reason: "no such model in the stage".into(),
            })?;
        let window = lane.windows.get(stream).ok_or(unknown)?;
        Ok((lane, window))
    }

    fn start_batch(&mut self) {
        self.pushed = 0;
        self.ran = false;
        for lane in &mut self.lanes {
            lane.outputs.clear();
            lane.pending.clear();
            lane.pending_tickets.clear();
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
