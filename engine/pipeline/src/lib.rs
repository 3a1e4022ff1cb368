//! # The pipeline: sources -> shard workers -> sinks
//!
//! One path carries every candle, live or from history (DESIGN §2):
//!
//! ```text
//! source (Binance | replay) --route()--> [bounded queue] --> worker --> sink (feed | broker)
//!                                         one per shard        |
//!                                                              +--> checkpoint slices, every interval,
//!                                                                   to the writer thread
//! ```
//!
//! ## An event's life
//!
//! 1. **Ingest.** A source turns bytes into a [`CandleEvent`]: the stream's
//!    [`StreamId`] (resolved once, when the [`StreamTable`] was built), the
//!    closed candle, and the [`Clock`] reading taken as the frame arrived.
//! 2. **Route.** [`Router::route`] puts it on the bounded crossbeam queue of
//!    the worker that owns the stream's symbol. The event is `Copy` and the
//!    queue is preallocated: routing takes no lock and allocates nothing.
//!    When the queue is full the router *waits* (the source slows down) and
//!    counts the wait in [`Metrics::backpressure_waits`]: nothing is dropped.
//! 3. **Drain.** A worker blocks for one event, then takes whatever else is
//!    queued, up to [`PipelineConfig::max_batch`]. At low load a batch is
//!    one candle; under a burst batches grow and plugin calls amortise.
//!    In latency mode ([`PipelineConfig::inline`]) the source's own thread
//!    runs an idle shard's batch instead (queued events first), so no
//!    thread is woken between a frame and its signal; a busy shard's
//!    events queue as above (see `inline.rs`).
//! 4. **Apply.** Each candle goes through its stream's
//!    [`StreamState::apply`](candlewick_state::StreamState::apply), which
//!    refuses a candle at or before the stream's offset. That refusal is
//!    what makes delivery exactly-once: a source may re-send after a
//!    reconnect or a restart; the state never counts a candle twice.
//! 5. **Models.** When a strategy reads model outputs
//!    ([`PipelineConfig::models`]), each applied candle also moves its
//!    stream's feature windows, and the worker's
//!    [`InferenceStage`](candlewick_inference::InferenceStage) runs one
//!    batched forward per model over every bar of the batch with a full
//!    window. A bar without a prediction reads NaN ("not available").
//! 6. **Strategies.** Applied candles, each with its model outputs, are
//!    pushed to the stream's plugin runners, which are flushed once per
//!    batch.
//! 7. **Emit, then checkpoint.** The batch's signals go to the [`Sink`]
//!    at once; every [`PipelineConfig::checkpoint`] interval the worker
//!    hands a copy of what changed (stream states, plugin snapshots,
//!    model windows, warm-up tails, the signals since the last one) to
//!    the checkpoint writer thread, in slices of at most 256 streams, each
//!    stream whole in its slice and each slice one `WriteBatch`. A crash
//!    re-applies the candles after the last
//!    checkpoint and re-emits their signals with the same ids
//!    (ARCHITECTURE §3: at-least-once with deterministic ids).
//!
//! Build a pipeline with [`Engine`] (`Engine::live` or
//! `Engine::backtest`); the shared types live in `candlewick_core` and are
//! re-exported here.
//!
//! ## Shutdown
//!
//! Dropping every [`Router`] clone disconnects the queues. Each worker then
//! drains what is left, commits it, and returns its [`WorkerReport`] from
//! [`Pipeline::join`]. A worker that fails (a store that cannot be written)
//! stops and reports the error; routing to it then fails with
//! [`RouteError::Stopped`], so the source stops too, loudly.
//!
//! ## Supervision
//!
//! Async tasks around the pipeline (sources, the feed server) run under
//! [`supervise`], which logs each failure once with its cause, counts it,
//! marks it in [`Health`], and restarts the task with backoff, or gives up
//! after a bound so that the engine stops with a clear error.
// Denied, not forbidden: `pages` makes the one `prctl` call (no pointers).
#![deny(unsafe_code)]

mod assemble;
mod checkpoint;
mod engine;
mod inline;
pub mod pages;
mod pipeline;
mod strategy;
mod worker;

pub use assemble::{
    load_models, load_strategies, resolve_wasm, AssemblyError, ModelSpec, StrategySpec,
    COMPACT_MEMORIES_ABOVE,
};
/// The shared types live in `candlewick_core` (so that the feed and the
/// sources need not compile the engine); here they are where a user of
/// the pipeline looks for them.
pub use candlewick_core::{
    json_num, json_str, signal_id, supervise, Backoff, CandleEvent, Clock, Counters, Durability,
    Health, Inline, InlineShard, LatencySummary, LogLimiter, Metrics, NullSink, Prediction,
    RouteError, Router, Signal, Sink, SinkTap, Stage, StreamId, StreamKey, StreamTable,
    SuperviseError, Tapped, TaskState, VecSink,
};
pub use checkpoint::{CheckpointPolicy, OutboxPolicy};
pub use engine::{Engine, LIVE_CHECKPOINT, LIVE_SPIN};
pub use pipeline::{Pipeline, PipelineConfig, PipelineError};
pub use strategy::Strategy;
pub use worker::WorkerReport;
/// A stream's warm-up tail (its last `tail_bars` candles, kept when it has
/// strategies) is the plugin snapshot named [`TAIL_SNAPSHOT`], written with
/// [`encode_tail`]; readers
/// outside the workers (the analyst) decode it with [`decode_tail`].
pub use worker::{decode_tail, encode_tail, TAIL as TAIL_SNAPSHOT};
