//! The RocksDB state store used by live runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::codec::{self, VERSION_KEY};
use crate::{
    Checkpoint, OutboxRecord, StateError, StateStore, StreamKey, StreamRecord, StreamState,
};

/// Version of the on-disk layout (column families, keys and value
/// encodings, see the `codec` module). Written into `meta` when a database is
/// created and checked on every open; a database of another version is
/// refused, never reset. Bump it with any change to what is written.
///
/// 2: an indicator set's state is grouped by indicator kind, and the
/// stochastics keep their window as rings (was: one list in spec order,
/// monotonic deques).
pub const SCHEMA_VERSION: u32 = 2;

const INDICATORS: &str = "indicators";
const OFFSETS: &str = "offsets";
const PLUGINS: &str = "plugins";
const META: &str = "meta";
/// Signals emitted, by (candle time, id): what a reconnecting feed client
/// missed (see [`Checkpoint::signal`]).
const OUTBOX: &str = "outbox";
const FAMILIES: [&str; 5] = [INDICATORS, OFFSETS, PLUGINS, META, OUTBOX];

/// How a [`Store`] is opened.
///
/// # Durability: `sync`
///
/// Every commit goes to RocksDB's write-ahead log before it is visible.
///
/// - `sync(false)`, the default: the log write lands in the operating
///   system's page cache and the call returns. A crash of the *process*
///   (panic, `kill -9`, out-of-memory kill) loses nothing committed, because
///   the kernel still writes the page cache out. A crash of the *machine*
///   (power loss, kernel panic) may lose the last commits; the database
///   then reopens at an older checkpoint, whole and consistent (a batch is
///   recovered entirely or not at all), and the engine backfills from its
///   offsets. Signals already emitted after that checkpoint are emitted
///   again, with the same deterministic ids, so consumers can dedupe them.
/// - `sync(true)`: every commit also waits for `fsync`, so a commit that
///   returned survives power loss. It costs a disk flush per commit
///   (from tens of microseconds on NVMe to milliseconds elsewhere), which
///   bounds the commit rate of every worker.
///
/// ```
/// use candlewick_state::StoreOptions;
///
/// assert!(!StoreOptions::default().is_sync());
/// assert!(StoreOptions::default().sync(true).is_sync());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    sync: bool,
}

impl StoreOptions {
    /// Whether each commit waits for `fsync` (default `false`, see above).
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    pub fn is_sync(&self) -> bool {
        self.sync
    }
}

/// The RocksDB-backed [`StateStore`].
///
/// One database per process, shared by the shard workers (every method
/// takes `&self`; RocksDB serialises the writes). A second process that
/// opens the same directory is refused by RocksDB's lock
/// ([`StateError::Rocks`]).
///
/// # Opening
///
/// [`Store::open`] creates the directory, the four column families
/// (`indicators`, `offsets`, `plugins`, `meta`) and the schema version on
/// first use. On later opens it checks the version:
/// - another version: [`StateError::SchemaMismatch`];
/// - no version but data: [`StateError::Unversioned`];
/// - an unreadable version record: [`StateError::CorruptMeta`].
///
/// A refused database is left as it was (at most, missing column families
/// are created empty). Nothing is ever reset.
///
/// ```
/// use candlewick_state::{Checkpoint, StateStore, Store};
/// use candlewick_market::Candle;
///
/// let dir = tempfile::tempdir().unwrap();
/// let key = "BTCUSDT/1m".parse().unwrap();
/// {
///     let store = Store::open(dir.path()).unwrap();
///     let mut state = store.load(&key, "sma(2)").unwrap();
///     let candle = Candle { open_time: 60_000, open: 1.0, high: 1.0, low: 1.0, close: 1.0, volume: 0.0 };
///     state.apply(&candle, &mut [0.0]).unwrap();
///     store.commit(Checkpoint::new().stream(&state)).unwrap();
/// } // dropped: as good as a crash, the commit is in the log
/// let store = Store::open(dir.path()).unwrap();
/// assert_eq!(store.offset(&key).unwrap(), Some(60_000));
/// assert_eq!(store.load(&key, "sma(2)").unwrap().set().applied(), 1);
/// ```
pub struct Store {
    db: DB,
    path: PathBuf,
    write: WriteOptions,
}

