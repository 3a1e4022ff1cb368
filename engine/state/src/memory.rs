//! An in-memory state store for backtests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use candlewick_indicators::IndicatorSet;

use crate::{Checkpoint, OutboxRecord, StateError, StateStore, StreamKey, StreamState};

/// A [`StateStore`] that keeps the last checkpoint in memory.
///
/// It behaves like [`crate::Store`] in everything a worker can observe
/// (fresh states, spec-change refusals, atomic commits) but writes no
/// disk, so a backtest's replay runs at the speed of its indicators. Its
/// contents die with it: use [`crate::Store`] when a backtest is asked to
/// persist.
///
/// Committed indicator sets are cloned, not serialised; a restore is the
/// same value, bit for bit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per stream: the committed set and its offset (`None` before the
    /// first candle), always replaced together.
    streams: HashMap<StreamKey, (IndicatorSet, Option<i64>)>,
    plugins: HashMap<(StreamKey, String), Vec<u8>>,
    /// The outbox, by (time, id).
    outbox: BTreeMap<(i64, String), Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// The lock. A commit mutates only after every clone is made, so a
    /// panic elsewhere never leaves it half-applied and poisoning can be
    /// ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for MemoryStore {
    fn load(&self, stream: &StreamKey, spec: &str) -> Result<StreamState, StateError> {
        let stored = self.lock().streams.get(stream).cloned();
        let (set, offset) = stored.map_or((None, None), |(set, offset)| (Some(set), offset));
        StreamState::restore(stream.clone(), spec, set, offset)
    }

    fn offset(&self, stream: &StreamKey) -> Result<Option<i64>, StateError> {
        Ok(self
            .lock()
            .streams
            .get(stream)
            .and_then(|(_, offset)| *offset))
    }

    fn plugin_snapshot(
        &self,
        plugin: &str,
        stream: &StreamKey,
    ) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self
            .lock()
            .plugins
            .get(&(stream.clone(), plugin.to_owned()))
            .cloned())
    }

    fn commit(&self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError> {
        let streams: Vec<_> = checkpoint
            .streams()
            .map(|s| (s.key().clone(), (s.set().clone(), s.last_open_time())))
            .collect();
        let plugins: Vec<_> = checkpoint
            .plugins()
            .iter()
            .map(|p| ((p.stream.clone(), p.plugin.clone()), p.bytes.clone()))
            .collect();
        let mut inner = self.lock();
        inner.streams.extend(streams);
        inner.plugins.extend(plugins);
        if let Some(before) = checkpoint.outbox_trim() {
            inner.outbox = inner.outbox.split_off(&(before, String::new()));
        }
        for r in checkpoint.outbox() {
            inner.outbox.insert((r.time, r.id.clone()), r.body.clone());
        }
        Ok(())
    }

    fn outbox_since(&self, time: i64, limit: usize) -> Result<Vec<OutboxRecord>, StateError> {
        let inner = self.lock();
        Ok(inner
            .outbox
            .range((time, String::new())..)
            .take(limit)
            .map(|((time, id), body)| OutboxRecord {
                time: *time,
                id: id.clone(),
                body: body.clone(),
            })
            .collect())
    }
}
