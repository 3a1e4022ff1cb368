//! [`Signal`]: what a strategy decided on one candle, as the engine emits it.

use std::sync::Arc;

use candlewick_market::{Interval, Symbol};
pub use candlewick_sdk::abi::Action;

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
/// use candlewick_core::signal_id;
/// assert_eq!(signal_id("sma_cross", "BTCUSDT", "1m", 1_700_000_000_000),
///            "sma_cross:BTCUSDT:1m:1700000000000");
/// ```
pub fn signal_id(strategy: &str, symbol: &str, interval: &str, time: i64) -> String {
    // Built by hand, sized once: a backtest makes one per signal, and
    // `format!` cost a quarter of a microsecond each.
    let mut time_digits = itoa::Buffer::new();
    let time = time_digits.format(time);
    let mut id =
        String::with_capacity(strategy.len() + symbol.len() + interval.len() + time.len() + 3);
    for (i, part) in [strategy, symbol, interval, time].into_iter().enumerate() {
        if i > 0 {
            id.push(':');
        }
        id.push_str(part);
    }
    id
}

impl Signal {
    /// A signal of `strategy` on the candle of `symbol`/`interval` opening
    /// at `time` (closing at `price`), with its deterministic id; no stop
    /// or target, not yet emitted, not timed.
    pub fn decided(
        strategy: Arc<str>,
        symbol: Symbol,
        interval: Interval,
        time: i64,
        (action, strength): (Action, f64),
        price: f64,
    ) -> Signal {
        Signal {
            id: signal_id(&strategy, symbol.as_str(), interval.as_str(), time),
            strategy,
            symbol,
            interval,
            time,
            action,
            strength,
            price,
            stop_loss: None,
            take_profit: None,
            emitted_at_us: 0,
            ingest_ns: 0,
        }
    }

    /// The signal as the feed sends it and the outbox keeps it: the JSON
    /// object's members after `{"type":"signal","seq":N,`, closing brace
    /// included (DESIGN §7's signal frame).
    ///
    /// ```
    /// # use candlewick_core::{Action, Signal};
    /// let s = Signal {
    ///     id: "sma_cross:BTCUSDT:1m:60000".into(), strategy: "sma_cross".into(),
    ///     symbol: candlewick_market::Symbol::new("BTCUSDT").unwrap(), interval: "1m".parse().unwrap(),
    ///     time: 60_000, action: Action::Buy, strength: 1.0, price: 10.5,
    ///     stop_loss: None, take_profit: Some(11.0), emitted_at_us: 7, ingest_ns: 0,
    /// };
    /// assert_eq!(s.feed_body(), "\"id\":\"sma_cross:BTCUSDT:1m:60000\",\"symbol\":\"BTCUSDT\",\
    /// \"interval\":\"1m\",\"strategy\":\"sma_cross\",\"time\":60000,\"action\":\"buy\",\
    /// \"strength\":1,\"price\":10.5,\"take_profit\":11,\"emitted_at_us\":7}");
    /// ```
    pub fn feed_body(&self) -> String {
        use std::fmt::Write as _;
        let mut body = String::with_capacity(256);
        let _ = write!(
            body,
            "\"id\":{},\"symbol\":\"{}\",\"interval\":\"{}\",\"strategy\":{},\"time\":{},\"action\":\"{}\",\"strength\":{},\"price\":{}",
            json_str(&self.id),
            self.symbol,
            self.interval,
            json_str(&self.strategy),
            self.time,
            self.action.as_str(),
            json_num(self.strength),
            json_num(self.price),
        );
        if let Some(v) = self.stop_loss {
            let _ = write!(body, ",\"stop_loss\":{}", json_num(v));
        }
        if let Some(v) = self.take_profit {
            let _ = write!(body, ",\"take_profit\":{}", json_num(v));
        }
        let _ = write!(body, ",\"emitted_at_us\":{}}}", self.emitted_at_us);
        body
    }
}

/// A JSON number; non-finite values (never produced) become `null`.
pub fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_owned()
    }
}

/// A JSON string literal: quotes, backslashes and control characters
/// escaped.
pub fn json_str(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
