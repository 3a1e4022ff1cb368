//! [`Metrics`]: counters and latency histograms shared by every part.
//!
//! Counters are relaxed atomics (one `fetch_add` each). Latency goes into
//! one hdrhistogram per shard, locked once per *batch* by its own worker
//! and briefly by a `/metrics` scrape, never per event.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use std::sync::atomic::AtomicI64;

use hdrhistogram::Histogram;

use crate::Durability;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Every counter of the engine. All only ever grow, except the
        /// gauges noted.
        #[derive(Debug, Default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl Counters {
            /// `(name, value)` of every counter, for rendering.
            pub fn all(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// Events routed to a shard queue.
    events_ingested,
    /// Times a source had to wait for a full queue.
    backpressure_waits,
    /// Latency mode: batches a source's thread ran in place (its shard
    /// was idle).
    inline_ran,
    /// Latency mode: batches queued because their shard was busy (its
    /// worker's thread, or another source, held it).
    inline_busy,
    /// Candles applied to a stream's state (each exactly once).
    candles_applied,
    /// Candles refused as already applied (re-sent after reconnect/restart).
    candles_duplicate,
    /// Drained batches processed.
    batches,
    /// Checkpoints committed.
    checkpoints,
    /// Signals emitted to the sink.
    signals_emitted,
    /// Plugin quarantines (all causes), summed over the workers.
    plugin_quarantines,
    /// Exchange (re)connections after the first.
    reconnects,
    /// REST backfill requests made.
    backfill_requests,
    /// Candles obtained by backfill (gaps filled).
    backfill_candles,
    /// Frames that did not parse.
    frames_malformed,
    /// Closed klines for the same candle as the last one routed (re-sent).
    frames_duplicate,
    /// Closed klines older than the last one routed for their stream.
    frames_out_of_order,
    /// Frames for a stream the engine does not serve.
    frames_unknown_stream,
    /// Forming (not closed) kline updates seen.
    frames_forming,
    /// Supervised task failures.
    task_failures,
    /// Gauge: feed clients connected now.
    feed_clients,
    /// Feed connections refused (auth or limit).
    feed_refused,
    /// Frames sent to feed clients.
    feed_frames_out,
    /// Socket writes (flushes) of feed clients: a burst's frames share
    /// writes, so frames out per write says how much was coalesced.
    feed_writes,
    /// Messages a slow feed client missed (reported to it as `lagged`).
    feed_lag_dropped,
    /// Bars that got a model prediction (summed over models).
    model_predictions,
    /// Bars a model gave no prediction for (NaN to strategies): history
    /// shorter than the window, a NaN feature, or a non-finite output.
    model_no_prediction,
    /// Batched forward passes that failed (their bars read NaN).
    model_failed_forwards,
}

/// ingest -> emit latency quantiles, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The engine's metrics: [`Counters`], queue depths, latency.
#[derive(Debug)]
pub struct Metrics {
    pub counters: Counters,
    /// Events routed and not yet drained, per shard.
    queued: Vec<AtomicI64>,
    latency: Vec<Mutex<Histogram<u64>>>,
    /// Per [`Stage`], per shard.
    stages: Vec<Vec<Mutex<Histogram<u64>>>>,
    quarantines: Vec<AtomicU64>,
    /// The checkpoint writer's progress.
    pub durability: Durability,
}

impl Metrics {
    /// Metrics for `n_shards` shards; `queues` are receivers of the shard
    /// queues, used only for `len()`.
    pub fn new(shards: usize) -> Self {
        let n = shards;
        let per_shard = || {
            (0..n)
                .map(|_| Mutex::new(new_histogram()))
                .collect::<Vec<_>>()
        };
        Metrics {
            counters: Counters::default(),
            queued: (0..n).map(|_| AtomicI64::new(0)).collect(),
            latency: per_shard(),
            stages: Stage::ALL.iter().map(|_| per_shard()).collect(),
            quarantines: (0..n).map(|_| AtomicU64::new(0)).collect(),
            durability: Durability::default(),
        }
    }

    /// Metrics with no shards, for sources and tests run without a pipeline.
    pub fn detached() -> Self {
        Metrics::new(0)
    }

