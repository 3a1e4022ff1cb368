//! The one interface a worker needs from wherever its state lives.

use crate::{Checkpoint, OutboxRecord, StateError, StreamKey, StreamState};

/// Where a worker loads its streams from and commits its checkpoints to.
///
/// Two implementations: [`crate::Store`] (RocksDB, for live runs) and
/// [`crate::MemoryStore`] (for backtests, so that replay is not bound by
/// disk writes). A worker is written once against this trait; whether its
/// state survives the process is a property of the store it is given.
///
/// Every method takes `&self`: a store is shared by the shard workers of a
/// process (behind an `Arc`), each committing its own batches.
pub trait StateStore: Send + Sync {
    /// The state of `stream` as of the last commit, or a fresh state built
    /// from `spec` when the stream was never committed.
    ///
    /// # Errors
    /// - [`StateError::SpecChanged`] when the stored indicators were built
    ///   for another (canonical) spec: never silently recomputed;
    /// - [`StateError::Spec`] when `spec` does not parse;
    /// - [`StateError::Corrupt`] when the stored records cannot be decoded
    ///   or disagree;
    /// - [`StateError::Rocks`] when the database cannot be read.
    fn load(&self, stream: &StreamKey, spec: &str) -> Result<StreamState, StateError>;

    /// Open time of the last candle committed for `stream`, `None` when
    /// nothing was: the source backfills from the candle after it.
    ///
    /// # Errors
    /// As [`StateStore::load`], spec errors aside.
    fn offset(&self, stream: &StreamKey) -> Result<Option<i64>, StateError>;

    /// The last committed snapshot of `plugin` for `stream`, if any.
    ///
    /// # Errors
    /// [`StateError::Rocks`] when the database cannot be read.
    fn plugin_snapshot(
        &self,
        plugin: &str,
        stream: &StreamKey,
    ) -> Result<Option<Vec<u8>>, StateError>;

    /// Commits everything in `checkpoint` atomically: after it returns
    /// `Ok`, every stream's indicator state, its offset and every plugin
    /// snapshot in it are visible together; after an error or a crash
    /// during the call, none of them is. A stream's indicators and its
    /// offset therefore never disagree, so on restart no candle is applied
    /// twice and none is skipped.
    ///
    /// # Errors
    /// [`StateError::Rocks`] when the write fails (nothing was written);
    /// [`StateError::Encode`] when a state cannot be serialised.
    fn commit(&self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError>;

    /// Committed outbox records of candles that opened at or after `time`,
    /// in (time, id) order, at most `limit` of them.
    ///
    /// # Errors
    /// [`StateError::Rocks`] when the database cannot be read;
    /// [`StateError::CorruptOutbox`] for a record that does not decode.
    fn outbox_since(&self, time: i64, limit: usize) -> Result<Vec<OutboxRecord>, StateError>;
}

/// The feed reads the outbox through [`SignalOutbox`], which knows nothing
/// of RocksDB; each store answers it as [`StateStore::outbox_since`].
macro_rules! signal_outbox {
    ($($store:ty),*) => {$(
        impl candlewick_core::SignalOutbox for $store {
            fn outbox_since(
                &self,
                time: i64,
                limit: usize,
            ) -> Result<Vec<OutboxRecord>, Box<dyn std::error::Error + Send + Sync>> {
                StateStore::outbox_since(self, time, limit).map_err(Into::into)
            }
        }
    )*};
}

signal_outbox!(crate::Store, crate::MemoryStore);
