//! [`History`]: what the dashboard shows that the engine does not keep
//! elsewhere: each stream's last candles and signals, each strategy's
//! book (signals today, last signal, quarantines), and the engine's rates
//! and latency sampled over time.
//!
//! The [`Hub`](crate::Hub) feeds it as the pipeline's sink, so it works
//! with no other component and no client connected. Everything in it is
//! bounded: [`History::enable`] sets the candles and signals kept per
//! stream; the engine samples are a fixed ring.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use candlewick_core::Signal;
use candlewick_core::StreamKey;
use candlewick_core::{PluginHealth, PluginStats};
use candlewick_market::Candle;
use serde::Serialize;

/// Engine samples kept: ten minutes at one a second.
pub(crate) const SAMPLES: usize = 600;

/// One candle as the page draws it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CandleRow {
    /// Open time, ms since the Unix epoch.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl From<&Candle> for CandleRow {
    fn from(c: &Candle) -> Self {
        CandleRow {
            time: c.open_time,
            open: c.open,
            high: c.high,
            low: c.low,
            close: c.close,
            volume: c.volume,
        }
    }
}

/// One signal as the page marks it.
#[derive(Debug, Clone, Serialize)]
pub struct SignalRow {
    pub id: String,
    pub strategy: String,
    pub symbol: String,
    pub interval: String,
    /// Open time of the candle it was decided on (ms).
    pub time: i64,
    pub action: &'static str,
    pub strength: f64,
    pub price: f64,
    /// Wall clock of its emission, µs since the Unix epoch.
    pub emitted_at_us: i64,
}

impl From<&Signal> for SignalRow {
    fn from(s: &Signal) -> Self {
        SignalRow {
            id: s.id.clone(),
            strategy: s.strategy.to_string(),
            symbol: s.symbol.as_str().to_owned(),
            interval: s.interval.to_string(),
            time: s.time,
            action: s.action.as_str(),
            strength: s.strength,
            price: s.price,
            emitted_at_us: s.emitted_at_us,
        }
    }
}

/// One stream's recent past.
#[derive(Debug, Default)]
struct Ring {
    candles: VecDeque<CandleRow>,
    signals: VecDeque<SignalRow>,
}

/// A stream's recent candles and signals, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct StreamHistory {
    pub symbol: String,
    pub interval: String,
    pub candles: Vec<CandleRow>,
    pub signals: Vec<SignalRow>,
}

/// How one strategy fares on one stream, as its runner last reported.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunnerHealth {
    pub quarantined: bool,
    /// The fault that caused the current or last quarantine.
    pub cause: Option<String>,
    /// Its short kind (`trap`, `deadline`, ...).
    pub kind: Option<&'static str>,
    pub quarantines: u64,
    pub restarts: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// One strategy's book.
#[derive(Debug, Clone, Default)]
struct Book {
    total: u64,
    today: u64,
    /// Days since the Unix epoch (UTC) that `today` counts.
    day: i64,
    last: Option<SignalRow>,
    /// Per stream (`SYMBOL/interval`), only for runners that had
    /// something happen (see `Sink::strategy_health`).
    health: BTreeMap<String, RunnerHealth>,
}

/// One strategy, for `/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyStatus {
    pub name: String,
    /// `running`, or `quarantined` while any of its streams is.
    pub state: &'static str,
    pub signals_today: u64,
    pub signals_total: u64,
    pub last_signal: Option<SignalRow>,
    pub quarantines: u64,
    pub streams_quarantined: usize,
    /// The most recent cause of a quarantine on any stream.
    pub cause: Option<String>,
    pub kind: Option<&'static str>,
    pub restarts: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

/// One engine sample (cumulative counters and latency at `t_ms`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Sample {
    pub t_ms: i64,
    pub candles_per_s: f64,
    pub signals_per_s: f64,
    /// ingest->emit quantiles since start, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Events queued over every shard.
    pub queued: u64,
    pub feed_clients: u64,
    pub lag_dropped: u64,
}

