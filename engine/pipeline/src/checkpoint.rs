//! Checkpoints off the hot path: when a worker takes one, and the thread
//! that writes them.
//!
//! A worker emits a batch's signals as soon as its strategies return; it
//! never waits on disk. Every [`CheckpointPolicy::Every`] interval it
//! copies what changed since the last checkpoint (stream states, plugin
//! snapshots, warm-up tails, model windows, the signals emitted) into
//! owned [`Checkpoint`]s and hands them to the [`Writer`], which commits
//! each in one `WriteBatch` on its own thread. The copy is made on the
//! shard's own thread, after the candles already queued for it, in slices
//! of at most 256 streams (each stream whole in its slice), into buffers
//! the writer hands back: what a checkpoint costs the hot path is one
//! slice's copy. What a crash costs is therefore the
//! candles applied since the last durable checkpoint: they are applied
//! again after the restart, and their signals emitted again with the same
//! ids and the same content (at-least-once, recognisable repeats).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candlewick_state::{Checkpoint, StateError, StateStore};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::worker::{TAIL, TAIL_RECORD};
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
    /// See [`Schedule::announce`].
    announced: bool,
}

impl Schedule {
    pub(crate) fn new(policy: CheckpointPolicy) -> Self {
        Schedule {
            policy,
            last: Instant::now(),
            candles: 0,
            announced: false,
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
        self.candles > 0 && self.past(1)
    }

    /// Whether a due checkpoint has waited long enough: twice its
    /// interval or twice its candles. Until then a worker with queued
    /// candles runs them first (see [`crate::worker::Worker::checkpoint_if_due`]).
    pub(crate) fn overdue(&self) -> bool {
        self.past(2)
    }

    /// Whether `times` intervals have passed, or `times` times the
    /// candles, since the last checkpoint (never without background
    /// checkpoints).
    fn past(&self, times: u32) -> bool {
        match self.policy {
            CheckpointPolicy::Every {
                interval,
                max_candles,
            } => {
                self.candles >= max_candles.saturating_mul(times.into())
                    || self.last.elapsed() >= interval.saturating_mul(times)
            }
            _ => false,
        }
    }

    /// Whether a checkpoint is due and nobody was told yet: true once
    /// per due checkpoint, so that a source running candles in place wakes
    /// the shard's thread for it once, not after every candle.
    pub(crate) fn announce(&mut self) -> bool {
        let fresh = !self.announced && self.due();
        self.announced |= fresh;
        fresh
    }

    pub(crate) fn taken(&mut self) {
        self.last = Instant::now();
        self.candles = 0;
        self.announced = false;
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
    /// Committed checkpoints, emptied, for the workers to fill again.
    spares: Receiver<Owned>,
    /// Set when the writer's thread has stopped.
    gone: Arc<AtomicBool>,
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
    /// Whether the writer has stopped (it failed): the next handoff
    /// would find it gone.
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Relaxed)
    }

    /// Whether a checkpoint handed over now would have to wait.
    pub(crate) fn is_busy(&self) -> bool {
        self.tx.is_full()
    }

