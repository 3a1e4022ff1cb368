//! The analyst inside `candlewick run`: a [`Service`] that analyses every
//! symbol on a schedule and, on [`Triggers`], the symbols a chosen
//! strategy just signalled on.
//!
//! ```text
//! worker ── Sink::signal ──▶ AnalystSink ──▶ the engine's sink (hub, ...)
//!                               │ try_send (wanted strategies only;
//!                               ▼  full: dropped, counted)
//!                        [bounded channel] ──▶ Service ──▶ Analyst ──▶ Results
//!                                                 ▲                  └──▶ publish (feed)
//!                                every_minutes ───┘
//! ```
//!
//! A worker pays one string comparison per signal for each strategy in
//! `on_signals`, and a `try_send` for a wanted one: it never waits on the
//! analyst. A symbol triggered again within `trigger_cooldown_s` of its
//! last event-triggered analysis is not analysed again (a burst of signals
//! must not burn the budget). The schedule's first round is one period
//! after the start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candlewick_pipeline::{Prediction, Signal, Sink, SinkTap, Tapped};
use candlewick_state::{StateStore, StreamKey};
use tokio::sync::{mpsc, watch, Mutex};

use crate::context::Predictions;
use crate::{context, Analyst, AnalystError, Job, Record, Stats};

/// Triggers the hand-off channel holds before they are dropped.
pub const TRIGGER_QUEUE: usize = 1024;

/// A symbol to analyse because a strategy signalled on it, or a model's
/// prediction for it passed `on_prediction_score`; the event goes into
/// the context as `trigger` (a signal may not be in the outbox yet:
/// workers checkpoint after they emit).
#[derive(Debug, Clone)]
pub struct Trigger {
    pub symbol: String,
    /// The strategy or the model.
    pub source: Arc<str>,
    pub interval: &'static str,
    pub time: i64,
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Signal {
        action: &'static str,
        strength: f64,
        price: f64,
    },
    /// `score` is `p_up - p_down`.
    Prediction { p_up: f64, p_down: f64, score: f64 },
}

impl Trigger {
    /// `signal:STRATEGY` or `prediction:MODEL`.
    pub fn name(&self) -> String {
        match self.event {
            Event::Signal { .. } => format!("signal:{}", self.source),
            Event::Prediction { .. } => format!("prediction:{}", self.source),
        }
    }

    fn context(&self) -> serde_json::Value {
        let time = candlewick_market::time::format_ms(self.time);
        match self.event {
            Event::Signal {
                action,
                strength,
                price,
            } => serde_json::json!({
                "strategy": &*self.source,
                "interval": self.interval,
                "time": time,
                "action": action,
                "strength": strength,
                "price": price,
            }),
            Event::Prediction {
                p_up,
                p_down,
                score,
            } => serde_json::json!({
                "model": &*self.source,
                "interval": self.interval,
                "time": time,
                "p_up": p_up,
                "p_down": p_down,
                "score": score,
            }),
        }
    }
}

/// The engine's handle: [`Triggers::signal`] never waits.
#[derive(Debug, Clone)]
pub struct Triggers {
    tx: mpsc::Sender<Trigger>,
    strategies: Arc<[String]>,
    /// `on_prediction_score`: |p_up - p_down| at least this triggers.
    min_score: Option<f64>,
    stats: Arc<Stats>,
}

impl Triggers {
    /// Hands `s`'s symbol to the analyst when its strategy is one of
    /// `on_signals`. Returns whether it was queued.
    pub fn signal(&self, s: &Signal) -> bool {
        if !self.strategies.iter().any(|w| **w == *s.strategy) {
            return false;
        }
        self.send(Trigger {
            symbol: s.symbol.as_str().to_owned(),
            source: s.strategy.clone(),
            interval: s.interval.as_str(),
            time: s.time,
            event: Event::Signal {
                action: s.action.as_str(),
                strength: s.strength,
                price: s.price,
            },
        })
    }

    /// Whether predictions are watched (`on_prediction_score`).
    pub fn wants_predictions(&self) -> bool {
        self.min_score.is_some()
    }

    /// Hands `stream`'s symbol to the analyst when `model`'s prediction
    /// `p` is decided enough: `|p_up - p_down| >= on_prediction_score`.
    pub fn prediction(&self, stream: &StreamKey, model: &str, time: i64, p: &Prediction) -> bool {
        let Some(min) = self.min_score else {
            return false;
        };
        let [down, _, up] = p.probs.map(f64::from);
        let score = up - down;
        // NaN scores (a model's warm-up) are never decided.
        if score.is_nan() || score.abs() < min {
            return false;
        }
        self.send(Trigger {
            symbol: stream.symbol.as_str().to_owned(),
            source: model.into(),
            interval: stream.interval.as_str(),
            time,
            event: Event::Prediction {
                p_up: up,
                p_down: down,
                score,
            },
        })
    }

