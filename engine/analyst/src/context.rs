//! The context: what the engine already knows about a symbol, as compact
//! JSON for the model.
//!
//! For each of the symbol's streams (one per interval):
//! - `candles`: a summary of the stream's warm-up tail (the last
//!   `engine.tail_bars` candles, checkpointed with the stream when it has
//!   strategies): count, first and last time, first open, last close,
//!   change, high, low, volume, and the last [`LAST_CANDLES`] candles;
//! - `indicators`: the engine's indicator spec evaluated over that tail,
//!   the values at its last candle (an indicator still warming up over
//!   the tail is left out rather than shown as a number it is not);
//! - `signals`: the last `signals` signals of each strategy on the stream
//!   within the tail's time span, from the signal outbox.
//!
//! - `predictions`: each model's latest prediction on the stream, when
//!   the caller kept them ([`Predictions`]: `candlewick run` does, from
//!   the workers' sink; the state store keeps none, so `analyze` has none).
//!
//! Backtest statistics are not included yet.
//!
//! A symbol whose streams have no tail yet (no strategies, or nothing
//! applied) has no context: [`AnalystError::NoData`], and no call is made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use candlewick_indicators::IndicatorSet;
use candlewick_market::time::format_ms;
use candlewick_market::Candle;
use candlewick_state::{StateStore, StreamKey};
use serde_json::{json, Map, Value};

use crate::AnalystError;

/// The latest prediction of each model on each stream, kept from the
/// workers' sink ([`crate::AnalystSink`]). Recording is one uncontended
/// lock and, after a stream's first prediction, no allocation.
#[derive(Debug, Default)]
pub struct Predictions(Mutex<HashMap<StreamKey, Vec<Latest>>>);

/// A model's name, the open time of the candle it predicted for, and its
/// `[down, flat, up]` probabilities.
type Latest = (String, i64, [f32; 3]);

impl Predictions {
    /// Keeps `probs` (`[down, flat, up]`) of `model` at candle `time`.
    pub fn record(&self, stream: &StreamKey, model: &str, time: i64, probs: [f32; 3]) {
        let mut map = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let list = match map.get_mut(stream) {
            Some(l) => l,
            None => map.entry(stream.clone()).or_default(),
        };
        match list.iter_mut().find(|(m, _, _)| m == model) {
            Some(slot) => {
                slot.1 = time;
                slot.2 = probs;
            }
            None => list.push((model.to_owned(), time, probs)),
        }
    }

    /// The stream's latest predictions as context JSON (`{}` for none).
    fn context(&self, stream: &StreamKey) -> Value {
        let map = match self.0.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut out = Map::new();
        for (model, time, [down, flat, up]) in map.get(stream).into_iter().flatten() {
            out.insert(
                model.clone(),
                json!({
                    "time": format_ms(*time),
                    "p_up": num(f64::from(*up)),
                    "p_flat": num(f64::from(*flat)),
                    "p_down": num(f64::from(*down)),
                }),
            );
        }
        Value::Object(out)
    }
}

/// Candles listed one by one at the end of each stream's tail.
pub const LAST_CANDLES: usize = 8;

/// Signals read from the outbox at most, per context.
const OUTBOX_LIMIT: usize = 100_000;

/// `v` with 6 significant digits (the context is for reading, and
/// shorter numbers cost fewer tokens); `null` when not finite.
fn num(v: f64) -> Value {
    if !v.is_finite() {
        return Value::Null;
    }
    if v == 0.0 {
        return json!(0.0);
    }
    let digits = 6 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits.clamp(-300, 300));
    let r = (v * scale).round() / scale;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// The context of `symbol` from its `streams` (keys of that symbol) in
