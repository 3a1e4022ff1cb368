//! Model outputs reach strategies: the `model_follow` plugin in the
//! pipeline, on the bundled data, against a native reference computed with
//! the models crate alone; a missing model; restart mid-stream.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use candlewick_inference::NamedModel;
use candlewick_market::Candle;
use candlewick_models::{
    train, ArchKind, Device, FeatureSpec, FeatureWindow, LabelRule, Predictor, TrainConfig,
};
use candlewick_pipeline::{
    CandleEvent, CheckpointPolicy, Engine, PipelineError, Prediction, Signal, Sink, Strategy,
    VecSink,
};
use candlewick_plugins::{Action, HostConfig, Limits, PluginHost, RestartPolicy};
use candlewick_state::{MemoryStore, StateStore, StreamKey};
use common::{eurusd as candles, wasm};

const STREAMS: [&str; 2] = ["EURUSD/1h", "GBPUSD/1h"];
/// Stream `s` replays the bundled data from bar `SHIFT * s` on.
const SHIFT: usize = 150;
const BARS: usize = 600;

/// A tiny LSTM (2 epochs) whose labels split up from down at 0, so its
/// p(up) moves around 0.5 and `model_follow` has something to follow.
fn tiny_model(root: &Path) -> NamedModel {
    let dir = root.join("tiny");
    let spec = FeatureSpec::parse("logret range rsi(14)").unwrap();
    let cfg = TrainConfig {
        labels: LabelRule {
            horizon: 1,
            up: 0.0,
            down: 0.0,
        },
        ..candlewick_models::testing::tiny_config(ArchKind::Lstm, 12)
    };
    train::train(
        &candles(800),
        "EURUSD-1h.csv",
        "tiny",
        &spec,
        &cfg,
        &mut |_| {},
    )
    .unwrap()
    .save(&dir)
    .unwrap();
    NamedModel::load(Some("prediction"), &dir).unwrap()
}

fn model_follow(host: &PluginHost) -> Strategy {
    let mut s = Strategy::new(host.load_file(&wasm("model_follow")).unwrap());
    s.params = vec![("threshold".into(), "0.5".into())];
    // A generous deadline: a debug build on a busy machine must not
    // quarantine the plugin and skip bars.
    s.limits = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    s.policy = RestartPolicy::default();
    s
}

/// What a feed would publish: signals, and each prediction as
/// (symbol, candle time, p_up).
#[derive(Default)]
struct Recorder {
    signals: VecSink,
    predictions: Mutex<Vec<(String, i64, f64)>>,
}

impl Sink for Recorder {
    fn signal(&self, s: Signal) {
        self.signals.signal(s);
    }

    fn wants_predictions(&self) -> bool {
        true
    }

    fn prediction(&self, stream: &StreamKey, _model: &str, time: i64, p: &Prediction) {
        let p_up = f64::from(p.probs[2]);
        let record = (stream.symbol.to_string(), time, p_up);
        self.predictions.lock().unwrap().push(record);
    }
}

/// Runs `bars[s]` of each stream `s` through a fresh pipeline on `store`.
fn run(
    store: Arc<MemoryStore>,
    model: Option<&NamedModel>,
    bars: &[&[Candle]],
) -> Result<Vec<Signal>, PipelineError> {
    run_recording(store, model, bars).map(|(signals, _)| signals)
}

/// [`run`], also returning the predictions the sink was handed.
#[allow(clippy::type_complexity)] // a test's plain tuple
fn run_recording(
    store: Arc<MemoryStore>,
    model: Option<&NamedModel>,
    bars: &[&[Candle]],
) -> Result<(Vec<Signal>, Vec<(String, i64, f64)>), PipelineError> {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let keys = STREAMS.iter().map(|k| k.parse().unwrap()).collect();
    let sink = Arc::new(Recorder::default());
    let strategy = model_follow(&host);
    let (pipeline, router) = Engine::live(keys)
        .configure(|c| {
            c.max_batch = 7;
            // Only the checkpoint taken as the pipeline stops: a restart
            // on the same store resumes from it.
            c.checkpoint = CheckpointPolicy::Every {
                interval: std::time::Duration::from_secs(3600),
                max_candles: u64::MAX,
            };
        })
        .models(model.into_iter().cloned().collect())
        .store(store as Arc<dyn StateStore>)
        .strategies(&host, std::slice::from_ref(&strategy))
        .sink(sink.clone())
        .start()?;
    let ids: Vec<_> = router.table().ids().collect();
    let longest = bars.iter().map(|b| b.len()).max().unwrap_or(0);
    for i in 0..longest {
        for (s, b) in bars.iter().enumerate() {
            if let Some(c) = b.get(i) {
                router
                    .route(CandleEvent {
                        stream: ids[s],
                        candle: *c,
                        ingest_ns: 0,
                    })
                    .unwrap();
            }
        }
    }
    drop(router);
    let metrics = pipeline.metrics().clone();
    let reports = pipeline.join()?;
    let predictions: u64 = reports.iter().map(|r| r.predictions).sum();
    let applied: u64 = reports.iter().map(|r| r.applied).sum();
    assert!(predictions > 0);
    // Every applied bar is counted once: predicted, or not (warm-up).
    let c = &metrics.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(load(&c.model_predictions), predictions);
    assert_eq!(
        load(&c.model_predictions) + load(&c.model_no_prediction),
        applied
    );
    assert_eq!(load(&c.model_failed_forwards), 0);
    let predictions = std::mem::take(&mut *sink.predictions.lock().unwrap());
    assert_eq!(predictions.len() as u64, predictions_total(&reports));
    Ok((sink.signals.take(), predictions))
}

