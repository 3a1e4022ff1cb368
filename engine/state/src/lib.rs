//! Checkpoints of Candlewick's streams: how indicator state outlives the
//! process.
//!
//! # A stream's state over its life
//!
//! A *stream* is one symbol at one interval, named by a [`StreamKey`]
//! (`BTCUSDT/1m`). Its state is a [`StreamState`]: the [`IndicatorSet`]
//! built from the stream's spec, and the open time of the last candle it
//! consumed (the stream's *offset*).
//!
//! 1. **Start.** A worker asks its store for the stream:
//!    [`StateStore::load`] returns the state as of the last commit, or a
//!    fresh one built from the spec when there was none.
//! 2. **Apply.** Each closed candle goes through [`StreamState::apply`],
//!    which updates the indicators and advances the offset. A candle at or
//!    before the offset is refused ([`StateError::AlreadyApplied`]) and
//!    changes nothing: after a restart the source may re-send candles the
//!    state already holds, and they must not count twice.
//! 3. **Checkpoint.** After each drained batch the worker gathers the
//!    streams it touched, and its plugins' snapshots, in a [`Checkpoint`]
//!    and hands it to [`StateStore::commit`].
//! 4. **Restart.** After a crash, `load` gives back the state of the last
//!    commit and [`StateStore::offset`] tells the source where to backfill
//!    from. Candles applied after that commit are lost with the process
//!    and simply applied again; the indicators then continue bit for bit
//!    as if the process had never stopped.
//!
//! # What is atomic
//!
//! A commit is one RocksDB `WriteBatch`: every stream's indicator state,
//! its offset and every plugin snapshot in the checkpoint become visible
//! together, or (on error or crash) none does. So a stream's indicators
//! and its offset never disagree, and no candle is applied twice or
//! skipped. How much survives a crash of the *machine* rather than of the
//! process is a separate choice, [`StoreOptions::sync`].
//!
//! # What is refused
//!
//! Nothing is ever reset or recomputed behind the operator's back:
//! - a database of another schema version ([`StateError::SchemaMismatch`]),
//!   or with data but no version ([`StateError::Unversioned`]);
//! - a stored indicator set built for another spec
//!   ([`StateError::SpecChanged`]): changing a spec means rebuilding the
//!   stream from history ([`Store::forget`], then replay);
//! - a record that does not decode, or an offset that disagrees with its
//!   indicators ([`StateError::Corrupt`]);
//! - a candle already applied ([`StateError::AlreadyApplied`]).
//!
//! # Two stores, one worker
//!
//! [`Store`] keeps state in RocksDB for live runs; [`MemoryStore`] keeps
//! it in memory for backtests, so that replay is not bound by disk. Both
//! implement [`StateStore`], and the worker code is the same.
//!
//! ```
//! use candlewick_market::Candle;
//! use candlewick_state::{Checkpoint, StateError, StateStore, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let key = "EURUSD/1h".parse().unwrap();
//! let candle = |t| Candle { open_time: t, open: 1.0, high: 1.1, low: 0.9, close: 1.0, volume: 5.0 };
//! let mut out = [0.0; 2];
//!
//! let store = Store::open(dir.path())?;
//! let mut state = store.load(&key, "sma(2) obv")?;
//! state.apply(&candle(0), &mut out)?;
//! state.apply(&candle(3_600_000), &mut out)?;
//! store.commit(Checkpoint::new().stream(&state))?;
//! drop(store); // a restart
//!
//! let store = Store::open(dir.path())?;
//! let mut state = store.load(&key, "sma(2) obv")?;
//! assert_eq!(store.offset(&key)?, Some(3_600_000));
//! // The source re-sends the last candle: refused, nothing changes.
//! let again = state.apply(&candle(3_600_000), &mut out);
//! assert!(matches!(again, Err(StateError::AlreadyApplied { .. })));
//! // A changed spec is refused, not silently rebuilt.
//! assert!(matches!(store.load(&key, "sma(3) obv"), Err(StateError::SpecChanged { .. })));
//! # Ok::<(), StateError>(())
//! ```
//!
//! [`IndicatorSet`]: candlewick_indicators::IndicatorSet
#![forbid(unsafe_code)]

mod checkpoint;
mod codec;
mod error;
mod memory;
mod portable;
mod state_store;
mod store;
mod stream;

pub use candlewick_core::{OutboxRecord, StreamKey, StreamKeyError};
pub use checkpoint::{Checkpoint, PluginSnapshot};
#[doc(hidden)]
pub use codec::{fuzz_indicator_record, fuzz_seed_record};
pub use error::StateError;
pub use memory::MemoryStore;
pub use portable::{decode_records, encode_records, StreamRecord};
pub use state_store::StateStore;
pub use store::{Store, StoreOptions, SCHEMA_VERSION};
pub use stream::StreamState;
