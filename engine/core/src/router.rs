//! [`Router`]: from sources to the shard queues, with explicit backpressure.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::{CandleEvent, Metrics, StreamTable};

/// Why an event could not be routed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The worker of this shard has stopped (it failed, or the pipeline is
    /// shutting down). The event is handed back.
    #[error("shard worker {shard} has stopped")]
    Stopped {
        shard: usize,
        /// The events of that shard that were not routed.
        events: Vec<CandleEvent>,
    },
}

impl RouteError {
    /// The events that were not routed.
    pub fn into_inner(self) -> Vec<CandleEvent> {
        match self {
            RouteError::Stopped { events, .. } => events,
        }
    }
}

/// How a caller hands events over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hand {
    /// From a thread that may block on a full queue.
    Block,
    /// From async code: a full queue is waited for in `block_in_place`.
    Async,
    /// From async code, never run in place (a source in a burst).
    AsyncQueued,
}

/// A shard that can run a batch to completion on the routing thread, the
/// latency mode's way to take the hand-off to a worker thread (and its
/// wake-up) off the path (see [`Router::with_inline`]).
pub trait InlineShard: Send + Sync + std::fmt::Debug {
    /// Runs `events` now, on the caller's thread, when the shard's worker
    /// is idle; whatever is queued for the shard runs first, so a stream's
    /// events keep their order. Never waits: a busy shard hands the events
    /// back to be queued.
    fn try_run(&self, events: Vec<CandleEvent>) -> Inline;
}

/// What [`InlineShard::try_run`] did.
#[derive(Debug)]
pub enum Inline {
    /// Applied and emitted.
    Ran,
    /// The shard is busy: queue these.
    Busy(Vec<CandleEvent>),
    /// The shard has failed; these events (empty when the failure came
    /// while running them) were not applied.
    Stopped(Vec<CandleEvent>),
}

/// Puts events on the queue of the worker that owns their stream.
///
/// A queue carries *batches* (a frame's closed klines, a chunk of a file),
/// not single candles: one hand-off per batch, and a worker drains whole
/// batches. Within a shard, events keep the order they were routed in.
///
/// Clone it for each source; the pipeline shuts down when every clone is
/// dropped (see the crate docs).
///
/// # Backpressure
///
/// Each queue is bounded ([`crate::PipelineConfig::queue_capacity`]
/// batches). When
/// it is full, [`Router::route`] blocks the calling thread until there is
/// room and counts one [`Metrics::backpressure_waits`]: a source that
/// outruns the workers is slowed, and the metric says so. Nothing is
/// dropped. Call it from a thread that may block: a source's own thread,
/// or inside `tokio::task::block_in_place` (see [`Router::route_async`]).
#[derive(Debug, Clone)]
pub struct Router {
    senders: Arc<[Sender<Vec<CandleEvent>>]>,
    table: Arc<StreamTable>,
    metrics: Arc<Metrics>,
    /// Emptied batches the workers hand back ([`Router::spare_batch`]).
    spares: Receiver<Vec<CandleEvent>>,
    /// Per shard, in latency mode: the door to run a batch in place.
    inline: Option<Arc<[Arc<dyn InlineShard>]>>,
}

impl Router {
    pub fn new(
        senders: Vec<Sender<Vec<CandleEvent>>>,
        table: Arc<StreamTable>,
        metrics: Arc<Metrics>,
        spares: Receiver<Vec<CandleEvent>>,
    ) -> Self {
        Router {
            senders: senders.into(),
            table,
            metrics,
            spares,
            inline: None,
        }
    }

    /// Latency mode: each route first offers its events to their shard's
    /// [`InlineShard`] (one per shard, in shard order), which runs them on
    /// the caller's thread when the shard is idle; a busy shard's events
    /// are queued as usual. A source's thread then applies, decides and
    /// emits a candle itself, with no thread to wake in between.
    pub fn with_inline(mut self, shards: Vec<Arc<dyn InlineShard>>) -> Self {
        debug_assert_eq!(shards.len(), self.senders.len());
        self.inline = Some(shards.into());
        self
    }

    /// An empty batch to fill and route, with room for at least
    /// `capacity` events: one a worker has emptied and handed back when
    /// there is one, else a new one. A source that routes batch after
    /// batch (a replay) then reuses a few buffers instead of allocating,
    /// and faulting in, a fresh one each time.
    pub fn spare_batch(&self, capacity: usize) -> Vec<CandleEvent> {
        match self.spares.try_recv() {
            Ok(mut batch) => {
                batch.clear();
                batch.reserve(capacity);
                batch
            }
            Err(_) => Vec::with_capacity(capacity),
        }
    }

