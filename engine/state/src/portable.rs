//! [`StreamRecord`]: a stream's committed state as plain bytes that another
//! process can take over.
//!
//! The cluster (ARCHITECTURE.md §7) moves a partition's streams between
//! engines: the engine that owns a partition writes the records of its
//! streams to a shared bucket after each checkpoint, and the engine that
//! takes the partition over imports them into its own store
//! ([`crate::Store::import_streams`]) before it applies a candle. The
//! indicators therefore continue exactly where the last owner's
//! checkpoint left them: no warm-up from scratch, nothing applied twice.
//!
//! A record holds the same bytes the RocksDB store keeps (the
//! checksummed indicator record, the offset, every plugin snapshot of the
//! stream: strategies, warm-up tail, model windows), so an import is
//! checked by the same decoder as a load.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::{Checkpoint, StateError, StreamKey, StreamState};

/// Version of [`encode_records`]' layout; a blob of another version is
/// refused, never guessed at.
const LAYOUT: u32 = 1;

/// One stream's committed state: indicators, offset and plugin snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    key: StreamKey,
    /// The checksummed indicator record (the store's `indicators` value).
    set: Vec<u8>,
    offset: Option<i64>,
    /// Snapshot by plugin name.
    plugins: BTreeMap<String, Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Blob {
    layout: u32,
    streams: Vec<StreamRecord>,
}

impl StreamRecord {
    /// The record of `state`, with no plugin snapshot yet.
    ///
    /// # Errors
    /// [`StateError::Encode`] when the indicators cannot be serialised.
    pub fn of(state: &StreamState) -> Result<Self, StateError> {
        Ok(StreamRecord {
            key: state.key().clone(),
            set: codec::encode_set(state.key(), state.set())?,
            offset: state.last_open_time(),
            plugins: BTreeMap::new(),
        })
    }

    pub(crate) fn from_parts(
        key: StreamKey,
        set: Vec<u8>,
        offset: Option<i64>,
        plugins: BTreeMap<String, Vec<u8>>,
    ) -> Self {
        StreamRecord {
            key,
            set,
            offset,
            plugins,
        }
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// Open time of the last candle the record's indicators consumed.
    pub fn offset(&self) -> Option<i64> {
        self.offset
    }

    pub(crate) fn set_bytes(&self) -> &[u8] {
        &self.set
    }

    pub(crate) fn plugins(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.plugins
    }

    /// Folds in what `checkpoint` committed for this stream: its new
    /// indicator state and offset, and the snapshots it took (a plugin
    /// whose snapshot was not due keeps its last one, as in the store).
    ///
    /// # Errors
    /// [`StateError::Encode`] when the indicators cannot be serialised.
    pub fn update(&mut self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError> {
        if let Some(state) = checkpoint.streams().filter(|s| s.key() == &self.key).last() {
            self.set = codec::encode_set(state.key(), state.set())?;
            self.offset = state.last_open_time();
        }
        for p in checkpoint.plugins().iter().filter(|p| p.stream == self.key) {
            self.plugins.insert(p.plugin.clone(), p.bytes.clone());
        }
        Ok(())
    }

    /// Checks the record the way a load would: the indicator record's
    /// checksum and encoding, and that it agrees with the offset.
    ///
    /// # Errors
    /// [`StateError::Corrupt`] naming the stream.
    pub fn verify(&self) -> Result<(), StateError> {
        let set = codec::decode_set(&self.key, &self.set)?;
        if (set.applied() == 0) != self.offset.is_none() {
            return Err(StateError::Corrupt {
                stream: self.key.clone(),
                cf: "indicators",
                detail: "the shared record's offset disagrees with its indicators".to_owned(),
            });
        }
        Ok(())
    }
}

/// The bytes of several records (a partition's streams), versioned.
///
/// # Errors
/// [`StateError::Records`] when serialisation fails.
pub fn encode_records(streams: Vec<StreamRecord>) -> Result<Vec<u8>, StateError> {
    postcard::to_stdvec(&Blob {
        layout: LAYOUT,
        streams,
    })
    .map_err(|e| StateError::Records {
        detail: format!("cannot encode: {e}"),
    })
}

/// The inverse of [`encode_records`], every record verified.
///
/// # Errors
/// [`StateError::Records`] for bytes of another layout or that do not
/// decode; [`StateError::Corrupt`] for a record that fails
/// [`StreamRecord::verify`].
pub fn decode_records(bytes: &[u8]) -> Result<Vec<StreamRecord>, StateError> {
    let bad = |detail: String| StateError::Records { detail };
    let blob: Blob = match postcard::take_from_bytes(bytes) {
        Ok((blob, [])) => blob,
        Ok((_, rest)) => return Err(bad(format!("{} trailing bytes", rest.len()))),
        Err(e) => return Err(bad(format!("cannot decode {} bytes: {e}", bytes.len()))),
    };
    if blob.layout != LAYOUT {
        return Err(bad(format!(
            "layout {} (this build reads {LAYOUT})",
            blob.layout
        )));
    }
    for record in &blob.streams {
        record.verify()?;
    }
    Ok(blob.streams)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_market::Candle;

    fn state_after(n: i64) -> StreamState {
        let mut s = StreamState::new("BTCUSDT/1m".parse().unwrap(), "sma(3) obv").unwrap();
        let mut out = [0.0; 2];
        for t in 0..n {
            let c = Candle {
                open_time: t * 60_000,
                open: 1.0,
                high: 2.0 + t as f64,
                low: 0.5,
                close: 1.5 + t as f64,
                volume: 10.0,
            };
            s.apply(&c, &mut out).unwrap();
        }
        s
    }

    #[test]
    fn records_round_trip_and_fold_in_checkpoints() {
        let mut r = StreamRecord::of(&state_after(2)).unwrap();
        let later = state_after(5);
        let mut cp = Checkpoint::new();
        cp.stream(&later)
            .plugin("sma_cross", later.key(), b"s1".to_vec());
        r.update(&cp).unwrap();
        assert_eq!(r.offset(), Some(4 * 60_000));
        assert_eq!(r.plugins()["sma_cross"], b"s1");
        // A checkpoint without the plugin keeps its last snapshot.
        let mut cp = Checkpoint::new();
        cp.stream(&later);
        r.update(&cp).unwrap();
        assert_eq!(r.plugins()["sma_cross"], b"s1");
        let back = decode_records(&encode_records(vec![r.clone()]).unwrap()).unwrap();
        assert_eq!(back, vec![r]);
    }

    #[test]
    fn damaged_or_foreign_blobs_are_refused() {
        let r = StreamRecord::of(&state_after(3)).unwrap();
        let bytes = encode_records(vec![r.clone()]).unwrap();
        assert!(decode_records(&bytes[..bytes.len() - 1]).is_err());
        let mut flipped = r.clone();
        flipped.set[10] ^= 0xff;
        let e = decode_records(&encode_records(vec![flipped]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        let mut wrong = r;
        wrong.offset = None;
        let e = decode_records(&encode_records(vec![wrong]).unwrap()).unwrap_err();
        assert!(e.to_string().contains("disagrees"), "{e}");
        assert!(decode_records(b"\x07").is_err());
    }
}
