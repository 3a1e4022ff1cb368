//! [`Pipeline`]: builds the shards, starts the workers, joins them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use candlewick_inference::{
    snapshot_name, used_models, InferenceError, InferenceStage, NamedModel, OutputRef,
};
use candlewick_market::Candle;
use candlewick_plugins::{LoadError, PluginHost, PluginRunner};
use candlewick_state::{StateError, StateStore, StreamKey};

use crate::checkpoint::{CheckpointPolicy, OutboxPolicy, Schedule, Writer};
use crate::worker::{decode_tail, Batch, Slot, Worker, TAIL};
use crate::{Clock, InlineShard, Metrics, Router, Sink, Strategy, StreamTable, WorkerReport};

/// How the pipeline is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Shard workers (threads). Default: 2.
    pub workers: usize,
    /// Events each shard queue holds before the router waits. Default 4096.
    pub queue_capacity: usize,
    /// Most events drained into one batch. Default 1024.
    pub max_batch: usize,
    /// The engine's own indicators per stream (checkpointed exactly);
    /// empty for none (backtests).
    pub indicator_spec: String,
    /// Candles kept per stream to re-warm strategies' indicators after a
    /// restart (see [`Pipeline::start`]). Default 256; 0 disables.
    pub tail_bars: usize,
    /// Verified models strategies may read, by name (a plugin manifest's
    /// `models`). Only the models some strategy reads are run. Default none.
    pub models: Vec<NamedModel>,
    /// When state is made durable. Default [`CheckpointPolicy::Never`]
    /// (backtests); the live engine checkpoints in the background.
    pub checkpoint: CheckpointPolicy,
    /// How long signals stay in the outbox (with checkpoints only).
    pub outbox: OutboxPolicy,
    /// Latency mode: how long a worker polls its queue after a batch
    /// before it sleeps on it. Zero (the default, and backtests') sleeps at
    /// once; a live engine spins a little, because waking a sleeping
    /// thread costs tens of microseconds per candle on a VM.
    pub spin: std::time::Duration,
    /// Latency mode's run to completion: a source's thread applies,
    /// decides and emits a candle itself when its shard is idle, instead
    /// of waking the shard's worker (see the crate docs). Taken only with
    /// background checkpoints ([`CheckpointPolicy::Every`]): a commit
    /// before every emit would put disk writes on the source's thread.
    /// Default off (backtests, where a worker per shard beside the source
    /// is faster); the live engine turns it on.
    pub inline: bool,
    /// Whether workers time each candle (the latency histograms of
    /// `/metrics`). Default on; backtests, which have no frame to time
    /// from, turn it off and save two clock reads per candle.
    pub measure_latency: bool,
    /// Latency mode: on [`Engine::start`](crate::Engine::start), ask the
    /// kernel for 4 KiB pages for the whole process (see [`crate::pages`]:
    /// a fresh transparent huge page stops the thread that first touches
    /// it for milliseconds on a VM). Default off; the live engine turns it
    /// on. The flag is the process's and stays set after the engine stops.
    pub small_pages: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 2,
            queue_capacity: 4096,
            max_batch: 1024,
            indicator_spec: "sma(20)".to_owned(),
            tail_bars: 256,
            models: Vec::new(),
            checkpoint: CheckpointPolicy::Never,
            outbox: OutboxPolicy::default(),
            spin: std::time::Duration::ZERO,
            inline: false,
            measure_latency: true,
            small_pages: false,
        }
    }
}