    /// An empty checkpoint to fill: a committed one's buffers when the
    /// writer has one spare.
    pub(crate) fn spare(&self) -> Owned {
        self.spares.try_recv().unwrap_or_default()
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
        tail_bars: usize,
        metrics: Arc<Metrics>,
        on_failure: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<(Writer, WriterHandle)> {
        let (tx, rx) = crossbeam_channel::bounded(queue.max(1));
        let (spare_tx, spares) = crossbeam_channel::bounded(queue.max(1));
        let gone = Arc::new(AtomicBool::new(false));
        let stopped = gone.clone();
        let handle = std::thread::Builder::new()
            .name("cw-checkpoint".into())
            .spawn(move || {
                let result = write_all(&*store, &rx, &spare_tx, tail_bars, &metrics);
                stopped.store(true, Relaxed);
                if let Err(e) = &result {
                    tracing::error!(cause = %e, "checkpoint writer failed: the engine stops");
                    on_failure();
                }
                result
            })?;
        Ok((Writer { handle }, WriterHandle { tx, spares, gone }))
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
    spares: &Sender<Owned>,
    tail_bars: usize,
    metrics: &Metrics,
) -> Result<(), StateError> {
    while let Ok(mut checkpoint) = rx.recv() {
        let started = Instant::now();
        commit(store, &mut checkpoint, tail_bars, metrics)?;
        let d = &metrics.durability;
        d.last_commit_us
            .store(started.elapsed().as_micros() as u64, Relaxed);
        d.last_commit_ms
            .store(crate::worker::wall_us() / 1000, Relaxed);
        d.committed.fetch_add(1, Relaxed);
        checkpoint.clear();
        let _ = spares.try_send(checkpoint);
    }
    Ok(())
}

/// Commits `checkpoint` in one write, its warm-up tails completed first,
/// then records its offsets as durable and counts it: the one commit of
/// the background writer and of a worker under `EveryBatch`.
pub(crate) fn commit(
    store: &dyn StateStore,
    checkpoint: &mut Checkpoint<'_>,
    tail_bars: usize,
    metrics: &Metrics,
) -> Result<(), StateError> {
    extend_tails(store, checkpoint, tail_bars)?;
    store.commit(checkpoint)?;
    record_durable(&metrics.durability, checkpoint);
    metrics.add(&metrics.counters.checkpoints, 1);
    Ok(())
}

/// Completes each warm-up tail in `checkpoint`, which holds the stream's
/// candles applied since its last checkpoint: the stored tail with them
/// appended, of which the last `tail_bars` candles are kept. It runs where
/// checkpoints are committed, in their order, so the stored tail it reads
/// is the previous checkpoint's; a stored tail of a wrong length (not
/// written by `encode_tail`) is left out, as a restart would leave it out.
fn extend_tails(
    store: &dyn StateStore,
    checkpoint: &mut Checkpoint<'_>,
    tail_bars: usize,
) -> Result<(), StateError> {
    let keep = tail_bars.saturating_mul(TAIL_RECORD);
    for snapshot in checkpoint.plugins_mut() {
        if snapshot.plugin != TAIL {
            continue;
        }
        let mut whole = store
            .plugin_snapshot(TAIL, &snapshot.stream)?
            .filter(|b| b.len() % TAIL_RECORD == 0)
            .unwrap_or_default();
        whole.extend_from_slice(&snapshot.bytes);
        let extra = whole.len().saturating_sub(keep);
        whole.drain(..extra);
        snapshot.bytes = whole;
    }
    Ok(())
}

/// Records the offsets of a committed checkpoint's streams as durable.
fn record_durable(durability: &Durability, checkpoint: &Checkpoint<'_>) {
    durability.record_committed(
        checkpoint
            .streams()
            .filter_map(|s| s.last_open_time().map(|t| (s.key(), t))),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_tail;
    use candlewick_market::Candle;
    use candlewick_state::MemoryStore;

    fn candle(t: i64) -> Candle {
        Candle {
            open_time: t,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: t as f64,
        }
    }

    fn tail(times: std::ops::Range<i64>) -> Vec<u8> {
        encode_tail(times.map(candle).collect::<Vec<_>>().iter())
    }

    #[test]
    fn a_tail_is_the_stored_one_extended_and_cut_to_tail_bars() {
        let store = MemoryStore::new();
        let key: candlewick_state::StreamKey = "EURUSD/1h".parse().unwrap();
        let committed = |bytes: Vec<u8>, tail_bars| {
            let mut c = Checkpoint::new();
            c.plugin(TAIL, &key, bytes)
                .plugin("sma_cross", &key, vec![7]);
            extend_tails(&store, &mut c, tail_bars).unwrap();
            store.commit(&c).unwrap();
            store.plugin_snapshot(TAIL, &key).unwrap().unwrap()
        };
        assert_eq!(committed(tail(0..3), 5), tail(0..3));
        assert_eq!(committed(tail(3..5), 5), tail(0..5));
        assert_eq!(committed(tail(5..8), 5), tail(3..8));
        // More new candles than the tail holds: the newest only.
        assert_eq!(committed(tail(8..20), 5), tail(15..20));
        // Other snapshots pass through as they are.
        assert_eq!(
            store.plugin_snapshot("sma_cross", &key).unwrap(),
            Some(vec![7])
        );
        // A stored tail of a wrong length is left out, as a restart would.
        let mut c = Checkpoint::new();
        c.plugin(TAIL, &key, vec![1, 2, 3]);
        store.commit(&c).unwrap();
        assert_eq!(committed(tail(20..22), 5), tail(20..22));
    }

    #[test]
    fn a_due_checkpoint_is_announced_once_and_overdue_at_twice_its_candles() {
        let mut s = Schedule::new(CheckpointPolicy::Every {
            interval: Duration::from_secs(3600),
            max_candles: 10,
        });
        s.applied(9);
        assert!(!s.due() && !s.announce());
        s.applied(1);
        assert!(s.due() && !s.overdue());
        assert!(s.announce(), "the first look at a due checkpoint");
        s.applied(5);
        assert!(!s.announce(), "announced already");
        s.applied(5);
        assert!(s.overdue(), "20 candles: twice max_candles");
        s.taken();
        assert!(!s.due() && !s.overdue());
        s.applied(10);
        assert!(s.announce(), "the next checkpoint is announced again");
    }

    #[test]
    fn a_committed_checkpoint_comes_back_empty_with_its_buffers() {
        let key: candlewick_state::StreamKey = "EURUSD/1h".parse().unwrap();
        let (writer, handle) = Writer::start(
            Arc::new(MemoryStore::new()),
            1,
            4,
            Arc::new(Metrics::new(1)),
            || panic!("the writer failed"),
        )
        .unwrap();
        let mut c = handle.spare();
        for p in 0..100 {
            c.plugin(&format!("p{p}"), &key, vec![1]);
        }
        assert!(matches!(handle.send(c), Handoff::Sent));
        let waited = Instant::now();
        let spare = loop {
            let s = handle.spare();
            if s.plugins_capacity() > 0 {
                break s;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "no spare came back"
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(spare.plugins().is_empty());
        assert!(spare.plugins_capacity() >= 100);
        assert!(!handle.is_gone());
        drop(handle);
        writer.join().unwrap();
    }
}
