//! [`Pipeline`]: builds the shards, starts the workers, joins them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use candlewick_plugins::{LoadError, PluginHost, PluginRunner};
use candlewick_state::{StateError, StateStore, StreamKey};

use crate::worker::{decode_tail, Slot, Worker, TAIL};
use crate::{Clock, Metrics, Router, Sink, Strategy, StreamTable, WorkerReport};

/// How the pipeline is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Shard workers (threads). Default: 2.
    pub workers: usize,
    /// Events each shard queue holds before the router waits. Default 4096.
    pub queue_capacity: usize,
    /// Most events drained into one batch. Default 1024.
    pub max_batch: usize,
    /// The engine's own indicators per stream (checkpointed exactly).
    pub indicator_spec: String,
    /// Candles kept per stream to re-warm strategies' indicators after a
    /// restart (see [`Pipeline::start`]). Default 256; 0 disables.
    pub tail_bars: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            workers: 2,
            queue_capacity: 4096,
            max_batch: 1024,
            indicator_spec: "sma(20)".to_owned(),
            tail_bars: 256,
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
    #[error("shard worker {shard} stopped: {source}")]
    Worker {
        shard: usize,
        #[source]
        source: Box<StateError>,
    },
    #[error("shard worker {shard} panicked")]
    Panicked { shard: usize },
    #[error("cannot start worker thread: {0}")]
    Spawn(#[source] std::io::Error),
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
    /// # Errors
    /// A stream that cannot be loaded, a strategy that cannot be
    /// instantiated, or a thread that cannot be spawned.
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
        let mut senders = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
            senders.push(tx);
            receivers.push(rx);
        }
        let metrics = Arc::new(Metrics::new(receivers.clone()));
        let mut locals = vec![vec![u32::MAX; table.len()]; n];
        let mut slots: Vec<Vec<Slot>> = (0..n).map(|_| Vec::new()).collect();
        for id in table.ids() {
            let key = table.key(id);
            let shard = table.shard(id);
            let slot = load_slot(config, key, &*store, host, strategies)?;
            locals[shard][id.0 as usize] = slots[shard].len() as u32;
            slots[shard].push(slot);
        }
        let (stopped_tx, stopped) = tokio::sync::watch::channel(0usize);
        let stopped_tx = Arc::new(stopped_tx);
        let mut workers = Vec::with_capacity(n);
        for (shard, ((rx, local), slots)) in
            receivers.into_iter().zip(locals).zip(slots).enumerate()
        {
            let worker = Worker {
                shard,
                rx,
                local,
                slots,
                store: store.clone(),
                sink: sink.clone(),
                metrics: metrics.clone(),
                clock,
                max_batch: config.max_batch.max(1),
                tail_bars: config.tail_bars,
            };
            let stopped_tx = stopped_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("cw-shard-{shard}"))
                .spawn(move || {
                    let mut guard = Failed {
                        tx: stopped_tx,
                        ok: false,
                    };
                    let result = worker.run();
                    match &result {
                        Ok(_) => guard.ok = true,
                        Err(e) => tracing::error!(shard, cause = %e, "shard worker failed"),
                    }
                    result
                })
                .map_err(PipelineError::Spawn)?;
            workers.push(handle);
        }
        let router = Router::new(senders, table, metrics.clone());
        Ok((
            Pipeline {
                workers,
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

    /// Waits for every worker to drain and stop (drop every router first).
    ///
    /// # Errors
    /// The first worker that failed or panicked.
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

/// Attempts at instantiating a strategy for a stream at start.
const INSTANTIATE_ATTEMPTS: u32 = 3;

fn load_slot(
    config: &PipelineConfig,
    key: &StreamKey,
    store: &dyn StateStore,
    host: Option<&PluginHost>,
    strategies: &[Strategy],
) -> Result<Slot, PipelineError> {
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
    Ok(Slot::new(state, runners, tail))
}