/// Why the pipeline could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    #[error(transparent)]
    State(Box<StateError>),
    #[error("strategy {strategy} on {stream}: {source}")]
    Strategy {
        strategy: String,
        stream: StreamKey,
        #[source]
        source: Box<LoadError>,
    },
    /// A strategy reads a model output that no configured model gives, or
    /// a model cannot run.
    #[error("strategy {strategy}: {source}")]
    Model {
        strategy: String,
        #[source]
        source: Box<InferenceError>,
    },
    #[error(transparent)]
    Inference(Box<InferenceError>),
    #[error("shard worker {shard} stopped: {source}")]
    Worker {
        shard: usize,
        #[source]
        source: Box<StateError>,
    },
    #[error("checkpoint writer stopped: {0}")]
    Checkpoint(#[source] Box<StateError>),
    #[error("shard worker {shard} panicked")]
    Panicked { shard: usize },
    #[error("cannot start worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

impl From<InferenceError> for PipelineError {
    fn from(e: InferenceError) -> Self {
        PipelineError::Inference(Box::new(e))
    }
}

// Boxed: a state error is large, and errors travel by value.
impl From<StateError> for PipelineError {
    fn from(e: StateError) -> Self {
        PipelineError::State(Box::new(e))
    }
}

/// The running workers. Route events with the [`Router`] that
/// [`Pipeline::start`] returned; drop every router clone, then
/// [`Pipeline::join`].
#[derive(Debug)]
pub struct Pipeline {
    workers: Vec<JoinHandle<Result<WorkerReport, StateError>>>,
    writer: Option<Writer>,
    metrics: Arc<Metrics>,
    stopped: tokio::sync::watch::Receiver<usize>,
}

impl Pipeline {
    /// Loads every stream of `table` from `store` (resuming from its last
    /// checkpoint), instantiates each strategy once per stream, and starts
    /// one worker thread per shard.
    ///
    /// # Restart of strategies
    ///
    /// A plugin's own state comes back from its snapshot. Its *indicators*
    /// are computed by the host and are not in the snapshot, so each stream
    /// also checkpoints its last `tail_bars` candles; at start they are
    /// pushed through the fresh runners (their signals discarded) before the
    /// snapshot is restored. Indicators with a finite window up to
    /// `tail_bars` (SMA, Bollinger, stochastics, ...) come back exactly;
    /// recursive ones (EMA, RSI's Wilder smoothing) come back to within
    /// their decay over `tail_bars` bars.
    ///
    /// # Models
    ///
    /// Each strategy's model outputs are resolved against
    /// [`PipelineConfig::models`] here, so a strategy that reads a model
    /// that is not configured is refused before anything runs. Each shard
    /// gets one [`InferenceStage`] over its streams. A stream's model
    /// windows are checkpointed with it (one per model, in the batch's
    /// `WriteBatch`) and restored exactly; without such a checkpoint (the
    /// model was just added, or its weights changed) they are rebuilt from
    /// the tail, like the strategies' indicators.
    ///
    /// # Errors
    /// A stream that cannot be loaded, a strategy that cannot be
    /// instantiated or needs a model that is not configured
    /// ([`PipelineError::Model`]), or a thread that cannot be spawned.
    pub fn start(
        config: &PipelineConfig,
        table: StreamTable,
        store: Arc<dyn StateStore>,
        host: Option<&PluginHost>,
        strategies: &[Strategy],
        sink: Arc<dyn Sink>,
        clock: Clock,
    ) -> Result<(Pipeline, Router), PipelineError> {
        let n = table.n_shards();
        let table = Arc::new(table);
        let (models, needs) = resolve_models(config, host, strategies)?;
        let mut per_shard = vec![0usize; n];
        for id in table.ids() {
            per_shard[table.shard(id)] += 1;
        }
        let mut stages: Vec<Option<InferenceStage>> = per_shard
            .iter()
            .map(|&streams| {
                (!models.is_empty())
                    .then(|| InferenceStage::new(&models, streams))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let metrics = Arc::new(Metrics::new(n));
        let mut senders = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        // Emptied batches flow back to the routers: about as many as the
        // queues hold, beyond that they are freed.
        let (spares_tx, spares_rx) = crossbeam_channel::bounded(n * config.queue_capacity.max(1));
        let mut locals = vec![vec![u32::MAX; table.len()]; n];
        let mut slots: Vec<Vec<Slot>> = (0..n).map(|_| Vec::new()).collect();
        for id in table.ids() {
            let key = table.key(id);
            let shard = table.shard(id);
            let local = slots[shard].len();
            let (slot, tail) = load_slot(config, key, &*store, host, strategies)?;
            metrics.durability.loaded(key, slot.state.last_open_time());
            if let Some(stage) = &mut stages[shard] {
                restore_windows(stage, local, key, &*store, &tail)?;
            }
            locals[shard][id.0 as usize] = local as u32;
            slots[shard].push(slot);
        }
        let (stopped_tx, stopped) = tokio::sync::watch::channel(0usize);
        let stopped_tx = Arc::new(stopped_tx);
        let (writer, writer_handle) = match config.checkpoint {
            CheckpointPolicy::Every { .. } => {
                let failed = stopped_tx.clone();
                let (w, h) = Writer::start(
                    store.clone(),
                    2 * n,
                    config.tail_bars,
                    metrics.clone(),
                    move || failed.send_modify(|n| *n += 1),
                )
                .map_err(PipelineError::Spawn)?;
                (Some(w), Some(h))
            }
            _ => (None, None),
        };
        let inline = config.inline && matches!(config.checkpoint, CheckpointPolicy::Every { .. });
        let mut workers = Vec::with_capacity(n);
        let mut doors: Vec<Arc<dyn InlineShard>> = Vec::new();
        let needs: Arc<[Vec<OutputRef>]> = needs.into();
        let model_snapshots: Vec<Arc<str>> = models
            .iter()
            .map(|m| snapshot_name(m.name()).into())
            .collect();
        for (shard, (((rx, local), slots), inference)) in receivers
            .into_iter()
            .zip(locals)
            .zip(slots)
            .zip(stages)
            .enumerate()
        {
            let worker = Worker {
                shard,
                rx,
                spares: spares_tx.clone(),
                local,
                slots,
                store: store.clone(),
                sink: sink.clone(),
                metrics: metrics.clone(),
                clock,
                max_batch: config.max_batch.max(1),
                tail_bars: config.tail_bars,
                inference,
                needs: needs.clone(),
                model_snapshots: model_snapshots.clone(),
                schedule: Schedule::new(config.checkpoint),
                writer: writer_handle.clone(),
                outbox: config.outbox,
                spin: config.spin,
                measure_latency: config.measure_latency,
                held: None,
                cursor: 0,
                unsaved: Vec::new(),
                newest_signal: None,
                report: WorkerReport::default(),
                scratch: Batch::default(),
                failed: None,
                stopped: false,
            }
            .sized();
            let run: Box<dyn FnOnce() -> Result<WorkerReport, StateError> + Send> = if inline {
                let (door, behind) = crate::inline::split(worker);
                doors.push(Arc::new(door));
                Box::new(move || behind.run())
            } else {
                Box::new(move || worker.run())
            };
            let stopped_tx = stopped_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("cw-shard-{shard}"))
                .spawn(move || {
                    let mut guard = Failed {
                        tx: stopped_tx,
                        ok: false,
                    };
                    let result = run();
                    match &result {
                        Ok(_) => guard.ok = true,
                        Err(e) => tracing::error!(shard, cause = %e, "shard worker failed"),
                    }
                    result
                })
                .map_err(PipelineError::Spawn)?;
            workers.push(handle);
        }
        drop(writer_handle); // the workers hold the only ones: see `join`
        let mut router = Router::new(senders, table, metrics.clone(), spares_rx);
        if inline {
            router = router.with_inline(doors);
        }
        Ok((
            Pipeline {
                workers,
                writer,
                metrics,
                stopped,
            },
            router,
        ))
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// A receiver of the number of workers that have *failed* (returned an
    /// error or panicked). A worker that drains and stops because every
    /// router was dropped does not count. When it changes the engine should
    /// stop: that shard's streams are no longer served.
    pub fn failed(&self) -> tokio::sync::watch::Receiver<usize> {
        self.stopped.clone()
    }

    /// Waits for every worker to drain, hand over its last checkpoint and
    /// stop, then for the checkpoint writer to commit everything it was
    /// handed (drop every router first).
    ///
    /// # Errors
    /// A checkpoint that could not be written, else the first worker that
    /// failed or panicked.
    pub fn join(self) -> Result<Vec<WorkerReport>, PipelineError> {
        let mut reports = Vec::with_capacity(self.workers.len());
        let mut first_error = None;
        for (shard, handle) in self.workers.into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(report)) => reports.push(report),
                Ok(Err(source)) => {
                    first_error.get_or_insert(PipelineError::Worker {
                        shard,
                        source: Box::new(source),
                    });
                }
                Err(_) => {
                    first_error.get_or_insert(PipelineError::Panicked { shard });
                }
            }
        }
        // Every worker has returned, and with it its writer handle.
        if let Some(writer) = self.writer {
            if let Err(source) = writer.join() {
                first_error = Some(PipelineError::Checkpoint(Box::new(source)));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

/// Counts a worker as failed when its thread ends without `ok` set: an
/// error, or a panic (the guard drops while unwinding).
struct Failed {
    tx: Arc<tokio::sync::watch::Sender<usize>>,
    ok: bool,
}

impl Drop for Failed {
    fn drop(&mut self) {
        if !self.ok {
            self.tx.send_modify(|n| *n += 1);
        }
    }
}

/// The configured models some strategy reads, and per strategy its model
/// outputs resolved against them.
///
/// # Errors
/// [`PipelineError::Model`] naming the strategy and the missing model.
fn resolve_models(
    config: &PipelineConfig,
    host: Option<&PluginHost>,
    strategies: &[Strategy],
) -> Result<(Vec<NamedModel>, Vec<Vec<OutputRef>>), PipelineError> {
    candlewick_inference::check_unique(&config.models)?;
    if host.is_none() {
        return Ok((Vec::new(), Vec::new()));
    }
    let wanted = strategies.iter().flat_map(|s| &s.module.manifest().models);
    let used = used_models(&config.models, wanted);
    for m in &config.models {
        if !used.contains(m) {
            tracing::warn!(model = m.name(), "no strategy reads this model: not run");
        }
    }
    let mut needs = Vec::with_capacity(strategies.len());
    for s in strategies {
        let names = &s.module.manifest().models;
        let err = |e| PipelineError::Model {
            strategy: s.name.to_string(),
            source: Box::new(e),
        };
        // Against every configured model first, so the error lists them all.
        OutputRef::resolve_all(names, &config.models).map_err(err)?;
        needs.push(OutputRef::resolve_all(names, &used).map_err(err)?);
    }
    Ok((used, needs))
}

/// Restores a stream's model windows from their checkpoints, or rebuilds
/// them from the stream's tail when there is none (or it is of other
/// weights).
fn restore_windows(
    stage: &mut InferenceStage,
    local: usize,
    key: &StreamKey,
    store: &dyn StateStore,
    tail: &VecDeque<Candle>,
) -> Result<(), PipelineError> {
    let names: Vec<String> = stage.models().map(|m| m.name().to_owned()).collect();
    for (model, name) in names.iter().enumerate() {
        let restored = match store.plugin_snapshot(&snapshot_name(name), key)? {
            Some(bytes) => match stage.restore(model, local, &bytes) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(stream = %key, cause = %e, "rebuilding the model window from the tail");
                    false
                }
            },
            None => false,
        };
        if !restored && !tail.is_empty() {
            stage.warm(model, local, tail.iter())?;
        }
    }
    Ok(())
}

/// Attempts at instantiating a strategy for a stream at start.
const INSTANTIATE_ATTEMPTS: u32 = 3;

/// A stream's slot and its stored warm-up tail, which has re-warmed the
/// strategies' indicators (and may re-warm model windows); the slot itself
/// starts with no tail of its own (see [`Slot::tail`]).
fn load_slot(
    config: &PipelineConfig,
    key: &StreamKey,
    store: &dyn StateStore,
    host: Option<&PluginHost>,
    strategies: &[Strategy],
) -> Result<(Slot, VecDeque<Candle>), PipelineError> {
    let state = store.load(key, &config.indicator_spec)?;
    let mut runners = Vec::with_capacity(strategies.len());
    let tail = match (host, strategies.is_empty()) {
        (Some(_), false) => store
            .plugin_snapshot(TAIL, key)?
            .and_then(|b| decode_tail(&b))
            .unwrap_or_default(),
        _ => VecDeque::new(),
    };
    if let Some(host) = host {
        for s in strategies {
            let err = |source| PipelineError::Strategy {
                strategy: s.name.to_string(),
                stream: key.clone(),
                source: Box::new(source),
            };
            // Instantiation runs guest code under the per-call deadline; on
            // a loaded machine one attempt can miss it. A bad module fails
            // every attempt and is reported.
            let mut attempt = 0;
            let mut runner = loop {
                attempt += 1;
                match PluginRunner::new(
                    host,
                    s.module.clone(),
                    &s.params,
                    s.limits.clone(),
                    s.policy.clone(),
                ) {
                    Ok(r) => break r,
                    Err(e @ LoadError::Faulted { .. }) if attempt < INSTANTIATE_ATTEMPTS => {
                        tracing::warn!(strategy = %s.name, stream = %key, cause = %e, attempt, "instantiation faulted; retrying");
                    }
                    Err(e) => return Err(err(e)),
                }
            };
            if !tail.is_empty() {
                for c in &tail {
                    runner.push(c, &[]);
                }
                // Warm-up only: these bars' signals were emitted before.
                let _ = runner.flush();
            }
            if let Some(snapshot) = store.plugin_snapshot(&s.name, key)? {
                runner.restore(snapshot);
            }
            runners.push((s.name.clone(), runner));
        }
    }
    Ok((Slot::new(state, runners), tail))
}