impl Store {
    /// Opens (or creates) the database at `path` with default options.
    ///
    /// # Errors
    /// As [`Store::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StateError> {
        Store::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// The refusals listed on [`Store`], and [`StateError::Rocks`] when
    /// RocksDB cannot open the directory (permissions, a lock held by
    /// another process, damaged files).
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StateError> {
        let path = path.as_ref().to_path_buf();
        let (db, families) = open_db(&path)?;
        let mut write = WriteOptions::default();
        write.set_sync(options.sync);
        let store = Store { db, path, write };
        store.check_schema(&families)?;
        Ok(store)
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes everything stored for `stream` (indicator state, offset and
    /// every plugin's snapshot) in one batch: the way out of a
    /// [`StateError::SpecChanged`] or [`StateError::Corrupt`] when the
    /// stream is to be rebuilt by replaying its history.
    ///
    /// # Errors
    /// [`StateError::Rocks`] when the write fails (nothing was deleted).
    pub fn forget(&self, stream: &StreamKey) -> Result<(), StateError> {
        self.import_streams(&[], std::slice::from_ref(stream))
    }

    /// Everything committed for `stream` (indicators, offset, every
    /// plugin snapshot), read from one snapshot of the database; `None`
    /// when nothing was. What the cluster shares after a checkpoint.
    ///
    /// # Errors
    /// [`StateError::Rocks`] when the database cannot be read;
    /// [`StateError::Corrupt`] for an offset that does not decode.
    pub fn export_stream(&self, stream: &StreamKey) -> Result<Option<StreamRecord>, StateError> {
        let key = stream.to_bytes();
        let snapshot = self.db.snapshot();
        let Some(set) = snapshot
            .get_cf(self.cf(INDICATORS)?, &key)
            .map_err(|e| self.rocks(e))?
        else {
            return Ok(None);
        };
        let offset = snapshot
            .get_pinned_cf(self.cf(OFFSETS)?, &key)
            .map_err(|e| self.rocks(e))?
            .map(|b| codec::decode_offset(stream, &b))
            .transpose()?;
        let mut from = key.clone();
        from.push(0);
        let mut plugins = BTreeMap::new();
        let iter = snapshot.iterator_cf(
            self.cf(PLUGINS)?,
            IteratorMode::From(&from, rocksdb::Direction::Forward),
        );
        for entry in iter {
            let (k, v) = entry.map_err(|e| self.rocks(e))?;
            let Some(name) = k.strip_prefix(from.as_slice()) else {
                break;
            };
            plugins.insert(String::from_utf8_lossy(name).into_owned(), v.into_vec());
        }
        Ok(Some(StreamRecord::from_parts(
            stream.clone(),
            set,
            offset,
            plugins,
        )))
    }

    /// Replaces, in one batch, everything stored for each record's stream
    /// with the record (a stream taken over from another engine of the
    /// cluster), and forgets each stream of `forget` (taken over with no
    /// shared state, so it starts afresh rather than from this engine's
    /// older copy). Each record is verified first; none is written if one
    /// fails.
    ///
    /// # Errors
    /// [`StateError::Corrupt`] for a record that does not verify;
    /// [`StateError::Rocks`] when the write fails (nothing was written).
    pub fn import_streams(
        &self,
        records: &[StreamRecord],
        forget: &[StreamKey],
    ) -> Result<(), StateError> {
        let (indicators, offsets, plugins) =
            (self.cf(INDICATORS)?, self.cf(OFFSETS)?, self.cf(PLUGINS)?);
        let mut batch = WriteBatch::default();
        let clear = |batch: &mut WriteBatch, key: &[u8]| {
            batch.delete_cf(indicators, key);
            batch.delete_cf(offsets, key);
            // Plugin keys are `key NUL name`: the range [key NUL, key \x01).
            let (mut from, mut to) = (key.to_vec(), key.to_vec());
            from.push(0);
            to.push(1);
            batch.delete_range_cf(plugins, from, to);
        };
        for stream in forget {
            clear(&mut batch, &stream.to_bytes());
        }
        for record in records {
            record.verify()?;
            let key = record.key().to_bytes();
            clear(&mut batch, &key);
            batch.put_cf(indicators, &key, record.set_bytes());
            if let Some(time) = record.offset() {
                batch.put_cf(offsets, &key, codec::encode_offset(time));
            }
            for (name, bytes) in record.plugins() {
                batch.put_cf(plugins, codec::plugin_key(name, record.key()), bytes);
            }
        }
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }

    fn check_schema(&self, families: &[String]) -> Result<(), StateError> {
        match self.read_version()? {
            Some(found) if found == SCHEMA_VERSION => Ok(()),
            Some(found) => Err(StateError::SchemaMismatch {
                found,
                expected: SCHEMA_VERSION,
                path: self.path.clone(),
            }),
            None if self.holds_data(families)? => Err(StateError::Unversioned {
                path: self.path.clone(),
            }),
            None => self.write_version(),
        }
    }

    fn read_version(&self) -> Result<Option<u32>, StateError> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(META)?, VERSION_KEY)
            .map_err(|e| self.rocks(e))?;
        let Some(bytes) = bytes else { return Ok(None) };
        codec::decode_version(&bytes)
            .map(Some)
            .map_err(|len| StateError::CorruptMeta {
                path: self.path.clone(),
                len,
            })
    }