    fn send(&self, t: Trigger) -> bool {
        match self.tx.try_send(t) {
            Ok(()) => true,
            Err(_) => {
                Stats::add(&self.stats.dropped_triggers, 1);
                false
            }
        }
    }
}

/// The engine's sink with the analyst's triggers and the models' latest
/// predictions kept on the side.
pub type AnalystSink = Tapped<Arc<dyn Sink>, AnalystTap>;

/// The analyst's side of an [`AnalystSink`].
pub struct AnalystTap {
    triggers: Option<Triggers>,
    predictions: Option<Arc<Predictions>>,
}

impl AnalystTap {
    /// `inner` with the triggers and the kept predictions on the side.
    pub fn wrap(
        inner: Arc<dyn Sink>,
        triggers: Option<Triggers>,
        predictions: Option<Arc<Predictions>>,
    ) -> AnalystSink {
        Tapped::new(
            inner,
            AnalystTap {
                triggers,
                predictions,
            },
        )
    }
}

impl SinkTap for AnalystTap {
    fn wants_signals(&self) -> bool {
        self.triggers.is_some()
    }
    fn signal(&self, signal: Signal) {
        if let Some(t) = &self.triggers {
            t.signal(&signal);
        }
    }
    fn wants_predictions(&self) -> bool {
        self.predictions.is_some()
            || self
                .triggers
                .as_ref()
                .is_some_and(Triggers::wants_predictions)
    }
    fn prediction(&self, stream: &StreamKey, model: &str, time: i64, p: &Prediction) {
        if let Some(kept) = &self.predictions {
            kept.record(stream, model, time, p.probs);
        }
        if let Some(t) = &self.triggers {
            t.prediction(stream, model, time, p);
        }
    }
}

/// A symbol to analyse: (symbol, trigger name, the triggering signal).
type Wanted = (String, String, Option<serde_json::Value>);

/// Where a stored analysis goes besides the store (the feed's `analysis`
/// frames). Must not block.
pub type Publish = Arc<dyn Fn(&Record) + Send + Sync>;

/// What the service reads and how often.
pub struct Plan {
    /// The engine's state (read for the context only).
    pub store: Arc<dyn StateStore>,
    /// The engine's streams.
    pub streams: Vec<StreamKey>,
    /// The symbols analysed on the schedule.
    pub symbols: Vec<String>,
    /// The engine's indicator spec.
    pub spec: String,
    /// Signals per strategy in the context.
    pub signals: usize,
    /// `None`: no schedule.
    pub every: Option<Duration>,
    pub cooldown: Duration,
    pub retention: Duration,
    pub retention_per_symbol: usize,
    /// The models' latest predictions (kept by [`AnalystSink`]), if any.
    pub predictions: Option<Arc<Predictions>>,
}

/// The analyst's task in `run`. Its channel's receiving end is kept
/// across restarts by the supervisor (what is queued is not lost when
/// the task fails).
pub struct Service {
    analyst: Arc<Analyst>,
    plan: Plan,
    rx: Mutex<mpsc::Receiver<Trigger>>,
    publish: Option<Publish>,
}

/// The service and the engine's handle for `on_signals` and
/// `on_prediction_score`.
pub fn service(
    analyst: Arc<Analyst>,
    plan: Plan,
    on_signals: Vec<String>,
    on_prediction_score: Option<f64>,
    publish: Option<Publish>,
) -> (Triggers, Arc<Service>) {
    let (tx, rx) = mpsc::channel(TRIGGER_QUEUE);
    let triggers = Triggers {
        tx,
        min_score: on_prediction_score,
        strategies: on_signals.into(),
        stats: analyst.stats().clone(),
    };
    let service = Service {
        analyst,
        plan,
        rx: Mutex::new(rx),
        publish,
    };
    (triggers, Arc::new(service))
}

impl Service {
    pub fn analyst(&self) -> &Arc<Analyst> {
        &self.analyst
    }