/// See the module docs. Cheap to share: the hub holds it in an `Arc`.
#[derive(Debug, Default)]
pub struct History {
    /// Candles (and signals) kept per stream; 0 keeps nothing.
    cap: AtomicUsize,
    streams: Mutex<HashMap<StreamKey, Ring>>,
    books: Mutex<BTreeMap<Arc<str>, Book>>,
    samples: Mutex<VecDeque<Sample>>,
    /// Wall clock (ms) when the sampler saw the checkpoint count move; 0
    /// before the first.
    checkpoint_ms: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl History {
    /// Keeps the last `per_stream` candles and signals of each stream.
    pub fn enable(&self, per_stream: usize) {
        self.cap.store(per_stream, Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.cap.load(Relaxed) > 0
    }

    /// Lists `names` in the strategy table before they signal (a strategy
    /// quarantined from its first bar never does).
    pub fn declare_strategies(&self, names: &[String]) {
        let mut books = lock(&self.books);
        for n in names {
            books.entry(n.as_str().into()).or_default();
        }
    }

    pub(crate) fn candle(&self, stream: &StreamKey, c: &Candle) {
        let cap = self.cap.load(Relaxed);
        if cap == 0 {
            return;
        }
        let mut streams = lock(&self.streams);
        // Looked up by reference: the key is cloned once per stream, not per candle.
        if !streams.contains_key(stream) {
            streams.insert(stream.clone(), Ring::default());
        }
        let Some(ring) = streams.get_mut(stream) else {
            return;
        };
        while ring.candles.len() >= cap {
            ring.candles.pop_front();
        }
        ring.candles.push_back(c.into());
    }

    pub(crate) fn signal(&self, s: &Signal) {
        let row = SignalRow::from(s);
        let day = s.emitted_at_us.div_euclid(86_400_000_000);
        {
            let mut books = lock(&self.books);
            let book = books.entry(s.strategy.clone()).or_default();
            if book.day != day {
                book.day = day;
                book.today = 0;
            }
            book.today += 1;
            book.total += 1;
            book.last = Some(row.clone());
        }
        let cap = self.cap.load(Relaxed);
        if cap == 0 {
            return;
        }
        let key = StreamKey::new(s.symbol.clone(), s.interval);
        let mut streams = lock(&self.streams);
        let ring = streams.entry(key).or_default();
        while ring.signals.len() >= cap {
            ring.signals.pop_front();
        }
        ring.signals.push_back(row);
    }

    pub(crate) fn strategy_health(
        &self,
        stream: &StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        let (quarantined, fault) = match health {
            PluginHealth::Running => (false, None),
            PluginHealth::Quarantined { fault, .. } => (true, Some(fault)),
        };
        let mut books = lock(&self.books);
        if !books.contains_key(strategy) {
            books.insert(strategy.into(), Book::default());
        }
        let Some(book) = books.get_mut(strategy) else {
            return;
        };
        let entry = book.health.entry(stream.to_string()).or_default();
        entry.quarantined = quarantined;
        if let Some(f) = fault {
            entry.cause = Some(f.to_string());
            entry.kind = Some(f.kind());
        }
        entry.quarantines = stats.quarantines();
        entry.restarts = stats.restarts;
        entry.reloads = stats.reloads;
        entry.reload_failures = stats.reload_failures;
    }

    /// The streams of `symbol`, each with its kept candles and signals.
    pub fn of_symbol(&self, symbol: &str) -> Vec<StreamHistory> {
        let streams = lock(&self.streams);
        let mut out: Vec<StreamHistory> = streams
            .iter()
            .filter(|(k, _)| k.symbol.as_str() == symbol)
            .map(|(k, r)| StreamHistory {
                symbol: k.symbol.as_str().to_owned(),
                interval: k.interval.to_string(),
                candles: r.candles.iter().copied().collect(),
                signals: r.signals.iter().cloned().collect(),
            })
            .collect();
        out.sort_by(|a, b| a.interval.cmp(&b.interval));
        out
    }

    /// Every stream with kept candles: `(symbol, interval, candles kept,
    /// last open time)`, sorted.
    pub fn streams(&self) -> Vec<(String, String, usize, Option<i64>)> {
        let streams = lock(&self.streams);
        let mut out: Vec<_> = streams
            .iter()
            .map(|(k, r)| {
                (
                    k.symbol.as_str().to_owned(),
                    k.interval.to_string(),
                    r.candles.len(),
                    r.candles.back().map(|c| c.time),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Every strategy's status, by name. `today` is the current UTC day
    /// (days since the epoch): a book last counted on another day reads 0.
    pub fn strategies(&self, today: i64) -> Vec<StrategyStatus> {
        let books = lock(&self.books);
        books
            .iter()
            .map(|(name, b)| {
                let quarantined = b.health.values().filter(|h| h.quarantined).count();
                // The cause shown: a current quarantine's first, else the last known.
                let cause_of = b
                    .health
                    .values()
                    .find(|h| h.quarantined)
                    .or_else(|| b.health.values().find(|h| h.cause.is_some()));
                StrategyStatus {
                    name: name.to_string(),
                    state: if quarantined > 0 {
                        "quarantined"
                    } else {
                        "running"
                    },
                    signals_today: if b.day == today { b.today } else { 0 },
                    signals_total: b.total,
                    last_signal: b.last.clone(),
                    quarantines: b.health.values().map(|h| h.quarantines).sum(),
                    streams_quarantined: quarantined,
                    cause: cause_of.and_then(|h| h.cause.clone()),
                    kind: cause_of.and_then(|h| h.kind),
                    restarts: b.health.values().map(|h| h.restarts).sum(),
                    reloads: b.health.values().map(|h| h.reloads).sum(),
                    reload_failures: b.health.values().map(|h| h.reload_failures).sum(),
                }
            })
            .collect()
    }

    pub(crate) fn push_sample(&self, s: Sample) {
        let mut samples = lock(&self.samples);
        while samples.len() >= SAMPLES {
            samples.pop_front();
        }
        samples.push_back(s);
    }

    pub(crate) fn set_checkpoint_seen(&self, ms: i64) {
        self.checkpoint_ms.store(ms, Relaxed);
    }

    /// When a checkpoint was last seen committed (ms, to the sampler's
    /// one-second resolution); 0 before the first.
    pub fn checkpoint_seen_ms(&self) -> i64 {
        self.checkpoint_ms.load(Relaxed)
    }

    /// The latest sample, if any.
    pub fn last_sample(&self) -> Option<Sample> {
        lock(&self.samples).back().copied()
    }

    /// Samples taken after `since_ms`, oldest first.
    pub fn samples_since(&self, since_ms: i64) -> Vec<Sample> {
        lock(&self.samples)
            .iter()
            .filter(|s| s.t_ms > since_ms)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_core::Fault;

    fn candle(t: i64) -> Candle {
        Candle {
            open_time: t,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10.0,
        }
    }

    fn signal(strategy: &str, t: i64, emitted_at_us: i64) -> Signal {
        Signal {
            id: format!("{strategy}:EURUSD:1h:{t}"),
            strategy: strategy.into(),
            symbol: candlewick_market::Symbol::new("EURUSD").unwrap(),
            interval: "1h".parse().unwrap(),
            time: t,
            action: candlewick_core::Action::Buy,
            strength: 0.5,
            price: 1.5,
            stop_loss: None,
            take_profit: None,
            emitted_at_us,
            ingest_ns: 0,
        }
    }

    #[test]
    fn each_stream_keeps_its_last_candles_and_signals() {
        let h = History::default();
        let key: StreamKey = "EURUSD/1h".parse().unwrap();
        h.candle(&key, &candle(1));
        assert!(h.streams().is_empty(), "disabled: nothing kept");
        h.enable(3);
        for t in 1..=5 {
            h.candle(&key, &candle(t));
            h.signal(&signal("sma_cross", t, 0));
        }
        let got = h.of_symbol("EURUSD");
        assert_eq!(got.len(), 1);
        let times: Vec<i64> = got[0].candles.iter().map(|c| c.time).collect();
        assert_eq!(times, [3, 4, 5]);
        let times: Vec<i64> = got[0].signals.iter().map(|s| s.time).collect();
        assert_eq!(times, [3, 4, 5]);
        assert_eq!(got[0].interval, "1h");
        assert!(h.of_symbol("BTCUSDT").is_empty());
    }

    #[test]
    fn the_hub_records_history_without_clients_and_publishes_only_to_them() {
        use candlewick_core::Sink;
        let hub = crate::Hub::new(8, false);
        let key: StreamKey = "EURUSD/1h".parse().unwrap();
        assert!(
            !hub.wants_candles(),
            "no history, no clients, no candle frames"
        );
        hub.history().enable(10);
        assert!(hub.wants_candles());
        hub.candle(&key, &candle(1));
        hub.signal(signal("sma_cross", 1, 0));
        let kept = hub.history().of_symbol("EURUSD");
        assert_eq!((kept[0].candles.len(), kept[0].signals.len()), (1, 1));
        // candles = false: a client gets the signal, never a candle frame.
        let mut rx = hub.subscribe();
        hub.candle(&key, &candle(2));
        hub.signal(signal("sma_cross", 2, 0));
        assert_eq!(rx.try_recv().unwrap().kind, crate::hub::ItemKind::Signal);
        assert!(rx.try_recv().is_err());
        assert_eq!(hub.history().of_symbol("EURUSD")[0].candles.len(), 2);
    }

    #[test]
    fn a_book_counts_signals_per_day_and_shows_quarantines() {
        let h = History::default();
        h.declare_strategies(&["hostile".to_owned(), "sma_cross".to_owned()]);
        let day = 86_400_000_000;
        h.signal(&signal("sma_cross", 1, 5 * day + 1));
        h.signal(&signal("sma_cross", 2, 6 * day + 1));
        h.signal(&signal("sma_cross", 3, 6 * day + 2));
        let key: StreamKey = "EURUSD/1h".parse().unwrap();
        let stats = PluginStats {
            traps: 2,
            ..PluginStats::default()
        };
        let quarantined = PluginHealth::Quarantined {
            fault: Fault::Trap("unreachable".into()),
            consecutive: 2,
            retry_at: std::time::Instant::now(),
        };
        h.strategy_health(&key, "hostile", &stats, &quarantined);
        let all = h.strategies(6);
        assert_eq!(all.len(), 2);
        let hostile = &all[0];
        assert_eq!(hostile.name, "hostile");
        assert_eq!(hostile.state, "quarantined");
        assert_eq!(hostile.quarantines, 2);
        assert_eq!(hostile.kind, Some("trap"));
        assert!(hostile.cause.as_deref().unwrap().contains("unreachable"));
        assert_eq!(hostile.signals_total, 0);
        let sma = &all[1];
        assert_eq!(sma.state, "running");
        assert_eq!((sma.signals_today, sma.signals_total), (2, 3));
        assert_eq!(sma.last_signal.as_ref().unwrap().time, 3);
        assert_eq!(h.strategies(7)[1].signals_today, 0, "a new day");
        // Restarted: running again, the cause still shown.
        h.strategy_health(&key, "hostile", &stats, &PluginHealth::Running);
        let hostile = &h.strategies(6)[0];
        assert_eq!(hostile.state, "running");
        assert_eq!(hostile.kind, Some("trap"));
    }
}
