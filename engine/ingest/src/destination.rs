//! [`Destination`]: where a source hands its closed candles.

use std::future::Future;
use std::sync::Arc;

use candlewick_core::{CandleEvent, Metrics, Router, StreamTable};

use crate::IngestError;

/// Where a source's closed candles go: the local pipeline's [`Router`]
/// (`candlewick run`), or a publisher to a message bus (`candlewick
/// ingest`, which publishes to the cluster's candle stream instead).
///
/// A source hands over one candle at a time, in order per stream, and
/// takes a candle as handed over only when [`Destination::deliver`]
/// returned `Ok`: the next candle it backfills from is the one after.
pub trait Destination: Send + Sync + 'static {
    /// The streams served, numbered once.
    fn table(&self) -> &Arc<StreamTable>;

    /// Where the source counts what it saw (frames, reconnects, backfill).
    fn metrics(&self) -> &Arc<Metrics>;

    /// Hands one closed candle over; resolves once it is taken (routed to
    /// its shard, or published and acknowledged by the bus).
    ///
    /// # Errors
    /// [`IngestError::Route`] when the pipeline stopped (the source stops);
    /// [`IngestError::Publish`] when the bus did not take it (the source
    /// reconnects and backfills from the last candle taken).
    fn deliver(&self, event: CandleEvent) -> impl Future<Output = Result<(), IngestError>> + Send;

    /// [`Destination::deliver`] from a source that already holds many more
    /// frames (a burst): a destination that could run the candle on the
    /// source's thread queues it instead (see
    /// [`Router::route_async_queued`]).
    ///
    /// # Errors
    /// As [`Destination::deliver`].
    fn deliver_in_burst(
        &self,
        event: CandleEvent,
    ) -> impl Future<Output = Result<(), IngestError>> + Send {
        self.deliver(event)
    }
}

impl Destination for Router {
    fn table(&self) -> &Arc<StreamTable> {
        Router::table(self)
    }

    fn metrics(&self) -> &Arc<Metrics> {
        Router::metrics(self)
    }

    /// Routes at once (waiting inside `block_in_place` while the queue is
    /// full, as [`Router::route_async`] does).
    fn deliver(&self, event: CandleEvent) -> impl Future<Output = Result<(), IngestError>> + Send {
        let routed = self.route_async(event).map_err(IngestError::from);
        std::future::ready(routed)
    }

    fn deliver_in_burst(
        &self,
        event: CandleEvent,
    ) -> impl Future<Output = Result<(), IngestError>> + Send {
        let routed = self.route_async_queued(event).map_err(IngestError::from);
        std::future::ready(routed)
    }
}