    /// Runs until `stop` turns true: the schedule and the triggers. A
    /// round in progress is abandoned at the stop (what was stored stays).
    ///
    /// # Errors
    /// [`AnalystError::Rocks`] when the results cannot be stored.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), AnalystError> {
        let mut rx = self.rx.lock().await;
        let mut next = self.plan.every.map(|e| tokio::time::Instant::now() + e);
        let mut last_triggered: HashMap<String, Instant> = HashMap::new();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let jobs: Vec<Wanted> = tokio::select! {
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() { return Ok(()); }
                    continue;
                }
                _ = sleep_until(next) => {
                    next = self.plan.every.map(|e| tokio::time::Instant::now() + e);
                    self.plan.symbols.iter().map(|s| (s.clone(), "schedule".to_owned(), None)).collect()
                }
                t = rx.recv() => {
                    let Some(first) = t else { return Ok(()) };
                    let mut all = vec![first];
                    while let Ok(t) = rx.try_recv() {
                        all.push(t);
                    }
                    let now = Instant::now();
                    let mut jobs: Vec<Wanted> = Vec::new();
                    for t in all {
                        let cooled = last_triggered
                            .get(&t.symbol)
                            .is_none_or(|at| now.duration_since(*at) >= self.plan.cooldown);
                        if cooled && !jobs.iter().any(|(s, _, _)| *s == t.symbol) {
                            let (name, context) = (t.name(), t.context());
                            jobs.push((t.symbol, name, Some(context)));
                        }
                    }
                    jobs
                }
            };
            if jobs.is_empty() {
                continue;
            }
            let started = Instant::now();
            let analysed = tokio::select! {
                r = self.round(jobs) => r?,
                _ = stop.changed() => return Ok(()),
            };
            // The cooldown starts for symbols analysed on an event (one
            // without data yet may be tried at its next signal).
            for (symbol, trigger) in analysed {
                if trigger.starts_with("signal:") {
                    last_triggered.insert(symbol, started);
                }
            }
        }
    }

    /// Builds each symbol's context and analyses them together; returns
    /// the (symbol, trigger) pairs that had a context.
    async fn round(&self, wanted: Vec<Wanted>) -> Result<Vec<(String, String)>, AnalystError> {
        if self.analyst.budget_reached() {
            Stats::add(&self.analyst.stats().skipped_budget, wanted.len() as u64);
            return Ok(Vec::new());
        }
        let store = self.plan.store.clone();
        let streams = self.plan.streams.clone();
        let spec = self.plan.spec.clone();
        let signals = self.plan.signals;
        let predictions = self.plan.predictions.clone();
        // RocksDB reads: off the async threads.
        let jobs = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .filter_map(|(symbol, trigger, event)| {
                    match context::build(
                        &*store,
                        &symbol,
                        &streams,
                        &spec,
                        signals,
                        predictions.as_deref(),
                    ) {
                        Ok(mut context) => Some(Job {
                            context: {
                                if let Some(e) = event {
                                    context["trigger"] = e;
                                }
                                context
                            },
                            symbol,
                            trigger,
                        }),
                        Err(e) => {
                            tracing::debug!(%symbol, "not analysed: {e}");
                            None
                        }
                    }
                })
                .collect::<Vec<Job>>()
        })
        .await
        .map_err(|e| {
            AnalystError::config("symbols", format!("building the contexts panicked: {e}"))
        })?;
        let analysed: Vec<(String, String)> = jobs
            .iter()
            .map(|j| (j.symbol.clone(), j.trigger.clone()))
            .collect();
        for (_, r) in self.analyst.analyze_all(jobs).await {
            match r {
                Ok(record) => {
                    if let (Some(publish), true) = (&self.publish, record.is_ok()) {
                        publish(&record);
                    }
                }
                Err(AnalystError::Budget { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let now = crate::analyst::unix_ms();
        let pruned = self.analyst.results().prune(
            now,
            self.plan.retention.as_millis() as i64,
            self.plan.retention_per_symbol,
        )?;
        if pruned > 0 {
            tracing::debug!(pruned, "old analyses deleted (retention)");
        }
        Ok(analysed)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The members of an `analysis` feed frame after `"type":"analysis",
/// "seq":N,`, its closing brace included (see [`crate::Record`]).
pub fn frame_body(r: &Record) -> Option<String> {
    let a = r.analysis.as_ref()?;
    let v = serde_json::json!({
        "symbol": r.symbol,
        "time": r.time,
        "model": r.model,
        "trigger": r.trigger,
        "bias": a.bias,
        "confidence": a.confidence,
        "horizon": a.horizon,
        "rationale": a.rationale,
        "risks": a.risks,
        "tokens_in": r.tokens_in,
        "tokens_out": r.tokens_out,
        "cost_usd": r.cost_usd,
    });
    let text = v.to_string();
    text.strip_prefix('{').map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use candlewick_pipeline::VecSink;
    use candlewick_plugins::Action;

    use super::*;

    fn signal(strategy: &str) -> Signal {
        Signal {
            id: format!("{strategy}:BTCUSDT:1m:60000"),
            strategy: strategy.into(),
            symbol: candlewick_market::Symbol::new("BTCUSDT").unwrap(),
            interval: "1m".parse().unwrap(),
            time: 60_000,
            action: Action::Sell,
            strength: -0.5,
            price: 10.5,
            stop_loss: None,
            take_profit: None,
            emitted_at_us: 7,
            ingest_ns: 0,
        }
    }

    #[test]
    fn the_sink_forwards_every_signal_and_triggers_only_wanted_ones_without_waiting() {
        let (tx, mut rx) = mpsc::channel(2);
        let stats = Arc::new(Stats::default());
        let triggers = Triggers {
            tx,
            strategies: vec!["sma_cross".to_owned()].into(),
            min_score: None,
            stats: stats.clone(),
        };
        let inner = Arc::new(VecSink::default());
        let sink = AnalystTap::wrap(inner.clone(), Some(triggers), None);
        for s in ["sma_cross", "rsi_reversion", "sma_cross", "sma_cross"] {
            sink.signal(signal(s));
        }
        assert_eq!(inner.take().len(), 4, "every signal goes on");
        // Two queued (the channel holds 2), one dropped and counted.
        assert_eq!(stats.dropped_triggers.load(Relaxed), 1);
        let t = rx.try_recv().unwrap();
        assert_eq!(
            (t.symbol.as_str(), t.name().as_str(), &t.event),
            (
                "BTCUSDT",
                "signal:sma_cross",
                &Event::Signal {
                    action: "sell",
                    strength: -0.5,
                    price: 10.5
                }
            )
        );
        assert_eq!(t.context()["time"], "1970-01-01 00:01:00");
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_err());

        // Nobody draining (the analyst busy, or its server down): the
        // workers' calls still return, every one, and only count drops.
        let (full, _rx) = mpsc::channel(1);
        let stats = Arc::new(Stats::default());
        let sink = AnalystTap::wrap(
            inner.clone(),
            Some(Triggers {
                tx: full,
                strategies: vec!["sma_cross".to_owned()].into(),
                min_score: None,
                stats: stats.clone(),
            }),
            None,
        );
        for _ in 0..10_000 {
            sink.signal(signal("sma_cross"));
        }
        assert_eq!(inner.take().len(), 10_000);
        assert_eq!(stats.dropped_triggers.load(Relaxed), 9_999);
    }

    #[test]
    fn a_decided_prediction_triggers_its_symbol() {
        let (tx, mut rx) = mpsc::channel(8);
        let triggers = Triggers {
            tx,
            strategies: Vec::new().into(),
            min_score: Some(0.5),
            stats: Arc::new(Stats::default()),
        };
        let sink = AnalystTap::wrap(Arc::new(VecSink::default()), Some(triggers), None);
        assert!(sink.wants_predictions());
        let key: StreamKey = "ETHUSDT/1h".parse().unwrap();
        // |0.5 - 0.25| < 0.5: not decided enough; then 0.1 vs 0.7: bearish.
        sink.prediction(
            &key,
            "lstm",
            1,
            &Prediction {
                probs: [0.25, 0.25, 0.5],
            },
        );
        sink.prediction(
            &key,
            "lstm",
            2,
            &Prediction {
                probs: [0.7, 0.2, 0.1],
            },
        );
        let t = rx.try_recv().unwrap();
        assert!(rx.try_recv().is_err());
        assert_eq!(
            (t.symbol.as_str(), t.name().as_str(), t.time),
            ("ETHUSDT", "prediction:lstm", 2)
        );
        let ctx = t.context();
        assert_eq!(ctx["model"], "lstm");
        assert!((ctx["score"].as_f64().unwrap() + 0.6).abs() < 1e-6, "{ctx}");
    }

    #[test]
    fn the_sink_keeps_the_models_latest_predictions_for_the_context() {
        let kept = Arc::new(Predictions::default());
        let inner = Arc::new(VecSink::default());
        let sink = AnalystTap::wrap(inner.clone(), None, Some(kept.clone()));
        assert!(sink.wants_predictions() && !inner.wants_predictions());
        let key: StreamKey = "BTCUSDT/1m".parse().unwrap();
        sink.prediction(
            &key,
            "lstm",
            60_000,
            &Prediction {
                probs: [0.2, 0.3, 0.5],
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let store = candlewick_state::Store::open(dir.path()).unwrap();
        let candle = candlewick_market::Candle {
            open_time: 60_000,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 1.0,
        };
        let mut c = candlewick_state::Checkpoint::new();
        c.plugin(
            candlewick_pipeline::TAIL_SNAPSHOT,
            &key,
            candlewick_pipeline::encode_tail([candle].iter()),
        );
        candlewick_state::StateStore::commit(&store, &c).unwrap();
        let ctx = context::build(&store, "BTCUSDT", &[key], "sma(2)", 5, Some(&kept)).unwrap();
        assert_eq!(ctx["streams"][0]["predictions"]["lstm"]["p_up"], 0.5);
        assert_eq!(ctx["streams"][0]["candles"]["count"], 1);
        assert_eq!(
            ctx["streams"][0]["indicators"],
            serde_json::json!({}),
            "sma(2) is warming up"
        );
    }
}