/// `store`, with indicators of `spec`, `signals` signals per strategy and
/// the models' latest `predictions` when kept.
///
/// # Errors
/// [`AnalystError::NoData`] when no stream has candles;
/// [`AnalystError::State`] when the store fails.
pub fn build(
    store: &dyn StateStore,
    symbol: &str,
    streams: &[StreamKey],
    spec: &str,
    signals: usize,
    predictions: Option<&Predictions>,
) -> Result<Value, AnalystError> {
    let mut out = Vec::new();
    for key in streams.iter().filter(|k| k.symbol.as_str() == symbol) {
        let Some(bytes) = store.plugin_snapshot(candlewick_pipeline::TAIL_SNAPSHOT, key)? else {
            continue;
        };
        let Some(tail) = candlewick_pipeline::decode_tail(&bytes) else {
            continue;
        };
        if tail.is_empty() {
            continue;
        }
        let tail: Vec<Candle> = tail.into();
        let mut s = stream_context(store, key, &tail, spec, signals)?;
        if let Some(p) = predictions {
            s["predictions"] = p.context(key);
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(AnalystError::NoData {
            symbol: symbol.to_owned(),
            reason: if streams.iter().any(|k| k.symbol.as_str() == symbol) {
                "no candles in the engine's state yet (the tail is kept for streams with \
                 strategies, after a run has applied candles)"
                    .to_owned()
            } else {
                "the engine runs no stream of it".to_owned()
            },
        });
    }
    Ok(json!({"symbol": symbol, "streams": out}))
}

fn stream_context(
    store: &dyn StateStore,
    key: &StreamKey,
    tail: &[Candle],
    spec: &str,
    signals: usize,
) -> Result<Value, AnalystError> {
    let (first, last) = (tail[0], tail[tail.len() - 1]);
    let high = tail.iter().map(|c| c.high).fold(f64::MIN, f64::max);
    let low = tail.iter().map(|c| c.low).fold(f64::MAX, f64::min);
    let volume: f64 = tail.iter().map(|c| c.volume).sum();
    let change = if first.open != 0.0 {
        (last.close - first.open) / first.open * 100.0
    } else {
        f64::NAN
    };
    let recent: Vec<Value> = tail[tail.len().saturating_sub(LAST_CANDLES)..]
        .iter()
        .map(|c| {
            json!([
                format_ms(c.open_time),
                num(c.open),
                num(c.high),
                num(c.low),
                num(c.close),
                num(c.volume)
            ])
        })
        .collect();
    Ok(json!({
        "interval": key.interval.as_str(),
        "candles": {
            "count": tail.len(),
            "from": format_ms(first.open_time),
            "to": format_ms(last.open_time),
            "first_open": num(first.open),
            "last_close": num(last.close),
            "change_pct": num(change),
            "high": num(high),
            "low": num(low),
            "volume": num(volume),
            "last": {"columns": ["time", "open", "high", "low", "close", "volume"], "rows": recent},
        },
        "indicators": indicators(spec, tail),
        "signals": recent_signals(store, key, first.open_time, signals)?,
    }))
}

/// The indicators of `spec` at the last candle of `tail`, each over the
/// whole tail; one still in its warm-up (or not finite) is left out.
fn indicators(spec: &str, tail: &[Candle]) -> Value {
    let Ok(mut set) = IndicatorSet::parse(spec) else {
        return Value::Object(Map::new());
    };
    let mut values = vec![f64::NAN; set.width()];
    for c in tail {
        set.update(c, &mut values);
    }
    let mut out = Map::new();
    for (name, v) in set.columns().iter().zip(values) {
        if v.is_finite() {
            out.insert(name.clone(), num(v));
        }
    }
    Value::Object(out)
}

/// The last `n` signals of each strategy on `key` at or after `since`.
fn recent_signals(
    store: &dyn StateStore,
    key: &StreamKey,
    since: i64,
    n: usize,
) -> Result<Value, AnalystError> {
    let mut by_strategy: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if n == 0 {
        return Ok(json!({}));
    }
    for record in store.outbox_since(since, OUTBOX_LIMIT)? {
        let Ok(v) = serde_json::from_slice::<Value>(&record.body) else {
            continue;
        };
        if v["symbol"].as_str() != Some(key.symbol.as_str())
            || v["interval"].as_str() != Some(key.interval.as_str())
        {
            continue;
        }
        let Some(strategy) = v["strategy"].as_str() else {
            continue;
        };
        let list = by_strategy.entry(strategy.to_owned()).or_default();
        list.push(json!({
            "time": format_ms(v["time"].as_i64().unwrap_or(record.time)),
            "action": v["action"],
            "strength": num(v["strength"].as_f64().unwrap_or(f64::NAN)),
            "price": num(v["price"].as_f64().unwrap_or(f64::NAN)),
        }));
        if list.len() > n {
            list.remove(0);
        }
    }
    Ok(json!(by_strategy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_prediction_of_each_model_is_kept() {
        let p = Predictions::default();
        let k: StreamKey = "BTCUSDT/1m".parse().unwrap();
        p.record(&k, "lstm", 60_000, [0.5, 0.25, 0.25]);
        p.record(&k, "lstm", 120_000, [0.25, 0.25, 0.5]);
        p.record(&k, "gru", 120_000, [0.1, 0.8, 0.1]);
        let v = p.context(&k);
        assert_eq!(v["lstm"]["p_up"], 0.5);
        assert_eq!(v["lstm"]["time"], "1970-01-01 00:02:00");
        assert_eq!(v["gru"]["p_flat"], 0.8);
        assert_eq!(p.context(&"ETHUSDT/1m".parse().unwrap()), json!({}));
    }

    #[test]
    fn numbers_keep_six_significant_digits() {
        assert_eq!(num(123_456.789), json!(123_457.0));
        assert_eq!(num(0.000_123_456_78), json!(0.000_123_457));
        assert_eq!(num(f64::NAN), Value::Null);
        assert_eq!(num(0.0), json!(0.0));
    }
}
