//! Subject names and the partition hash.
//!
//! ```text
//! candles.<partition>.<SYMBOL>.<interval>   one closed candle (CANDLES stream)
//! signals.<strategy>.<SYMBOL>.<interval>    one signal (SIGNALS stream)
//! ```
//!
//! A symbol's partition is `fnv1a_64(SYMBOL) % partitions`: FNV-1a over
//! the upper-case symbol's bytes, 64-bit offset basis and prime. It is a
//! function of the symbol only, so all intervals of a symbol meet in one
//! partition (one engine, one shard worker, in order), and it is stable
//! across builds, machines and languages (unlike Rust's `DefaultHasher`),
//! because ingest and engines must agree on it.
//!
//! A symbol may hold `.` (a subject's token separator); in a subject it is
//! written `~`, which no symbol holds.

use candlewick_state::StreamKey;

/// FNV-1a, 64-bit.
///
/// ```
/// use candlewick_cluster::subjects::fnv1a_64;
/// assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
/// ```
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The partition of `symbol` among `partitions` (at least 1).
///
/// ```
/// use candlewick_cluster::subjects::partition_of;
/// let p = partition_of("BTCUSDT", 16);
/// assert!(p < 16);
/// assert_eq!(p, partition_of("BTCUSDT", 16), "stable");
/// ```
pub fn partition_of(symbol: &str, partitions: u32) -> u32 {
    (fnv1a_64(symbol.as_bytes()) % u64::from(partitions.max(1))) as u32
}

/// A symbol as one subject token (`.` written `~`).
fn token(symbol: &str) -> String {
    symbol.replace('.', "~")
}

/// `candles.<partition>.<SYMBOL>.<interval>`.
///
/// ```
/// use candlewick_cluster::subjects::candle_subject;
/// let key = "BRK.B/1h".parse().unwrap();
/// assert_eq!(candle_subject(3, &key), "candles.3.BRK~B.1h");
/// ```
pub fn candle_subject(partition: u32, stream: &StreamKey) -> String {
    format!(
        "candles.{partition}.{}.{}",
        token(stream.symbol.as_str()),
        stream.interval.as_str()
    )
}

/// What a partition's consumer reads: `candles.<partition>.>`.
pub fn partition_filter(partition: u32) -> String {
    format!("candles.{partition}.>")
}

/// Everything the CANDLES stream holds.
pub const CANDLES_SUBJECTS: &str = "candles.>";

/// Everything the SIGNALS stream holds.
pub const SIGNALS_SUBJECTS: &str = "signals.>";

/// `signals.<strategy>.<SYMBOL>.<interval>` (strategy names are
/// `[a-z0-9_-]`). The interval token makes each subject one stream's
/// signals in candle-time order, which the restart's republish relies on
/// ([`crate::publish::republish_outbox`]); `signals.<strategy>.<SYMBOL>.*`
/// reads all intervals of a symbol.
pub fn signal_subject(strategy: &str, symbol: &str, interval: &str) -> String {
    format!("signals.{strategy}.{}.{interval}", token(symbol))
}

/// The `Nats-Msg-Id` of a candle, `SYMBOL:interval:open_time`: the same
/// candle published twice (two ingest processes, or one after a
/// reconnect) is stored once within the stream's duplicate window.
pub fn candle_msg_id(stream: &StreamKey, open_time: i64) -> String {
    format!(
        "{}:{}:{open_time}",
        stream.symbol.as_str(),
        stream.interval.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_and_spreads_symbols() {
        // Reference values of FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/).
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
        let mut per = [0usize; 8];
        for i in 0..800 {
            per[partition_of(&format!("S{i:04}USDT"), 8) as usize] += 1;
        }
        assert!(per.iter().all(|&n| n > 50), "{per:?}");
        assert_eq!(partition_of("X", 0), 0, "0 partitions count as 1");
    }

    #[test]
    fn subjects_and_ids() {
        let key: StreamKey = "BTCUSDT/1m".parse().unwrap();
        assert_eq!(candle_subject(0, &key), "candles.0.BTCUSDT.1m");
        assert_eq!(partition_filter(5), "candles.5.>");
        assert_eq!(
            signal_subject("sma_cross", "BRK.B", "1h"),
            "signals.sma_cross.BRK~B.1h"
        );
        assert_eq!(candle_msg_id(&key, 60_000), "BTCUSDT:1m:60000");
    }
}
