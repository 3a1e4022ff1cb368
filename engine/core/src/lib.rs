//! # The engine's shared vocabulary
//!
//! The types that the pipeline's neighbours need from it, as plain data
//! and small traits, so that a crate which only feeds the pipeline
//! (`candlewick_ingest`) or only serves its output (`candlewick_feed`)
//! compiles no wasmtime, candle or RocksDB:
//!
//! - what flows: [`CandleEvent`] (with its [`Clock`] reading), [`Signal`]
//!   (with its deterministic [`signal_id`]), [`Prediction`];
//! - where it flows: the [`Router`] onto the shard queues, a [`Sink`] out
//!   of them, the [`SignalOutbox`] behind `since` resumes;
//! - what names it: [`StreamKey`], [`StreamId`], [`StreamTable`];
//! - how it fares: [`Metrics`] (with [`Durability`]), [`Health`],
//!   [`PluginStats`] and [`PluginHealth`], [`supervise`] for async tasks,
//!   [`LogLimiter`], and the [`prometheus`] text every part's counters
//!   are written in;
//! - where caches live: [`cache_dir`].
//!
//! `candlewick_pipeline` re-exports all of it; the one-way rule is
//! `market <- core <- {state, plugins, models, ingest, feed} <- pipeline`.
#![forbid(unsafe_code)]

pub mod cache_dir;
mod durability;
mod event;
mod health;
mod key;
mod log_limit;
mod metrics;
mod outbox;
mod plugin_health;
mod prediction;
pub mod prometheus;
mod router;
mod signal;
mod sink;
mod streams;
mod supervise;

pub use durability::Durability;
pub use event::{CandleEvent, Clock};
pub use health::{Health, TaskState};
pub use key::{StreamKey, StreamKeyError};
pub use log_limit::LogLimiter;
pub use metrics::{Counters, LatencySummary, Metrics, Stage};
pub use outbox::{OutboxRecord, SignalOutbox};
pub use plugin_health::{Fault, PluginHealth, PluginStats};
pub use prediction::Prediction;
pub use router::{Inline, InlineShard, RouteError, Router};
pub use signal::{json_num, json_str, signal_id, Action, Signal};
pub use sink::{NullSink, Sink, SinkTap, Tapped, VecSink};
pub use streams::{StreamId, StreamTable};
pub use supervise::{supervise, Backoff, SuperviseError};
