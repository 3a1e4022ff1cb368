//! The streams an engine serves, numbered once at start.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use crate::StreamKey;

/// Index of a stream in its [`StreamTable`]. Sources resolve a frame's
/// symbol and interval to this number once; everything after carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// The engine's streams and the shard that owns each.
///
/// A stream's shard is a function of its *symbol* only, so all intervals of
/// one symbol meet on one worker (and one queue keeps their order).
///
/// ```
/// use candlewick_core::StreamTable;
///
/// let table = StreamTable::new(vec!["BTCUSDT/1m".parse().unwrap(), "ETHUSDT/1m".parse().unwrap()], 4);
/// let id = table.find("btcusdt@kline_1m").unwrap();
/// assert_eq!(table.key(id).to_string(), "BTCUSDT/1m");
/// assert!(table.shard(id) < 4);
/// assert_eq!(table.find("xrpusdt@kline_1m"), None);
/// ```
#[derive(Debug, Clone)]
pub struct StreamTable {
    keys: Vec<StreamKey>,
    shards: Vec<u16>,
    /// `btcusdt@kline_1m` -> id: Binance's stream names, looked up by `&str`.
    by_name: HashMap<String, StreamId>,
    n_shards: usize,
}

impl StreamTable {
    /// Numbers `keys` in order (duplicates are kept once) over `n_shards`
    /// shards (at least one).
    pub fn new(keys: Vec<StreamKey>, n_shards: usize) -> Self {
        let n_shards = n_shards.clamp(1, u16::MAX as usize);
        let mut table = StreamTable {
            keys: Vec::with_capacity(keys.len()),
            shards: Vec::with_capacity(keys.len()),
            by_name: HashMap::with_capacity(keys.len()),
            n_shards,
        };
        for key in keys {
            let name = stream_name(&key);
            if table.by_name.contains_key(&name) {
                continue;
            }
            let id = StreamId(table.keys.len() as u32);
            table.shards.push(shard_of(key.symbol.as_str(), n_shards));
            table.by_name.insert(name, id);
            table.keys.push(key);
        }
        table
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn n_shards(&self) -> usize {
        self.n_shards
    }

    /// # Panics
    /// When `id` is not of this table (ids come from it).
    pub fn key(&self, id: StreamId) -> &StreamKey {
        &self.keys[id.0 as usize]
    }

    /// # Panics
    /// When `id` is not of this table.
    #[inline]
    pub fn shard(&self, id: StreamId) -> usize {
        self.shards[id.0 as usize] as usize
    }

    pub fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        (0..self.keys.len() as u32).map(StreamId)
    }

    /// The stream of a Binance stream name (`btcusdt@kline_1m`), without
    /// allocating.
    pub fn find(&self, name: &str) -> Option<StreamId> {
        self.by_name.get(name).copied()
    }

    /// Binance's name of a stream, `btcusdt@kline_1m`.
    pub fn name(&self, id: StreamId) -> String {
        stream_name(self.key(id))
    }
}

/// Binance's stream name of `key`: lower-case symbol, `@kline_`, interval.
pub(crate) fn stream_name(key: &StreamKey) -> String {
    format!(
        "{}@kline_{}",
        key.symbol.as_str().to_ascii_lowercase(),
        key.interval.as_str()
    )
}

fn shard_of(symbol: &str, n: usize) -> u16 {
    // DefaultHasher with fixed keys: stable within a build, which is all
    // sharding needs (shards are not persisted).
    let mut h = std::collections::hash_map::DefaultHasher::new();
    symbol.hash(&mut h);
    (h.finish() % n as u64) as u16
}