    pub fn table(&self) -> &Arc<StreamTable> {
        &self.table
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Routes one event, waiting while its queue is full.
    ///
    /// # Errors
    /// [`RouteError::Stopped`] when the shard's worker has stopped.
    #[inline]
    pub fn route(&self, event: CandleEvent) -> Result<(), RouteError> {
        let shard = self.table.shard(event.stream);
        self.send(shard, vec![event], Hand::Block)
    }

    /// Routes a batch of events (any streams), one hand-off per shard,
    /// waiting while a queue is full. Events of one shard keep their order.
    ///
    /// # Errors
    /// [`RouteError::Stopped`] when a shard's worker has stopped; the
    /// batches of the other shards were routed.
    pub fn route_batch(&self, events: Vec<CandleEvent>) -> Result<(), RouteError> {
        self.route_batch_with(events, Hand::Block)
    }

    /// [`Router::route`] from async code on a multi-threaded tokio runtime:
    /// the fast path does not block; a full queue waits inside
    /// `block_in_place`, so other tasks keep running.
    ///
    /// # Errors
    /// As [`Router::route`].
    ///
    /// # Panics
    /// On a current-thread runtime when a queue is full (tokio refuses
    /// `block_in_place` there).
    pub fn route_async(&self, event: CandleEvent) -> Result<(), RouteError> {
        let shard = self.table.shard(event.stream);
        self.send(shard, vec![event], Hand::Async)
    }

    /// [`Router::route_async`] for a source in a burst (it holds more
    /// frames already): never runs the event on the caller's thread, so
    /// the shard workers take the burst side by side while the source
    /// reads on, instead of the source running it all, one candle after
    /// another.
    ///
    /// # Errors
    /// As [`Router::route`].
    pub fn route_async_queued(&self, event: CandleEvent) -> Result<(), RouteError> {
        let shard = self.table.shard(event.stream);
        self.send(shard, vec![event], Hand::AsyncQueued)
    }

    /// [`Router::route_batch`] from async code (see [`Router::route_async`]).
    ///
    /// # Errors
    /// As [`Router::route_batch`].
    pub fn route_batch_async(&self, events: Vec<CandleEvent>) -> Result<(), RouteError> {
        self.route_batch_with(events, Hand::Async)
    }

    fn route_batch_with(&self, events: Vec<CandleEvent>, hand: Hand) -> Result<(), RouteError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let shard = self.table.shard(first.stream);
        if events.iter().all(|e| self.table.shard(e.stream) == shard) {
            return self.send(shard, events, hand);
        }
        let mut per_shard: Vec<Vec<CandleEvent>> = vec![Vec::new(); self.senders.len()];
        for e in events {
            per_shard[self.table.shard(e.stream)].push(e);
        }
        let mut first_error = None;
        for (shard, batch) in per_shard.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.send(shard, batch, hand) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One hand-off: run in place by an idle shard in latency mode,
    /// otherwise queued ([`Router::enqueue`]). Events a stopped shard did
    /// not take come back in the error.
    #[inline]
    fn send(&self, shard: usize, events: Vec<CandleEvent>, hand: Hand) -> Result<(), RouteError> {
        let n = events.len();
        self.metrics.count_ingested(n);
        self.metrics.enqueued(shard, n);
        let door = match hand {
            Hand::AsyncQueued => None,
            Hand::Block | Hand::Async => self.inline.as_deref().and_then(|doors| doors.get(shard)),
        };
        let result = match door {
            None => self.enqueue(shard, events, hand),
            Some(door) => match door.try_run(events) {
                Inline::Ran => {
                    self.metrics.add(&self.metrics.counters.inline_ran, 1);
                    Ok(())
                }
                Inline::Busy(events) => {
                    self.metrics.add(&self.metrics.counters.inline_busy, 1);
                    self.enqueue(shard, events, hand)
                }
                Inline::Stopped(events) => Err(events),
            },
        };
        result.map_err(|events| {
            self.metrics.dequeued(shard, events.len());
            RouteError::Stopped { shard, events }
        })
    }

    /// Puts `events` on the shard's queue: without waiting when there is
    /// room; otherwise counted as backpressure and waited for (inside
    /// `block_in_place` from async). A stopped worker hands them back.
    #[inline]
    fn enqueue(
        &self,
        shard: usize,
        events: Vec<CandleEvent>,
        hand: Hand,
    ) -> Result<(), Vec<CandleEvent>> {
        let tx = &self.senders[shard];
        match tx.try_send(events) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(events)) => {
                self.metrics.count_backpressure();
                let wait = || tx.send(events).map_err(|e| e.0);
                if hand == Hand::Block {
                    wait()
                } else {
                    tokio::task::block_in_place(wait)
                }
            }
            Err(TrySendError::Disconnected(events)) => Err(events),
        }
    }
}
