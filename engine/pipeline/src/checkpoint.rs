//! Checkpoints off the hot path: when a worker takes one, and the thread
//! that writes them.
//!
//! A worker emits a batch's signals as soon as its strategies return; it
//! never waits on disk. Every [`CheckpointPolicy::Every`] interval it
//! copies what changed since the last checkpoint (stream states, plugin
//! snapshots, warm-up tails, model windows, the signals emitted) into an
//! owned [`Checkpoint`] and hands it to the [`Writer`], which commits it in
//! one `WriteBatch` on its own thread. What a crash costs is therefore the
//! candles applied since the last durable checkpoint: they are applied
//! again after the restart, and their signals emitted again with the same
//! ids and the same content (at-least-once, recognisable repeats).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candlewick_state::{Checkpoint, StateError, StateStore};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::{Durability, Metrics};

/// When a worker's state is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPolicy {
    /// Never: a backtest's store is its run (the default of
    /// [`crate::PipelineConfig`], which backtests use).
    Never,
    /// Commit each batch *before* emitting its signals: a signal is never
    /// emitted twice, at the cost of a disk write between every candle and
    /// its signal (`checkpoint_interval_ms = 0` in the config).
    EveryBatch,
    /// Emit first; checkpoint in the background every `interval`, or after
    /// `max_candles` applied candles, whichever comes first.
    Every {
        interval: Duration,
        max_candles: u64,
    },
}

impl CheckpointPolicy {
    /// How long a worker may sleep waiting for candles before it must wake
    /// to checkpoint what it holds.
    pub(crate) fn idle_wake(&self) -> Option<Duration> {
        match self {
            CheckpointPolicy::Every { interval, .. } => Some(*interval),
            _ => None,
        }
    }
}

/// How long the outbox keeps signals, in candle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxPolicy {
    /// Signals whose candle opened more than this before the newest one
    /// checkpointed are deleted. Default 7 days.
    pub retention_ms: i64,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy {
            retention_ms: 7 * 24 * 3_600_000,
        }
    }
}

/// A worker's view of its checkpoint schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    policy: CheckpointPolicy,
    last: Instant,
    candles: u64,
}

impl Schedule {
    pub(crate) fn new(policy: CheckpointPolicy) -> Self {
        Schedule {
            policy,
            last: Instant::now(),
            candles: 0,
        }
    }

    pub(crate) fn policy(&self) -> CheckpointPolicy {
        self.policy
    }

    pub(crate) fn applied(&mut self, n: u64) {
        self.candles += n;
    }

    /// Whether a background checkpoint is due now.
    pub(crate) fn due(&self) -> bool {
        match self.policy {
            CheckpointPolicy::Every {
                interval,
                max_candles,
            } => {
                self.candles > 0 && (self.candles >= max_candles || self.last.elapsed() >= interval)
            }
            _ => false,
        }
    }

    pub(crate) fn taken(&mut self) {
        self.last = Instant::now();
        self.candles = 0;
    }
}

/// A checkpoint on its way to the writer.
pub(crate) type Owned = Checkpoint<'static>;

/// The checkpoint writer thread and the workers' way to it.
#[derive(Debug)]
pub(crate) struct Writer {
    handle: JoinHandle<Result<(), StateError>>,
}

/// What a worker holds of the writer.
#[derive(Debug, Clone)]
pub(crate) struct WriterHandle {
    tx: Sender<Owned>,
}

/// Why a checkpoint was not handed over.
pub(crate) enum Handoff {
    Sent,
    /// The writer has earlier checkpoints queued: try again later.
    Busy(Owned),
    /// The writer has stopped (it failed: the engine is stopping).
    Gone,
}

impl WriterHandle {
    /// Whether a checkpoint handed over now would have to wait.
    pub(crate) fn is_busy(&self) -> bool {
        self.tx.is_full()
    }

    /// Hands a checkpoint over without waiting.
    pub(crate) fn try_send(&self, c: Owned) -> Handoff {
        match self.tx.try_send(c) {
            Ok(()) => Handoff::Sent,
            Err(TrySendError::Full(c)) => Handoff::Busy(c),
            Err(TrySendError::Disconnected(_)) => Handoff::Gone,
        }
    }

    /// Hands a checkpoint over, waiting for room (at shutdown).
    pub(crate) fn send(&self, c: Owned) -> Handoff {
        match self.tx.send(c) {
            Ok(()) => Handoff::Sent,
            Err(_) => Handoff::Gone,
        }
    }
}

impl Writer {
    /// Starts the writer over `store`; `queue` checkpoints may wait for it
    /// (one or two per shard: more would only hold memory).
    pub(crate) fn start(
        store: Arc<dyn StateStore>,
        queue: usize,
        metrics: Arc<Metrics>,
        on_failure: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<(Writer, WriterHandle)> {
        let (tx, rx) = crossbeam_channel::bounded(queue.max(1));
        let handle = std::thread::Builder::new()
            .name("cw-checkpoint".into())
            .spawn(move || {
                let result = write_all(&*store, &rx, &metrics);
                if let Err(e) = &result {
                    tracing::error!(cause = %e, "checkpoint writer failed: the engine stops");
                    on_failure();
                }
                result
            })?;
        Ok((Writer { handle }, WriterHandle { tx }))
    }

    /// Waits for every queued checkpoint to be committed (drop every
    /// [`WriterHandle`] first).
    pub(crate) fn join(self) -> Result<(), StateError> {
        self.handle.join().unwrap_or(Ok(()))
    }
}

fn write_all(
    store: &dyn StateStore,
    rx: &Receiver<Owned>,
    metrics: &Metrics,
) -> Result<(), StateError> {
    while let Ok(checkpoint) = rx.recv() {
        let started = Instant::now();
        store.commit(&checkpoint)?;
        let d = &metrics.durability;
        record_durable(d, &checkpoint);
        d.last_commit_us
            .store(started.elapsed().as_micros() as u64, Relaxed);
        d.last_commit_ms
            .store(crate::worker::wall_us() / 1000, Relaxed);
        d.committed.fetch_add(1, Relaxed);
        metrics.add(&metrics.counters.checkpoints, 1);
    }
    Ok(())
}

/// Records the offsets of a committed checkpoint's streams as durable.
pub(crate) fn record_durable(durability: &Durability, checkpoint: &Checkpoint<'_>) {
    durability.record_committed(
        checkpoint
            .streams()
            .filter_map(|s| s.last_open_time().map(|t| (s.key(), t))),
    );
}