    #[inline]
    pub fn add(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    #[inline]
    pub fn count_ingested(&self, n: usize) {
        self.counters.events_ingested.fetch_add(n as u64, Relaxed);
    }

    #[inline]
    pub fn count_backpressure(&self) {
        self.counters.backpressure_waits.fetch_add(1, Relaxed);
    }

    /// Events waiting in each shard's queue now.
    pub fn queue_depths(&self) -> Vec<usize> {
        self.queued
            .iter()
            .map(|q| q.load(Relaxed).max(0) as usize)
            .collect()
    }

    #[inline]
    pub fn enqueued(&self, shard: usize, n: usize) {
        if let Some(q) = self.queued.get(shard) {
            q.fetch_add(n as i64, Relaxed);
        }
    }

    #[inline]
    pub fn dequeued(&self, shard: usize, n: usize) {
        if let Some(q) = self.queued.get(shard) {
            q.fetch_sub(n as i64, Relaxed);
        }
    }

    /// Records `count` candles that spent `ns` in `stage`.
    pub fn record_stage(&self, shard: usize, stage: Stage, ns: u64, count: usize) {
        if count == 0 {
            return;
        }
        let Some(h) = self.stages[stage as usize].get(shard) else {
            return;
        };
        let mut h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = h.record_n(ns.max(1), count as u64);
    }

    /// One frame written to a feed client `ns` after its candle's frame
    /// was received ([`Stage::Write`]; kept with the first shard's, as
    /// the feed does not know the shard).
    pub fn record_written(&self, ns: u64) {
        self.record_stage(0, Stage::Write, ns, 1);
    }

    /// One stage's latency over every shard (see [`Stage`]).
    pub fn stage(&self, stage: Stage) -> LatencySummary {
        summary(&self.stages[stage as usize])
    }

    pub fn set_quarantines(&self, shard: usize, total: u64) {
        if let Some(q) = self.quarantines.get(shard) {
            q.store(total, Relaxed);
        }
    }

    /// Plugin quarantines over all shards.
    pub fn quarantines(&self) -> u64 {
        self.quarantines.iter().map(|q| q.load(Relaxed)).sum()
    }

    /// Records a batch's latencies (ns) for `shard`, under one lock.
    pub fn record_latencies(&self, shard: usize, samples: &[u64]) {
        let Some(h) = self.latency.get(shard) else {
            return;
        };
        let mut h = match h.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        for &ns in samples {
            h.saturating_record(ns.max(1));
        }
    }

    /// ingest -> emit quantiles over every shard since start.
    pub fn latency(&self) -> LatencySummary {
        summary(&self.latency)
    }

    /// Clears the latency histograms (a bench separates its phases).
    pub fn reset_latency(&self) {
        for h in self.latency.iter().chain(self.stages.iter().flatten()) {
            match h.lock() {
                Ok(mut h) => h.reset(),
                Err(p) => p.into_inner().reset(),
            }
        }
    }
}

/// Where a candle's time goes between its frame and its signal, as the
/// workers measure it, and the feed's socket write after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// From the source's receipt of the frame to the worker draining it:
    /// routing, the queue, and waking the worker.
    Queue = 0,
    /// From the drain to the batch's indicators and model forwards done.
    Apply = 1,
    /// The strategies: every bar pushed to each runner, and their calls.
    Strategies = 2,
    /// Handing the batch's signals, candles and predictions to the sink.
    Emit = 3,
    /// From the source's receipt of the frame to a feed client's socket
    /// write of a signal's frame returning, per signal and client
    /// ([`Metrics::record_written`]): the whole path inside the engine,
    /// the feed's wake-up and write included.
    Write = 4,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Queue,
        Stage::Apply,
        Stage::Strategies,
        Stage::Emit,
        Stage::Write,
    ];

    /// The label `/metrics` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Apply => "apply",
            Stage::Strategies => "strategies",
            Stage::Emit => "emit",
            Stage::Write => "write",
        }
    }
}

/// Quantiles of several histograms merged.
fn summary(hs: &[Mutex<Histogram<u64>>]) -> LatencySummary {
    let mut all = new_histogram();
    for h in hs {
        let h = h.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = all.add(&*h);
    }
    LatencySummary {
        count: all.len(),
        p50: all.value_at_quantile(0.5),
        p99: all.value_at_quantile(0.99),
        p999: all.value_at_quantile(0.999),
        max: all.max(),
    }
}

/// 1 ns .. 60 s at 3 significant digits (about 200 KiB).
fn new_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .expect("constant bounds: low >= 1, high >= 2 * low, sigfig <= 5")
}