    fn write_version(&self) -> Result<(), StateError> {
        let version = codec::encode_version(SCHEMA_VERSION);
        self.db
            .put_cf_opt(self.cf(META)?, VERSION_KEY, version, &self.write)
            .map_err(|e| self.rocks(e))
    }

    /// True when any column family, ours or not, holds a key.
    fn holds_data(&self, families: &[String]) -> Result<bool, StateError> {
        for name in families {
            let Some(cf) = self.db.cf_handle(name) else {
                continue;
            };
            if let Some(entry) = self.db.iterator_cf(cf, IteratorMode::Start).next() {
                entry.map_err(|e| self.rocks(e))?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StateError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StateError::MissingColumnFamily {
                path: self.path.clone(),
                name,
            })
    }

    fn rocks(&self, source: rocksdb::Error) -> StateError {
        StateError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    /// The one batch a checkpoint commits: per stream, its indicator state
    /// and its offset side by side, then the plugin snapshots.
    fn write_batch(&self, checkpoint: &Checkpoint<'_>) -> Result<WriteBatch, StateError> {
        let (indicators, offsets, plugins) =
            (self.cf(INDICATORS)?, self.cf(OFFSETS)?, self.cf(PLUGINS)?);
        let mut batch = WriteBatch::default();
        for state in checkpoint.streams() {
            let key = state.key().to_bytes();
            batch.put_cf(
                indicators,
                &key,
                codec::encode_set(state.key(), state.set())?,
            );
            match state.last_open_time() {
                Some(time) => batch.put_cf(offsets, &key, codec::encode_offset(time)),
                None => batch.delete_cf(offsets, &key),
            }
        }
        for snapshot in checkpoint.plugins() {
            batch.put_cf(
                plugins,
                codec::plugin_key(&snapshot.plugin, &snapshot.stream),
                &snapshot.bytes,
            );
        }
        let outbox = self.cf(OUTBOX)?;
        if let Some(before) = checkpoint.outbox_trim() {
            batch.delete_range_cf(
                outbox,
                codec::outbox_key(i64::MIN, ""),
                codec::outbox_key(before, ""),
            );
        }
        for record in checkpoint.outbox() {
            batch.put_cf(
                outbox,
                codec::outbox_key(record.time, &record.id),
                &record.body,
            );
        }
        Ok(batch)
    }
}

/// Memory all memtables together may hold before RocksDB flushes.
const MEMTABLE_BUDGET: usize = 16 << 20;

/// Opens the database with our column families and any others it has:
/// RocksDB refuses to open a database without naming all of them, and
/// [`Store::check_schema`] needs to see whether a foreign one holds data.
fn open_db(path: &Path) -> Result<(DB, Vec<String>), StateError> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Every commit rewrites the same few keys per stream, so memtables hold
    // mostly superseded versions: a small budget, shared by all column
    // families, bounds the engine's memory (RocksDB's default is 64 MiB
    // per family) at the cost of more frequent background flushes.
    options.set_db_write_buffer_size(MEMTABLE_BUDGET);
    options.set_write_buffer_size(MEMTABLE_BUDGET / 4);
    // An error here means there is no database yet (or a damaged one, which
    // the open below reports).
    let mut families = DB::list_cf(&options, path).unwrap_or_default();
    for name in std::iter::once(rocksdb::DEFAULT_COLUMN_FAMILY_NAME).chain(FAMILIES) {
        if !families.iter().any(|f| f == name) {
            families.push(name.to_owned());
        }
    }
    match DB::open_cf(&options, path, &families) {
        Ok(db) => Ok((db, families)),
        Err(source) => Err(StateError::Rocks {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl StateStore for Store {
    fn load(&self, stream: &StreamKey, spec: &str) -> Result<StreamState, StateError> {
        let key = stream.to_bytes();
        // One snapshot, so both records come from the same commit.
        let snapshot = self.db.snapshot();
        let set = snapshot
            .get_pinned_cf(self.cf(INDICATORS)?, &key)
            .map_err(|e| self.rocks(e))?;
        let offset = snapshot
            .get_pinned_cf(self.cf(OFFSETS)?, &key)
            .map_err(|e| self.rocks(e))?;
        let set = set.map(|b| codec::decode_set(stream, &b)).transpose()?;
        let offset = offset
            .map(|b| codec::decode_offset(stream, &b))
            .transpose()?;
        StreamState::restore(stream.clone(), spec, set, offset)
    }

    fn offset(&self, stream: &StreamKey) -> Result<Option<i64>, StateError> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(OFFSETS)?, stream.to_bytes())
            .map_err(|e| self.rocks(e))?;
        bytes.map(|b| codec::decode_offset(stream, &b)).transpose()
    }

    fn plugin_snapshot(
        &self,
        plugin: &str,
        stream: &StreamKey,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let key = codec::plugin_key(plugin, stream);
        // Each snapshot is read once at start, and a stream's warm-up tail
        // once per checkpoint that extends it: caching the blocks would
        // only grow the engine's memory by the block cache's size.
        let mut once = rocksdb::ReadOptions::default();
        once.fill_cache(false);
        self.db
            .get_cf_opt(self.cf(PLUGINS)?, key, &once)
            .map_err(|e| self.rocks(e))
    }

    fn outbox_since(&self, time: i64, limit: usize) -> Result<Vec<OutboxRecord>, StateError> {
        let from = codec::outbox_key(time, "");
        let iter = self.db.iterator_cf(
            self.cf(OUTBOX)?,
            IteratorMode::From(&from, rocksdb::Direction::Forward),
        );
        let mut out = Vec::new();
        for entry in iter.take(limit) {
            let (key, body) = entry.map_err(|e| self.rocks(e))?;
            let (time, id) =
                codec::decode_outbox_key(&key).ok_or_else(|| StateError::CorruptOutbox {
                    path: self.path.clone(),
                    len: key.len(),
                })?;
            out.push(OutboxRecord {
                time,
                id,
                body: body.into_vec(),
            });
        }
        Ok(out)
    }

    fn commit(&self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError> {
        if checkpoint.is_empty() {
            return Ok(());
        }
        let batch = self.write_batch(checkpoint)?;
        self.db
            .write_opt(batch, &self.write)
            .map_err(|e| self.rocks(e))
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use candlewick_market::Candle;
    use tempfile::TempDir;

    use super::*;

    const SPEC: &str = "sma(3) obv";

    fn key() -> StreamKey {
        "EURUSD/1h".parse().unwrap()
    }

    fn candle(t: i64) -> Candle {
        let x = 1.0 + t as f64 * 0.001;
        Candle {
            open_time: t,
            open: x,
            high: x + 0.01,
            low: x - 0.01,
            close: x,
            volume: 10.0,
        }
    }

    /// A state of `key()` after candles `0..n`.
    fn state_after(n: i64) -> StreamState {
        let mut state = StreamState::new(key(), SPEC).unwrap();
        let mut out = [0.0; 2];
        for t in 0..n {
            state.apply(&candle(t), &mut out).unwrap();
        }
        state
    }

    /// Writes one raw record, bypassing the store, as a damaged or foreign
    /// database would hold it. The store must be closed.
    fn put_raw(dir: &Path, cf: &str, key: &[u8], value: &[u8]) {
        let mut families = DB::list_cf(&Options::default(), dir).unwrap_or_default();
        if !families.iter().any(|f| f == cf) {
            families.push(cf.to_owned());
        }
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = DB::open_cf(&options, dir, &families).unwrap();
        db.put_cf(db.cf_handle(cf).unwrap(), key, value).unwrap();
    }

    fn committed(dir: &TempDir, state: &StreamState) {
        let store = Store::open(dir.path()).unwrap();
        store.commit(Checkpoint::new().stream(state)).unwrap();
    }

    #[test]
    fn a_new_directory_gets_the_families_and_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        drop(Store::open(&path).unwrap());
        let mut families = DB::list_cf(&Options::default(), &path).unwrap();
        families.sort();
        assert_eq!(
            families,
            [
                "default",
                "indicators",
                "meta",
                "offsets",
                "outbox",
                "plugins"
            ]
        );
        let store = Store::open(&path).unwrap();
        assert_eq!(store.read_version().unwrap(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn another_schema_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        committed(&dir, &state_after(5));
        put_raw(
            dir.path(),
            META,
            VERSION_KEY,
            &codec::encode_version(SCHEMA_VERSION + 1),
        );
        for _ in 0..2 {
            let err = Store::open(dir.path()).unwrap_err();
            assert!(
                matches!(err, StateError::SchemaMismatch { found, expected: SCHEMA_VERSION, ref path }
                    if found == SCHEMA_VERSION + 1 && path == dir.path()),
                "{err}"
            );
            assert!(err.to_string().contains("move it aside"), "{err}");
        }
    }

    #[test]
    fn data_without_a_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        put_raw(dir.path(), "default", b"foreign", b"data");
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Unversioned { .. }), "{err}");
        // Still refused: the failed open wrote no version.
        assert!(matches!(
            Store::open(dir.path()),
            Err(StateError::Unversioned { .. })
        ));
    }

    #[test]
    fn an_empty_database_without_a_version_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        put_raw(dir.path(), "default", b"k", b"v");
        let db = DB::open_default(dir.path()).unwrap();
        db.delete(b"k").unwrap();
        drop(db);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read_version().unwrap(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn an_unreadable_version_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        put_raw(dir.path(), META, VERSION_KEY, b"v1");
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StateError::CorruptMeta { len: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StateError::Rocks { .. }), "{err}");
    }

    #[test]
    fn corrupt_indicator_bytes_are_refused_on_load() {
        let dir = tempfile::tempdir().unwrap();
        committed(&dir, &state_after(5));
        put_raw(dir.path(), INDICATORS, b"EURUSD/1h", b"\x00\x01garbage");
        let store = Store::open(dir.path()).unwrap();
        let err = store.load(&key(), SPEC).unwrap_err();
        assert!(
            matches!(err, StateError::Corrupt { ref stream, cf: "indicators", .. } if *stream == key()),
            "{err}"
        );
    }

    #[test]
    fn corrupt_offset_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        committed(&dir, &state_after(5));
        put_raw(dir.path(), OFFSETS, b"EURUSD/1h", b"\x04");
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.offset(&key()),
            Err(StateError::Corrupt { cf: "offsets", .. })
        ));
        assert!(matches!(
            store.load(&key(), SPEC),
            Err(StateError::Corrupt { cf: "offsets", .. })
        ));
    }

    #[test]
    fn a_changed_spec_is_refused_not_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        committed(&dir, &state_after(5));
        let store = Store::open(dir.path()).unwrap();
        let err = store.load(&key(), "sma(4) obv").unwrap_err();
        assert!(matches!(err, StateError::SpecChanged { .. }), "{err}");
        // Spacing is not a change: specs compare canonically.
        assert_eq!(
            store.load(&key(), " sma(3)   obv ").unwrap(),
            state_after(5)
        );
    }

    #[test]
    fn a_commit_is_one_batch_holding_state_and_offset_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (
            state_after(4),
            StreamState::new("BTCUSDT/1m".parse().unwrap(), "obv").unwrap(),
        );
        let mut checkpoint = Checkpoint::new();
        checkpoint
            .stream(&a)
            .stream(&b)
            .plugin("p", a.key(), vec![1]);
        // a: state + offset; b (nothing applied): state + offset delete; plugin.
        assert_eq!(store.write_batch(&checkpoint).unwrap().len(), 5);
        assert_eq!(store.offset(a.key()).unwrap(), None);
        store.commit(&checkpoint).unwrap();
        assert_eq!(store.offset(a.key()).unwrap(), Some(3));
        assert_eq!(store.load(a.key(), SPEC).unwrap(), a);
        assert_eq!(store.offset(b.key()).unwrap(), None);
        assert_eq!(store.load(b.key(), "obv").unwrap(), b);
        assert_eq!(store.plugin_snapshot("p", a.key()).unwrap(), Some(vec![1]));
    }

    #[test]
    fn forget_removes_one_stream_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = state_after(4);
        let other: StreamKey = "EURUSD/1d".parse().unwrap();
        let mut checkpoint = Checkpoint::new();
        checkpoint
            .stream(&a)
            .plugin("p", a.key(), vec![1])
            .plugin("p", &other, vec![2]);
        store.commit(&checkpoint).unwrap();
        store.forget(&key()).unwrap();
        assert_eq!(store.load(&key(), "sma(9)").unwrap().set().applied(), 0);
        assert_eq!(store.offset(&key()).unwrap(), None);
        assert_eq!(store.plugin_snapshot("p", &key()).unwrap(), None);
        assert_eq!(store.plugin_snapshot("p", &other).unwrap(), Some(vec![2]));
    }

    #[test]
    fn a_stream_exported_from_one_store_continues_bit_exact_in_another() {
        let (from_dir, to_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = Store::open(from_dir.path()).unwrap();
        let a = state_after(5);
        let other: StreamKey = "EURUSD/1d".parse().unwrap();
        let mut checkpoint = Checkpoint::new();
        checkpoint
            .stream(&a)
            .plugin("p", a.key(), vec![1])
            .plugin("@tail", a.key(), vec![3, 4])
            .plugin("p", &other, vec![2]);
        from.commit(&checkpoint).unwrap();
        assert_eq!(from.export_stream(&other).unwrap(), None);
        let record = from.export_stream(&key()).unwrap().unwrap();
        assert_eq!(record.offset(), a.last_open_time());
        // The receiving store had an older copy of its own: replaced whole.
        committed(&to_dir, &state_after(2));
        let to = Store::open(to_dir.path()).unwrap();
        let mut stale = Checkpoint::new();
        stale.plugin("gone", &key(), vec![9]);
        to.commit(&stale).unwrap();
        to.import_streams(std::slice::from_ref(&record), &[])
            .unwrap();
        let mut moved = to.load(&key(), SPEC).unwrap();
        let mut here = a.clone();
        assert_eq!(moved, here);
        assert_eq!(to.plugin_snapshot("p", &key()).unwrap(), Some(vec![1]));
        assert_eq!(
            to.plugin_snapshot("@tail", &key()).unwrap(),
            Some(vec![3, 4])
        );
        assert_eq!(to.plugin_snapshot("gone", &key()).unwrap(), None);
        let (mut x, mut y) = ([0.0; 2], [0.0; 2]);
        moved.apply(&candle(5), &mut x).unwrap();
        here.apply(&candle(5), &mut y).unwrap();
        assert_eq!(x.map(f64::to_bits), y.map(f64::to_bits));
        // Forgetting on import: a stream taken over with no shared state.
        to.import_streams(&[], &[key()]).unwrap();
        assert_eq!(to.offset(&key()).unwrap(), None);
    }
}
