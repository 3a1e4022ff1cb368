//! [`Engine`]: the one way to assemble the engine. `candlewick run`,
//! `candlewick backtest` (through `Replay`), the latency bench and the
//! tests all build theirs here, from the same parts:
//!
//! ```text
//! streams ─┐
//! store ───┤  Engine::live(streams)        emit first, checkpoint every second,
//! models ──┼─▶   or Engine::backtest(..) ─▶ run idle shards in place, time each candle
//! strategies┤    .store() .strategies()      | in memory, never checkpointed,
//! sink ────┘    .sink() ... .start()        | no clock reads, sleep at once
//!                     │
//!                     ▼
//!          (Pipeline, Router): the source routes into the router
//! ```
//!
//! The two presets differ only in the settings a live run and a backtest
//! must differ in (ARCHITECTURE §2, §5); everything else is one code path.

use std::sync::Arc;
use std::time::Duration;

use candlewick_inference::NamedModel;
use candlewick_plugins::PluginHost;
use candlewick_state::{MemoryStore, StateStore};

use crate::{
    CheckpointPolicy, Clock, NullSink, OutboxPolicy, Pipeline, PipelineConfig, PipelineError,
    Router, Sink, Strategy, StreamKey, StreamTable,
};

/// An engine to start: its streams and the parts that serve them.
pub struct Engine<'h> {
    streams: Vec<StreamKey>,
    config: PipelineConfig,
    store: Arc<dyn StateStore>,
    host: Option<&'h PluginHost>,
    strategies: &'h [Strategy],
    sink: Arc<dyn Sink>,
    clock: Clock,
}

/// How long a live engine's workers poll their queue before sleeping, by
/// default (`engine.spin_us`): waking a sleeping thread costs tens of
/// microseconds on a VM.
pub const LIVE_SPIN: Duration = Duration::from_micros(200);

/// How often a live engine checkpoints, by default: a second, or 100,000
/// candles, whichever comes first.
pub const LIVE_CHECKPOINT: CheckpointPolicy = CheckpointPolicy::Every {
    interval: Duration::from_secs(1),
    max_candles: 100_000,
};

impl Engine<'static> {
    /// A live engine over `streams`: emits first and checkpoints in the
    /// background ([`LIVE_CHECKPOINT`]), runs a candle to completion on
    /// its source's thread when the shard is idle
    /// ([`PipelineConfig::inline`]; with it off, workers spin
    /// [`LIVE_SPIN`] before they sleep), times every candle for
    /// `/metrics`, and asks for small pages ([`PipelineConfig::small_pages`]).
    /// Its store is
    /// in memory until [`Engine::store`] gives it a durable one.
    pub fn live(streams: Vec<StreamKey>) -> Self {
        Engine::new(
            streams,
            PipelineConfig {
                checkpoint: LIVE_CHECKPOINT,
                spin: LIVE_SPIN,
                inline: true,
                measure_latency: true,
                small_pages: true,
                ..PipelineConfig::default()
            },
        )
    }

    /// A backtest over `streams`: state in memory and never checkpointed,
    /// no engine indicators (each strategy's runner computes its own; the
    /// stream keeps only its offset), no clock read per candle (history
    /// has no frame to time), workers that sleep at once (throughput
    /// rules), and no warm-up tail (a replay does not restart).
    pub fn backtest(streams: Vec<StreamKey>) -> Self {
        Engine::new(
            streams,
            PipelineConfig {
                checkpoint: CheckpointPolicy::Never,
                indicator_spec: String::new(),
                spin: Duration::ZERO,
                measure_latency: false,
                tail_bars: 0,
                ..PipelineConfig::default()
            },
        )
    }

    fn new(streams: Vec<StreamKey>, config: PipelineConfig) -> Self {
        Engine {
            streams,
            config,
            store: Arc::new(MemoryStore::new()),
            host: None,
            strategies: &[],
            sink: Arc::new(NullSink),
            clock: Clock::new(),
        }
    }
}

impl<'h> Engine<'h> {
    /// Changes any setting of the preset (workers, queues, batches, the
    /// engine's indicators, checkpoints, spin...).
    pub fn configure(mut self, f: impl FnOnce(&mut PipelineConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// The shard workers (threads).
    pub fn workers(self, n: usize) -> Self {
        self.configure(|c| c.workers = n.max(1))
    }

    /// Where the streams' state lives (and resumes from).
    pub fn store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.store = store;
        self
    }

    /// The strategies every stream runs, instantiated by `host`.
    pub fn strategies<'a>(self, host: &'a PluginHost, strategies: &'a [Strategy]) -> Engine<'a>
    where
        'h: 'a,
    {
        Engine {
            host: Some(host),
            strategies,
            streams: self.streams,
            config: self.config,
            store: self.store,
            sink: self.sink,
            clock: self.clock,
        }
    }

    /// The verified models the strategies may read.
    pub fn models(self, models: Vec<NamedModel>) -> Self {
        self.configure(|c| c.models = models)
    }

    /// How long signals stay in the outbox (with checkpoints only).
    pub fn outbox(self, policy: OutboxPolicy) -> Self {
        self.configure(|c| c.outbox = policy)
    }

    /// Where signals (and, if it wants them, candles and predictions) go.
    pub fn sink(mut self, sink: Arc<dyn Sink>) -> Self {
        self.sink = sink;
        self
    }

    /// The clock candles are timed by (the sources' clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The settings it will start with.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Loads every stream (resuming from the store), instantiates the
    /// strategies and starts the workers; route candles with the
    /// [`Router`], then drop it and [`Pipeline::join`].
    ///
    /// # Errors
    /// As [`Pipeline::start`].
    pub fn start(self) -> Result<(Pipeline, Router), PipelineError> {
        if self.config.small_pages {
            crate::pages::prefer_small_pages();
        }
        let table = StreamTable::new(self.streams, self.config.workers);
        Pipeline::start(
            &self.config,
            table,
            self.store,
            self.host,
            self.strategies,
            self.sink,
            self.clock,
        )
    }
}
