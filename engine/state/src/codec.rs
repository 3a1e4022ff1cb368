//! The bytes of every record the RocksDB store writes.
//!
//! | column family | key                        | value                                   |
//! |---------------|----------------------------|-----------------------------------------|
//! | `indicators`  | `SYMBOL/INTERVAL`          | FNV-1a 64 of the payload (8 bytes LE), then the `IndicatorSet` in postcard |
//! | `offsets`     | `SYMBOL/INTERVAL`          | last applied open time, `i64` LE (8 bytes) |
//! | `plugins`     | `SYMBOL/INTERVAL` NUL name | the plugin's snapshot, opaque           |
//! | `meta`        | `schema_version`           | `u32` LE (4 bytes)                      |
//!
//! RocksDB checksums its blocks, which catches damage on disk; the
//! checksum here also catches a value that was written whole but wrong
//! (another program, a truncated copy), so that a bad record is a
//! [`StateError::Corrupt`] rather than indicators that quietly continue
//! from garbage. Decoding never panics, whatever the bytes.

use candlewick_indicators::IndicatorSet;

use crate::{StateError, StreamKey};

/// Key of the schema version in the `meta` column family.
pub(crate) const VERSION_KEY: &[u8] = b"schema_version";

const CHECKSUM_LEN: usize = 8;

pub(crate) fn encode_set(stream: &StreamKey, set: &IndicatorSet) -> Result<Vec<u8>, StateError> {
    let mut bytes = vec![0; CHECKSUM_LEN];
    bytes = postcard::to_extend(set, bytes).map_err(|source| StateError::Encode {
        stream: stream.clone(),
        source,
    })?;
    let sum = fnv1a(&bytes[CHECKSUM_LEN..]);
    bytes[..CHECKSUM_LEN].copy_from_slice(&sum.to_le_bytes());
    Ok(bytes)
}

pub(crate) fn decode_set(stream: &StreamKey, bytes: &[u8]) -> Result<IndicatorSet, StateError> {
    let corrupt = |detail: String| StateError::Corrupt {
        stream: stream.clone(),
        cf: "indicators",
        detail,
    };
    let (sum, payload) = split_array::<CHECKSUM_LEN>(bytes)
        .ok_or_else(|| corrupt(format!("{} bytes, shorter than its checksum", bytes.len())))?;
    if u64::from_le_bytes(sum) != fnv1a(payload) {
        return Err(corrupt("checksum mismatch".to_owned()));
    }
    match postcard::take_from_bytes::<IndicatorSet>(payload) {
        Ok((set, [])) => {
            set.check_restored().map_err(corrupt)?;
            Ok(set)
        }
        Ok((_, rest)) => Err(corrupt(format!("{} trailing bytes", rest.len()))),
        Err(e) => Err(corrupt(format!("cannot decode: {e}"))),
    }
}

/// For the fuzz targets (`fuzz/`): decodes `bytes` as a stored indicator
/// record and, when it is accepted, applies candles to it (which must
/// never panic once decoding said yes).
#[doc(hidden)]
pub fn fuzz_indicator_record(bytes: &[u8]) -> bool {
    let stream: StreamKey = match "BTCUSDT/1m".parse() {
        Ok(k) => k,
        Err(_) => return false,
    };
    let Ok(mut set) = decode_set(&stream, bytes) else {
        return false;
    };
    let mut out = vec![0.0; set.width()];
    for t in 0..4 {
        let x = 100.0 + f64::from(t);
        let c = candlewick_market::Candle {
            open_time: i64::from(t) * 60_000,
            open: x,
            high: x + 2.0,
            low: x - 1.0,
            close: x + 1.0,
            volume: 3.0,
        };
        set.update(&c, &mut out);
    }
    true
}

/// For the fuzz targets: a valid record of `spec` (warmed by a few
/// candles), to mutate.
#[doc(hidden)]
pub fn fuzz_seed_record(spec: &str) -> Option<Vec<u8>> {
    let stream: StreamKey = "BTCUSDT/1m".parse().ok()?;
    let mut set = IndicatorSet::parse(spec).ok()?;
    let mut out = vec![0.0; set.width()];
    for t in 0..40 {
        let x = 100.0 + (f64::from(t) * 0.3).sin();
        let c = candlewick_market::Candle {
            open_time: i64::from(t) * 60_000,
            open: x,
            high: x + 1.0,
            low: x - 1.0,
            close: x + 0.5,
            volume: 3.0,
        };
        set.update(&c, &mut out);
    }
    encode_set(&stream, &set).ok()
}

pub(crate) fn encode_offset(open_time: i64) -> [u8; 8] {
    open_time.to_le_bytes()
}

pub(crate) fn decode_offset(stream: &StreamKey, bytes: &[u8]) -> Result<i64, StateError> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(b) => Ok(i64::from_le_bytes(b)),
        Err(_) => Err(StateError::Corrupt {
            stream: stream.clone(),
            cf: "offsets",
            detail: format!("{} bytes, expected 8", bytes.len()),
        }),
    }
}

pub(crate) fn encode_version(version: u32) -> [u8; 4] {
    version.to_le_bytes()
}

