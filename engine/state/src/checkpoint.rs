//! A checkpoint: everything one drained batch changed, committed at once.

use crate::{StreamKey, StreamState};

/// The states of several streams, plus plugin snapshots, to be committed
/// together by [`crate::StateStore::commit`].
///
/// A checkpoint borrows the stream states it holds, so building one after
/// a batch copies nothing; the store encodes (RocksDB) or clones (memory)
/// them when it commits. Adding the same stream, or the same plugin and
/// stream, twice keeps the last one added.
///
/// What a commit guarantees is stated on [`crate::StateStore::commit`]:
/// all of it becomes visible, or none of it.
///
/// ```
/// use candlewick_state::{Checkpoint, MemoryStore, StateStore, StreamState};
///
/// let store = MemoryStore::new();
/// let state = StreamState::new("BTCUSDT/1m".parse().unwrap(), "obv").unwrap();
/// let mut checkpoint = Checkpoint::new();
/// checkpoint
///     .stream(&state)
///     .plugin("sma_cross", state.key(), b"opaque".to_vec());
/// store.commit(&checkpoint).unwrap();
/// assert_eq!(store.plugin_snapshot("sma_cross", state.key()).unwrap().unwrap(), b"opaque");
/// ```
#[derive(Debug, Default, Clone)]
pub struct Checkpoint<'a> {
    streams: Vec<&'a StreamState>,
    plugins: Vec<PluginSnapshot>,
}

/// The opaque snapshot a plugin gave for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSnapshot {
    pub plugin: String,
    pub stream: StreamKey,
    pub bytes: Vec<u8>,
}

impl<'a> Checkpoint<'a> {
    pub fn new() -> Self {
        Checkpoint::default()
    }

    /// Adds a stream's indicator state and offset (its last applied
    /// candle), which are always written together.
    pub fn stream(&mut self, state: &'a StreamState) -> &mut Self {
        self.streams.push(state);
        self
    }

    /// Adds a plugin's snapshot for one stream.
    pub fn plugin(&mut self, plugin: &str, stream: &StreamKey, bytes: Vec<u8>) -> &mut Self {
        self.plugins.push(PluginSnapshot {
            plugin: plugin.to_owned(),
            stream: stream.clone(),
            bytes,
        });
        self
    }

    /// The stream states added, in order.
    pub fn streams(&self) -> &[&'a StreamState] {
        &self.streams
    }

    /// The plugin snapshots added, in order.
    pub fn plugins(&self) -> &[PluginSnapshot] {
        &self.plugins
    }

    /// True when nothing was added: committing it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.plugins.is_empty()
    }
}
