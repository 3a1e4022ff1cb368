//! What a CANDLES message carries, and how it is read back.
//!
//! JSON, so that `nats sub 'candles.>'` is readable:
//! `{"symbol":"BTCUSDT","interval":"1m","open_time":1700000000000,
//! "open":"1.5","high":"2","low":"1","close":"1.75","volume":"100"}`.
//! Prices are strings written with Rust's shortest round-trip formatting
//! and read with `str::parse`, so every `f64` comes back bit for bit (the
//! engine's signals must not depend on which process applied a candle).

use candlewick_market::{Candle, Interval, Symbol};
use candlewick_state::StreamKey;
use serde::{Deserialize, Serialize};

/// Why a message is not a candle (it is dropped from the stream's
/// consumer, counted and logged once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a candle message: {0}")]
pub struct PayloadError(pub String);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    symbol: &'a str,
    interval: &'a str,
    open_time: i64,
    open: String,
    high: String,
    low: String,
    close: String,
    volume: String,
}

/// The message body of one closed candle of `stream`.
pub fn encode_candle(stream: &StreamKey, candle: &Candle) -> Vec<u8> {
    let wire = Wire {
        symbol: stream.symbol.as_str(),
        interval: stream.interval.as_str(),
        open_time: candle.open_time,
        open: candle.open.to_string(),
        high: candle.high.to_string(),
        low: candle.low.to_string(),
        close: candle.close.to_string(),
        volume: candle.volume.to_string(),
    };
    // A struct of strings and an integer always serialises.
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Reads a message body back, checking the symbol, the interval and the
/// candle's invariants ([`Candle::check`]): a message from the bus is
/// input like any other.
///
/// # Errors
/// [`PayloadError`] naming what is wrong (never the whole body).
pub fn decode_candle(body: &[u8]) -> Result<(StreamKey, Candle), PayloadError> {
    let wire: Wire = serde_json::from_slice(body).map_err(|e| PayloadError(e.to_string()))?;
    let symbol = Symbol::new(wire.symbol).map_err(|e| PayloadError(e.to_string()))?;
    let interval = wire
        .interval
        .parse::<Interval>()
        .map_err(|e| PayloadError(e.to_string()))?;
    let num = |field: &str, s: &str| {
        s.parse::<f64>()
            .map_err(|_| PayloadError(format!("{field} is not a number")))
    };
    let candle = Candle {
        open_time: wire.open_time,
        open: num("open", &wire.open)?,
        high: num("high", &wire.high)?,
        low: num("low", &wire.low)?,
        close: num("close", &wire.close)?,
        volume: num("volume", &wire.volume)?,
    };
    candle.check().map_err(|e| PayloadError(e.to_string()))?;
    Ok((StreamKey::new(symbol, interval), candle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candles_round_trip_bit_exact() {
        let key: StreamKey = "BTCUSDT/1m".parse().unwrap();
        let c = Candle {
            open_time: 1_700_000_000_000,
            open: 0.1 + 0.2,
            high: 1.0 / 3.0 + 10.0,
            low: 1e-300,
            close: 7.000000000000001,
            volume: 0.0,
        };
        let (k, back) = decode_candle(&encode_candle(&key, &c)).unwrap();
        assert_eq!(k, key);
        assert_eq!(back.open.to_bits(), c.open.to_bits());
        assert_eq!(back.high.to_bits(), c.high.to_bits());
        assert_eq!(back, c);
    }

    #[test]
    fn bad_bodies_are_refused_without_panicking() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"symbol":"BTC USDT","interval":"1m","open_time":0,"open":"1","high":"1","low":"1","close":"1","volume":"1"}"#,
            br#"{"symbol":"BTCUSDT","interval":"7m","open_time":0,"open":"1","high":"1","low":"1","close":"1","volume":"1"}"#,
            br#"{"symbol":"BTCUSDT","interval":"1m","open_time":0,"open":"NaN","high":"1","low":"1","close":"1","volume":"1"}"#,
            br#"{"symbol":"BTCUSDT","interval":"1m","open_time":0,"open":"1","high":"0","low":"1","close":"1","volume":"1"}"#,
            br#"{"symbol":"BTCUSDT","interval":"1m","open_time":0,"open":"x","high":"1","low":"1","close":"1","volume":"1"}"#,
        ] {
            assert!(decode_candle(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
