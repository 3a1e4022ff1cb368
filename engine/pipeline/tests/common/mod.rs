//! What the pipeline's tests share: the bundled data, the example
//! plugins, and a store that watches its commits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candlewick_state::{Checkpoint, OutboxRecord, StateError, StateStore, StreamKey, StreamState};

pub use candlewick_models::testing::eurusd;

/// The built `NAME.wasm` (the example plugins are built on demand).
pub fn wasm(name: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = candlewick_plugins::testing::build_plugins(&repo).unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("{name}.wasm"))
}

/// A store whose every commit first goes through `hook`: an error from it
/// fails the commit; reads go to `inner` unchanged.
pub struct Hooked<S, F> {
    pub inner: S,
    pub hook: F,
}

impl<S, F> StateStore for Hooked<S, F>
where
    S: StateStore,
    F: Fn(&Checkpoint<'_>) -> Result<(), StateError> + Send + Sync,
{
    fn load(&self, stream: &StreamKey, spec: &str) -> Result<StreamState, StateError> {
        self.inner.load(stream, spec)
    }
    fn offset(&self, stream: &StreamKey) -> Result<Option<i64>, StateError> {
        self.inner.offset(stream)
    }
    fn plugin_snapshot(
        &self,
        plugin: &str,
        stream: &StreamKey,
    ) -> Result<Option<Vec<u8>>, StateError> {
        self.inner.plugin_snapshot(plugin, stream)
    }
    fn outbox_since(&self, time: i64, limit: usize) -> Result<Vec<OutboxRecord>, StateError> {
        self.inner.outbox_since(time, limit)
    }
    fn commit(&self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError> {
        (self.hook)(checkpoint)?;
        self.inner.commit(checkpoint)
    }
}
