//! A checkpoint: everything one drained batch changed, committed at once.

use candlewick_core::OutboxRecord;
use std::borrow::Cow;

use crate::{StreamKey, StreamState};

/// The states of several streams, plus plugin snapshots, to be committed
/// together by [`crate::StateStore::commit`].
///
/// A checkpoint borrows the stream states it holds ([`Checkpoint::stream`]),
/// so building one to commit at once copies nothing, or owns copies of
/// them ([`Checkpoint::stream_owned`], `Checkpoint<'static>`), so that a
/// worker can hand it to a writer thread and go on applying candles. The
/// store encodes (RocksDB) or clones (memory) them when it commits. Adding
/// the same stream, or the same plugin and stream, twice keeps the last
/// one added.
///
/// A checkpoint also carries the signals emitted since the previous one
/// ([`Checkpoint::signal`]): they go to the *outbox*, from which a feed
/// client that reconnects is served what it missed
/// ([`crate::StateStore::outbox_since`]).
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
    streams: Vec<Cow<'a, StreamState>>,
    plugins: Vec<PluginSnapshot>,
    outbox: Vec<OutboxRecord>,
    /// Outbox records with a time before this are deleted by the commit.
    outbox_before: Option<i64>,
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

    /// Empties the checkpoint for reuse, keeping its buffers: a worker
    /// that fills a committed checkpoint again writes to memory it
    /// touched before instead of faulting in fresh pages every interval.
    pub fn clear(&mut self) {
        self.streams.clear();
        self.plugins.clear();
        self.outbox.clear();
        self.outbox_before = None;
    }

    /// How many plugin snapshots it holds room for without growing.
    pub fn plugins_capacity(&self) -> usize {
        self.plugins.capacity()
    }

    /// Room for `streams` more stream states and `plugins` more plugin
    /// snapshots, reserved at once rather than grown by doubling.
    pub fn reserve(&mut self, streams: usize, plugins: usize) {
        self.streams.reserve(streams);
        self.plugins.reserve(plugins);
    }

    /// Adds a stream's indicator state and offset (its last applied
    /// candle), which are always written together.
    pub fn stream(&mut self, state: &'a StreamState) -> &mut Self {
        self.streams.push(Cow::Borrowed(state));
        self
    }

    /// As [`Checkpoint::stream`], with a copy the checkpoint owns.
    pub fn stream_owned(&mut self, state: StreamState) -> &mut Self {
        self.streams.push(Cow::Owned(state));
        self
    }

    /// Adds an emitted signal to the outbox.
    pub fn signal(&mut self, record: OutboxRecord) -> &mut Self {
        self.outbox.push(record);
        self
    }

    /// Deletes, in the same commit, the outbox records of candles that
    /// opened before `time` (the outbox's retention).
    pub fn trim_outbox_before(&mut self, time: i64) -> &mut Self {
        self.outbox_before = Some(time);
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
    pub fn streams(&self) -> impl ExactSizeIterator<Item = &StreamState> {
        self.streams.iter().map(|s| &**s)
    }

    /// The outbox records added, in order.
    pub fn outbox(&self) -> &[OutboxRecord] {
        &self.outbox
    }

    /// See [`Checkpoint::trim_outbox_before`].
    pub fn outbox_trim(&self) -> Option<i64> {
        self.outbox_before
    }

    /// The plugin snapshots added, in order.
    pub fn plugins(&self) -> &[PluginSnapshot] {
        &self.plugins
    }

    /// The plugin snapshots added, to complete before the commit (the
    /// pipeline turns the candles of a stream's warm-up tail applied since
    /// its last checkpoint into its whole tail there).
    pub fn plugins_mut(&mut self) -> &mut [PluginSnapshot] {
        &mut self.plugins
    }

    /// True when nothing was added: committing it writes nothing.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
            && self.plugins.is_empty()
            && self.outbox.is_empty()
            && self.outbox_before.is_none()
    }
}
