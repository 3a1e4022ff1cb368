//! [`Router`]: from sources to the shard queues, with explicit backpressure.

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use crate::{CandleEvent, Metrics, StreamTable};

/// Why an event could not be routed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The worker of this shard has stopped (it failed, or the pipeline is
    /// shutting down). The event is handed back.
    #[error("shard worker {shard} has stopped")]
    Stopped { shard: usize, event: CandleEvent },
}

impl RouteError {
    /// The event that was not routed.
    pub fn into_inner(self) -> CandleEvent {
        match self {
            RouteError::Stopped { event, .. } => event,
        }
    }
}

/// Puts events on the queue of the worker that owns their stream.
///
/// Clone it for each source; the pipeline shuts down when every clone is
/// dropped (see the crate docs).
///
/// # Backpressure
///
/// Each queue is bounded ([`crate::PipelineConfig::queue_capacity`]). When
/// it is full, [`Router::route`] blocks the calling thread until there is
/// room and counts one [`Metrics::backpressure_waits`]: a source that
/// outruns the workers is slowed, and the metric says so. Nothing is
/// dropped. Call it from a thread that may block: a source's own thread,
/// or inside `tokio::task::block_in_place` (see [`Router::route_async`]).
#[derive(Debug, Clone)]
pub struct Router {
    senders: Arc<[Sender<CandleEvent>]>,
    table: Arc<StreamTable>,
    metrics: Arc<Metrics>,
}

impl Router {
    pub(crate) fn new(
        senders: Vec<Sender<CandleEvent>>,
        table: Arc<StreamTable>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Router {
            senders: senders.into(),
            table,
            metrics,
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
        let tx = &self.senders[shard];
        self.metrics.count_ingested();
        match tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(event)) => {
                self.metrics.count_backpressure();
                tx.send(event)
                    .map_err(|e| RouteError::Stopped { shard, event: e.0 })
            }
            Err(TrySendError::Disconnected(event)) => Err(RouteError::Stopped { shard, event }),
        }
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
        self.metrics.count_ingested();
        match self.senders[shard].try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(event)) => {
                self.metrics.count_backpressure();
                tokio::task::block_in_place(|| {
                    self.senders[shard]
                        .send(event)
                        .map_err(|e| RouteError::Stopped { shard, event: e.0 })
                })
            }
            Err(TrySendError::Disconnected(event)) => Err(RouteError::Stopped { shard, event }),
        }
    }
}
