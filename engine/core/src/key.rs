//! The name of a candle stream: symbol and interval.

use std::fmt;
use std::str::FromStr;

use candlewick_market::{Interval, Symbol};
use serde::{Deserialize, Serialize};

/// One candle stream: a symbol at an interval, e.g. `BTCUSDT/1m`.
///
/// Its byte encoding, used as the RocksDB key in every column family, is
/// the text `SYMBOL/INTERVAL` in ASCII ([`StreamKey::to_bytes`]). It is
/// stable: it never contains `/` twice (symbols cannot hold `/`) nor a NUL
/// byte, and intervals keep Binance's names, so `1m` (minute) and `1M`
/// (month) stay distinct.
///
/// ```
/// use candlewick_core::StreamKey;
///
/// let key: StreamKey = "btcusdt/1m".parse().unwrap();
/// assert_eq!(key.to_string(), "BTCUSDT/1m");
/// assert_eq!(key.to_bytes(), b"BTCUSDT/1m");
/// assert_eq!(StreamKey::from_bytes(b"BTCUSDT/1m").unwrap(), key);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    pub symbol: Symbol,
    pub interval: Interval,
}

/// Bytes or text that do not name a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream key {0:?}: expected SYMBOL/INTERVAL such as \"BTCUSDT/1m\"")]
pub struct StreamKeyError(pub String);

impl StreamKey {
    pub fn new(symbol: Symbol, interval: Interval) -> Self {
        StreamKey { symbol, interval }
    }

    /// The stable key bytes, `SYMBOL/INTERVAL`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// Decodes key bytes strictly: only the exact output of
    /// [`StreamKey::to_bytes`] is accepted (no lower case, no spaces).
    ///
    /// # Errors
    /// [`StreamKeyError`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StreamKeyError> {
        let lossy = || StreamKeyError(String::from_utf8_lossy(bytes).chars().take(64).collect());
        let text = std::str::from_utf8(bytes).map_err(|_| lossy())?;
        let key: StreamKey = text.parse().map_err(|_| lossy())?;
        if key.to_bytes() != bytes {
            return Err(lossy());
        }
        Ok(key)
    }
}

impl FromStr for StreamKey {
    type Err = StreamKeyError;

    /// Parses `SYMBOL/INTERVAL`; the symbol is upper-cased as
    /// [`Symbol::new`] does, the interval is case-sensitive.
    fn from_str(s: &str) -> Result<Self, StreamKeyError> {
        let bad = || StreamKeyError(s.chars().take(64).collect());
        let (symbol, interval) = s.split_once('/').ok_or_else(bad)?;
        let symbol = Symbol::new(symbol).map_err(|_| bad())?;
        let interval = interval.parse().map_err(|_| bad())?;
        Ok(StreamKey { symbol, interval })
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.symbol, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVALS: [&str; 16] = [
        "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
        "1w", "1M",
    ];

    #[test]
    fn every_interval_round_trips_through_bytes() {
        for name in INTERVALS {
            let key = StreamKey::new(Symbol::new("EURUSD").unwrap(), name.parse().unwrap());
            let bytes = key.to_bytes();
            assert_eq!(bytes, format!("EURUSD/{name}").into_bytes());
            assert_eq!(StreamKey::from_bytes(&bytes).unwrap(), key);
        }
    }

    #[test]
    fn minute_and_month_stay_distinct() {
        let minute: StreamKey = "X/1m".parse().unwrap();
        let month: StreamKey = "X/1M".parse().unwrap();
        assert_ne!(minute.to_bytes(), month.to_bytes());
    }

    #[test]
    fn refuses_anything_but_the_canonical_bytes() {
        for bad in [
            &b"btcusdt/1m"[..],
            b"BTCUSDT",
            b"BTCUSDT/",
            b"/1m",
            b"BTCUSDT/1m/1m",
            b"BTCUSDT/2m",
            b"BTC USDT/1m",
            b"BTCUSDT/1m\0",
            b"\xff\xfe",
        ] {
            assert!(StreamKey::from_bytes(bad).is_err(), "{bad:?}");
        }
    }
}
