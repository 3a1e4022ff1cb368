//! # Batched model inference for the shard workers
//!
//! DESIGN §2: a worker drains a batch, updates indicators, runs **batched
//! inference**, then the batched plugin calls. This crate is that middle
//! step, used the same way by the pipeline's workers and by a backtest's
//! strategy adapter, so live and history see the same predictions.
//!
//! - [`NamedModel`]: a verified artifact (`candlewick_models::Artifact`:
//!   hash, version, tensors, scaler, and that this engine computes the
//!   features the model was trained on) under the name strategies ask for.
//! - [`OutputRef`]: a plugin manifest's model output, `NAME` (p(up)) or
//!   `NAME.p_up|p_flat|p_down|score`, resolved at start; a strategy that
//!   needs a model that is not configured is refused, naming both.
//! - [`InferenceStage`]: per stream and model the rolling feature window;
//!   per batch one forward per model whose batch dimension is every bar
//!   (stream) with a full window. Inputs are validated (shape, NaN, enough
//!   history) and outputs too (finite); a bar without a prediction reads
//!   NaN, the ABI's "not available", exactly as an indicator in warm-up.
//! - [`ModelFeed`]: the stage over one stream, for a driver that is not a
//!   shard worker (e.g. the direct backtest loop); `candlewick backtest`
//!   replays through the workers, which get their models from
//!   `candlewick_pipeline::PipelineConfig::models`.
//!
//! ## Restart
//!
//! A window's state (its feature engine, i.e. the indicator states, and
//! its last rows) is plain data: [`InferenceStage::save`] /
//! [`InferenceStage::restore`] round-trip it bit for bit, tagged with the
//! weights' hash. The pipeline checkpoints it with the stream in the same
//! `WriteBatch` as the offset, so predictions after a restart equal an
//! uninterrupted run's. Rebuilding from the worker's tail of candles
//! ([`InferenceStage::warm`]) is only the fallback (no checkpoint yet, or
//! one of other weights): recursive indicators such as RSI's Wilder
//! smoothing would otherwise come back only approximately.
#![forbid(unsafe_code)]

mod error;
mod feed;
mod model;
mod stage;

pub use candlewick_models::{Kernel, Prediction};
pub use error::InferenceError;
pub use feed::{models_from_args, ModelFeed};
pub use model::{check_unique, used_models, Field, NamedModel, OutputRef, OUTPUTS};
pub use stage::{InferenceStage, StageStats, Ticket};

/// Name under which a stream's window of model `name` is checkpointed
/// (beside plugin snapshots; `@` cannot start a plugin's name).
pub fn snapshot_name(model: &str) -> String {
    format!("@model:{model}")
}
