//! [`Hub`]: the [`Sink`] that fans signals out to feed clients.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use candlewick_core::{json_num as num, json_str, Clock, Prediction, Signal, Sink};
use candlewick_core::{PluginHealth, PluginStats};
use tokio::sync::broadcast;

use crate::history::History;

/// One frame for clients, serialised once for all of them: `body` is the
/// JSON object after `{"type":...,"seq":N,` (each client adds its own seq).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    pub kind: ItemKind,
    pub symbol: String,
    /// Empty for candles.
    pub strategy: Arc<str>,
    pub body: String,
    /// Engine clock reading of the candle's ingest (for latency).
    pub ingest_ns: u64,
    /// Open time of the candle the frame is about (ms).
    pub time: i64,
    /// A signal's deterministic id; empty for other frames.
    pub id: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Signal,
    Candle,
    /// A model's prediction; `strategy` holds the model's name.
    Prediction,
    /// The analyst's view of a symbol (opt-in, `"analysis":true`).
    Analysis,
}

/// Where workers publish; where client tasks subscribe.
///
/// Publishing is `broadcast::Sender::send`: it never waits, whatever the
/// clients do. With no client connected nothing is serialised at all.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<FeedItem>>,
    candles: bool,
    /// The last signals published, oldest first, for clients that resume
    /// with `since`: they cover what the outbox does not hold yet (the
    /// signals emitted after the last checkpoint).
    recent: Arc<Mutex<VecDeque<Arc<FeedItem>>>>,
    recent_cap: usize,
    /// What the dashboard shows (off until [`History::enable`]).
    history: Arc<History>,
    /// The engine's clock, when clients time their writes
    /// ([`Hub::timed`]).
    clock: Option<Clock>,
}

impl Hub {
    /// A hub whose ring holds `capacity` frames (at least 1); `candles`
    /// enables candle frames. It keeps no recent signals (see
    /// [`Hub::keep_recent`]).
    pub fn new(capacity: usize, candles: bool) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Hub {
            tx,
            candles,
            recent: Arc::default(),
            recent_cap: 0,
            history: Arc::default(),
            clock: None,
        }
    }

    /// Client tasks time each signal frame they write against `clock` (the
    /// engine's, which stamped the receipt of the signal's candle): the
    /// `write` stage of `/metrics`.
    pub fn timed(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The clock frames are timed by, if any.
    pub fn clock(&self) -> Option<Clock> {
        self.clock
    }

    /// The dashboard's record of recent candles, signals and strategies.
    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Keeps the last `n` signals for resuming clients; `n` should cover
    /// at least the signals of one checkpoint interval.
    pub fn keep_recent(mut self, n: usize) -> Self {
        self.recent_cap = n;
        self
    }

    /// The kept signals of candles that opened at or after `time`, oldest
    /// first.
    pub fn recent_since(&self, time: i64) -> Vec<Arc<FeedItem>> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().filter(|i| i.time >= time).cloned().collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    pub fn clients(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publishes an `analysis` frame for `symbol`: `body` is the JSON
    /// object's members after `"type":"analysis","seq":N,` and its closing
    /// brace (`"symbol":...}`). Never waits; with no client it is dropped.
    pub fn publish_analysis(&self, symbol: &str, time: i64, body: String) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        self.publish(FeedItem {
            kind: ItemKind::Analysis,
            symbol: symbol.to_owned(),
            strategy: "".into(),
            body,
            ingest_ns: 0,
            time,
            id: "".into(),
        });
    }

    fn publish(&self, item: FeedItem) {
        // Err only when no client is connected: nothing to do.
        let _ = self.tx.send(Arc::new(item));
    }
}

impl Sink for Hub {
    fn signal(&self, s: Signal) {
        self.history.signal(&s);
        if self.tx.receiver_count() == 0 && self.recent_cap == 0 {
            return;
        }
        let item = Arc::new(FeedItem {
            kind: ItemKind::Signal,
            symbol: s.symbol.as_str().to_owned(),
            body: s.feed_body(),
            ingest_ns: s.ingest_ns,
            time: s.time,
            id: s.id.into(),
            strategy: s.strategy,
        });
        if self.recent_cap > 0 {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            while recent.len() >= self.recent_cap {
                recent.pop_front();
            }
            recent.push_back(item.clone());
        }
        // Err only when no client is connected: nothing to do.
        let _ = self.tx.send(item);
    }

    fn wants_candles(&self) -> bool {
        self.history.enabled() || (self.candles && self.tx.receiver_count() > 0)
    }

    fn strategy_health(
        &self,
        stream: &candlewick_core::StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        self.history
            .strategy_health(stream, strategy, stats, health);
    }

    fn wants_predictions(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    fn prediction(
        &self,
        stream: &candlewick_core::StreamKey,
        model: &str,
        time: i64,
        p: &Prediction,
    ) {
        let [down, flat, up] = p.probs.map(f64::from);
        let body = format!(
            "\"symbol\":\"{}\",\"interval\":\"{}\",\"model\":{},\"time\":{time},\"p_up\":{},\"p_flat\":{},\"p_down\":{},\"score\":{}}}",
            stream.symbol, stream.interval, json_str(model), num(up), num(flat), num(down), num(up - down)
        );
        self.publish(FeedItem {
            kind: ItemKind::Prediction,
            symbol: stream.symbol.as_str().to_owned(),
            strategy: model.into(),
            body,
            ingest_ns: 0,
            time,
            id: "".into(),
        });
    }

    fn candle(&self, stream: &candlewick_core::StreamKey, c: &candlewick_market::Candle) {
        self.history.candle(stream, c);
        if !self.candles || self.tx.receiver_count() == 0 {
            return;
        }
        let body = format!(
            "\"symbol\":\"{}\",\"interval\":\"{}\",\"time\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\"volume\":{}}}",
            stream.symbol, stream.interval, c.open_time, num(c.open), num(c.high), num(c.low), num(c.close), num(c.volume)
        );
        self.publish(FeedItem {
            kind: ItemKind::Candle,
            symbol: stream.symbol.as_str().to_owned(),
            strategy: "".into(),
            body,
            ingest_ns: 0,
            time: c.open_time,
            id: "".into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_frame_carries_the_model_and_its_probabilities() {
        let hub = Hub::new(8, false);
        let mut rx = hub.subscribe();
        let stream = "BTCUSDT/1m".parse().unwrap();
        let p = Prediction {
            probs: [0.25, 0.25, 0.5],
        };
        assert!(hub.wants_predictions());
        hub.prediction(&stream, "lstm\"1", 1_700_000_000_000, &p);
        let item = rx.try_recv().unwrap();
        assert_eq!(item.kind, ItemKind::Prediction);
        assert_eq!(&*item.strategy, "lstm\"1");
        let json: serde_json::Value = serde_json::from_str(&format!("{{{}", item.body)).unwrap();
        assert_eq!(json["model"], "lstm\"1");
        assert_eq!(json["symbol"], "BTCUSDT");
        assert_eq!(json["interval"], "1m");
        assert_eq!(json["time"], 1_700_000_000_000i64);
        assert_eq!(json["p_up"], 0.5);
        assert_eq!(json["p_down"], 0.25);
        assert_eq!(json["score"], 0.25);
    }
}