fn predictions_total(reports: &[candlewick_pipeline::WorkerReport]) -> u64 {
    reports.iter().map(|r| r.predictions).sum()
}

/// `model_follow` natively, over p(up) from the models crate's own
/// `Predictor`, one window per bar: `(time, action, strength)`.
fn reference(model: &NamedModel, bars: &[Candle]) -> Vec<(i64, Action, f64)> {
    let a = model.artifact();
    let mut predictor = Predictor::new(a, Device::Cpu).unwrap();
    let mut window = FeatureWindow::new(a.features(), a.window()).unwrap();
    let mut side = 0i8;
    let mut out = Vec::new();
    for c in bars {
        window.push(c);
        let Ok(p) = predictor.predict(&[window.rows()]).unwrap()[0] else {
            continue;
        };
        let p = f64::from(p.probs[2]);
        let new = if p > 0.5 {
            1
        } else if p < 0.5 {
            -1
        } else {
            0
        };
        if new != side {
            side = new;
            let (action, strength) = match new {
                1 => (Action::Buy, 2.0 * p - 1.0),
                -1 => (Action::Sell, 2.0 * p - 1.0),
                _ => (Action::Exit, 0.0),
            };
            out.push((c.open_time, action, strength));
        }
    }
    out
}

fn of_stream(signals: &[Signal], symbol: &str) -> Vec<(i64, Action, f64)> {
    let mut v: Vec<_> = signals
        .iter()
        .filter(|s| s.symbol.as_str() == symbol)
        .map(|s| (s.time, s.action, s.strength))
        .collect();
    v.sort_by_key(|s| s.0);
    v
}

fn stream_bars(data: &[Candle]) -> Vec<&[Candle]> {
    (0..STREAMS.len())
        .map(|s| &data[SHIFT * s..SHIFT * s + BARS])
        .collect()
}

#[test]
fn model_follow_in_the_pipeline_equals_the_native_reference_and_survives_restart() {
    let root = tempfile::tempdir().unwrap();
    let model = tiny_model(root.path());
    let data = candles(SHIFT * STREAMS.len() + BARS);
    let bars = stream_bars(&data);

    let all = run(Arc::new(MemoryStore::new()), Some(&model), &bars).unwrap();
    for (s, key) in STREAMS.iter().enumerate() {
        let symbol = key.split('/').next().unwrap();
        let got = of_stream(&all, symbol);
        let want = reference(&model, bars[s]);
        assert!(
            want.len() > 20,
            "{symbol}: the reference should flip often, got {}",
            want.len()
        );
        // Same code path (FeatureWindow + Predictor, the LSTM's rows are
        // independent of the batch): bit-equal strengths.
        assert_eq!(got.len(), want.len(), "{symbol}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!((g.0, g.1), (w.0, w.1), "{symbol}");
            assert_eq!(g.2.to_bits(), w.2.to_bits(), "{symbol} at {}", g.0);
        }
    }

    // Stop after 250 bars, start again on the same store: the signals
    // after the cut are the uninterrupted run's, bit for bit.
    let cut = 250;
    let store = Arc::new(MemoryStore::new());
    let first: Vec<&[Candle]> = bars.iter().map(|b| &b[..cut]).collect();
    let rest: Vec<&[Candle]> = bars.iter().map(|b| &b[cut..]).collect();
    let mut before = run(store.clone(), Some(&model), &first).unwrap();
    let after = run(store, Some(&model), &rest).unwrap();
    before.extend(after);
    for key in STREAMS {
        let symbol = key.split('/').next().unwrap();
        let resumed = of_stream(&before, symbol);
        let whole = of_stream(&all, symbol);
        assert_eq!(resumed.len(), whole.len(), "{symbol}");
        for (r, w) in resumed.iter().zip(&whole) {
            assert_eq!(
                (r.0, r.1, r.2.to_bits()),
                (w.0, w.1, w.2.to_bits()),
                "{symbol}"
            );
        }
    }
}

#[test]
fn a_strategy_needing_a_model_that_is_not_configured_is_refused() {
    let data = candles(10);
    let e = run(Arc::new(MemoryStore::new()), None, &[&data[..]]).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, PipelineError::Model { .. }), "{text}");
    assert!(
        text.contains("model_follow") && text.contains("\"prediction\""),
        "{text}"
    );
}

/// What the feed publishes as `prediction` frames is what the models crate
/// alone predicts over the same windows, bit for bit.
#[test]
fn predictions_reach_the_sink_equal_to_the_predictor() {
    let root = tempfile::tempdir().unwrap();
    let model = tiny_model(root.path());
    let data = candles(SHIFT * STREAMS.len() + BARS);
    let bars = stream_bars(&data);
    let (_, predictions) =
        run_recording(Arc::new(MemoryStore::new()), Some(&model), &bars).unwrap();
    for (s, key) in STREAMS.iter().enumerate() {
        let symbol = key.split('/').next().unwrap();
        let mut got: Vec<(i64, u64)> = predictions
            .iter()
            .filter(|p| p.0 == symbol)
            .map(|p| (p.1, p.2.to_bits()))
            .collect();
        got.sort_unstable();
        let a = model.artifact();
        let mut predictor = Predictor::new(a, Device::Cpu).unwrap();
        let mut window = FeatureWindow::new(a.features(), a.window()).unwrap();
        let mut want = Vec::new();
        for c in bars[s] {
            window.push(c);
            if let Ok(p) = predictor.predict(&[window.rows()]).unwrap()[0] {
                want.push((c.open_time, f64::from(p.probs[2]).to_bits()));
            }
        }
        assert!(
            want.len() > BARS / 2,
            "{symbol}: {} predictions",
            want.len()
        );
        assert_eq!(got, want, "{symbol}");
    }
}
