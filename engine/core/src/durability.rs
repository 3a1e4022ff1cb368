//! [`Durability`]: how far the engine's state is durable, as `/metrics`
//! and the sources that ack only durable candles read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Mutex, PoisonError};

use crate::StreamKey;

/// Durability as the engine can report it.
#[derive(Debug, Default)]
pub struct Durability {
    /// Checkpoints committed by the writer.
    pub committed: AtomicU64,
    /// Checkpoints a worker postponed because the writer was still busy
    /// with earlier ones, or because candles were queued for it (taken at
    /// a later batch instead).
    pub deferred: AtomicU64,
    /// Wall clock (ms since the Unix epoch) of the last durable commit;
    /// 0 before the first.
    pub last_commit_ms: AtomicI64,
    /// Microseconds the last commit took.
    pub last_commit_us: AtomicU64,
    /// Microseconds a worker last spent copying its streams for a
    /// checkpoint: the one pause a checkpoint puts on the hot path.
    pub last_build_us: AtomicU64,
    /// Per stream, the open time of the last candle a durable checkpoint
    /// holds (at start: the store's offsets). A source that must not let
    /// go of a candle before it is durable (a JetStream consumer acks only
    /// then) reads it with [`Durability::offset`].
    offsets: Mutex<HashMap<StreamKey, i64>>,
}

impl Durability {
    /// Open time of the last durable candle of `stream`, `None` before any.
    pub fn offset(&self, stream: &StreamKey) -> Option<i64> {
        self.lock().get(stream).copied()
    }

    /// Records the offsets of a committed checkpoint's streams (called by
    /// the checkpoint writer once the commit is durable).
    pub fn record_committed<'a>(&self, streams: impl IntoIterator<Item = (&'a StreamKey, i64)>) {
        let mut offsets = self.lock();
        for (key, t) in streams {
            offsets.insert(key.clone(), t);
        }
    }

    /// Records a stream's offset as loaded from the store at start.
    pub fn loaded(&self, stream: &StreamKey, offset: Option<i64>) {
        if let Some(t) = offset {
            self.lock().insert(stream.clone(), t);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, i64>> {
        self.offsets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