/// The version, or the length of an unreadable record.
pub(crate) fn decode_version(bytes: &[u8]) -> Result<u32, usize> {
    <[u8; 4]>::try_from(bytes)
        .map(u32::from_le_bytes)
        .map_err(|_| bytes.len())
}

/// `SYMBOL/INTERVAL` NUL `plugin`: unambiguous because a stream key never
/// holds a NUL byte, and grouped by stream.
pub(crate) fn plugin_key(plugin: &str, stream: &StreamKey) -> Vec<u8> {
    let mut key = stream.to_bytes();
    key.push(0);
    key.extend_from_slice(plugin.as_bytes());
    key
}

fn split_array<const N: usize>(bytes: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, tail) = bytes.split_at_checked(N)?;
    Some((head.try_into().ok()?, tail))
}

/// 64-bit FNV-1a: small, dependency-free, and enough to catch a damaged
/// or foreign value (it is not a defence against a forger).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Outbox key: the candle time, big-endian with its sign bit flipped so
/// that byte order is time order (negative times included), then the id.
pub(crate) fn outbox_key(time: i64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&((time as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The inverse of [`outbox_key`]; `None` for a key it did not write.
pub(crate) fn decode_outbox_key(key: &[u8]) -> Option<(i64, String)> {
    let (time, id) = key.split_at_checked(8)?;
    let time = u64::from_be_bytes(time.try_into().ok()?) ^ (1 << 63);
    Some((time as i64, std::str::from_utf8(id).ok()?.to_owned()))
}

#[cfg(test)]
mod tests {
    use candlewick_market::Candle;

    use super::*;

    fn key() -> StreamKey {
        "EURUSD/1h".parse().unwrap()
    }

    fn warmed_set() -> IndicatorSet {
        let mut set = IndicatorSet::parse("sma(3) rsi(2) macd(2,3,2) stoch(3,2,2) cci(3)").unwrap();
        let mut out = vec![0.0; set.width()];
        for t in 0..10 {
            let x = 1.0 + (t as f64 * 0.7).sin() * 0.1;
            let c = Candle {
                open_time: t,
                open: x,
                high: x + 0.01,
                low: x - 0.02,
                close: x,
                volume: 3.0,
            };
            set.update(&c, &mut out);
        }
        set
    }

    #[test]
    fn a_set_round_trips_exactly() {
        let set = warmed_set();
        let bytes = encode_set(&key(), &set).unwrap();
        assert_eq!(decode_set(&key(), &bytes).unwrap(), set);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_refused_without_panic() {
        let bytes = encode_set(&key(), &warmed_set()).unwrap();
        for len in 0..bytes.len() {
            assert!(matches!(
                decode_set(&key(), &bytes[..len]),
                Err(StateError::Corrupt { .. })
            ));
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[i] ^= 1 << bit;
                let err = decode_set(&key(), &flipped).unwrap_err();
                assert!(
                    matches!(
                        err,
                        StateError::Corrupt {
                            cf: "indicators",
                            ..
                        }
                    ),
                    "byte {i} bit {bit}"
                );
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_set(&key(), &longer).is_err());
    }

    /// Sets the first field `name` found in `v` to `to`.
    fn poke(v: &mut serde_json::Value, name: &str, to: serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(slot) = m.get_mut(name) {
                    *slot = to;
                    return true;
                }
                m.values_mut().any(|x| poke(x, name, to.clone()))
            }
            serde_json::Value::Array(a) => a.iter_mut().any(|x| poke(x, name, to.clone())),
            _ => false,
        }
    }

    #[test]
    fn well_formed_records_with_impossible_contents_are_corrupt_not_a_panic() {
        let set = warmed_set();
        let cases: [(&str, serde_json::Value); 5] = [
            // A ring's write position far past its buffer.
            ("next", 1_000_000.into()),
            // A window range's ring of another length than the spec's.
            ("highs", serde_json::json!([1.0, 2.0])),
            // An indicator writing outside the output slots it owns.
            ("start", 99_999.into()),
            // A window of another length than the spec's.
            ("slots", serde_json::json!([1.0, 2.0])),
            // Columns that do not match the spec.
            ("columns", serde_json::json!(["sma_3"])),
        ];
        for (field, value) in cases {
            let mut json = serde_json::to_value(&set).unwrap();
            assert!(poke(&mut json, field, value), "{field} not found");
            let bad: IndicatorSet = serde_json::from_value(json).unwrap();
            let bytes = encode_set(&key(), &bad).unwrap();
            match decode_set(&key(), &bytes) {
                Err(StateError::Corrupt {
                    cf: "indicators", ..
                }) => {}
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn offsets_and_versions_have_fixed_widths() {
        assert_eq!(decode_offset(&key(), &encode_offset(-5)).unwrap(), -5);
        assert!(matches!(
            decode_offset(&key(), &[1, 2, 3]),
            Err(StateError::Corrupt { cf: "offsets", .. })
        ));
        assert_eq!(decode_version(&encode_version(7)), Ok(7));
        assert_eq!(decode_version(b"abc"), Err(3));
    }

    #[test]
    fn plugin_keys_follow_their_stream() {
        assert_eq!(plugin_key("sma_cross", &key()), b"EURUSD/1h\0sma_cross");
    }
}
