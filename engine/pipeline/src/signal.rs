//! [`Signal`]: what a strategy decided on one candle, as the engine emits it.

use std::sync::Arc;

use candlewick_market::{Interval, Symbol};
use candlewick_plugins::Action;

/// One signal, ready for any sink.
///
/// Its [`Signal::id`] is a function of (strategy, symbol, interval, candle
/// time) only (see [`signal_id`]): the same decision on the same candle has
/// the same id in every run, live or replayed, before or after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: String,
    pub strategy: Arc<str>,
    pub symbol: Symbol,
    pub interval: Interval,
    /// Open time of the candle the decision was made on (ms, UTC).
    pub time: i64,
    pub action: Action,
    /// In `[-1, 1]`.
    pub strength: f64,
    /// The close of that candle.
    pub price: f64,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    /// Wall clock when the worker emitted it, µs since the Unix epoch.
    pub emitted_at_us: i64,
    /// [`crate::Clock`] reading of the candle's ingest, for latency.
    pub ingest_ns: u64,
}

/// The deterministic id of a signal: `strategy:SYMBOL:interval:time`.
///
/// ```
/// use candlewick_pipeline::signal_id;
/// assert_eq!(signal_id("sma_cross", "BTCUSDT", "1m", 1_700_000_000_000),
///            "sma_cross:BTCUSDT:1m:1700000000000");
/// ```
pub fn signal_id(strategy: &str, symbol: &str, interval: &str, time: i64) -> String {
    format!("{strategy}:{symbol}:{interval}:{time}")
}
