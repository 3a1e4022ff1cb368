//! End-to-end latency on loopback: exchange simulator -> engine -> feed
//! client, against the floor of two bare tokio-tungstenite hops.
//!
//! Not a criterion bench (one run is a whole system); it prints
//! hdrhistogram quantiles:
//!
//! - `floor`: server -> relay -> client, two plain WebSocket hops: what any
//!   engine in the middle costs at least; one per engine case, in its shape
//!   (a step's frames written together), and one frame every 100 µs, the
//!   floor of earlier runs;
//! - `burst`: 1,000 symbols, every kline closing at once, one burst per
//!   100 ms (10,000 candles/s on average);
//! - `steady`: 10 symbols at 1,000 candles/s each (10,000 candles/s, evenly);
//! - `steady_lstm`: the same with the shipped LSTM
//!   (`models/artifacts/eurusd-1h-lstm`) predicting for every stream and
//!   `model_follow` acting on it beside the three strategies;
//! - `ceiling`: 1,000 symbols x 200 steps published at once, candles/s
//!   applied.
//!
//! For each engine case: `ingest->emit` (inside the engine: frame parsed to
//! signals/candles handed to the feed, from the engine's own histogram)
//! and `frame-in->frame-out` (the simulator publishing a step to the client
//! receiving that candle's frame).
//!
//! Run: `scripts/build-plugins && cargo bench -p candlewick-benches --bench latency`;
//! name cases after `--` to run only those (`-- burst steady`).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The benches' library also brings the allocator `candlewick` runs with.
use candlewick_benches::wasm_path;
use candlewick_feed::{FeedConfig, FeedState, Hub};
use candlewick_inference::NamedModel;
use candlewick_ingest::binance::{BinanceConfig, Connection};
use candlewick_ingest::Allowlist;
use candlewick_pipeline::{Clock, Engine, Health, Metrics, Pipeline, Stage, Strategy, LIVE_SPIN};
use candlewick_plugins::{HostConfig, PluginHost};
use candlewick_simulator::{SimConfig, Simulator};
use candlewick_state::{Store, StreamKey};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

type Hist = Histogram<u64>;

fn hist() -> Hist {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("constant bounds")
}

fn line(name: &str, h: &Hist) {
    println!(
        "{name:<34} n={:>8}  p50 {:>9.1} µs  p99 {:>9.1} µs  p99.9 {:>9.1} µs  max {:>9.1} µs",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3
    );
}

/// Two bare hops: server -> relay -> client, `steps` steps `period` apart
/// of `per_step` frames each, a step's frames written together: the shape
/// of the engine case it is the floor of (one frame every 100 µs, the
/// floor of earlier runs, is `floor(20_000, 1, 100 µs)`). Each frame is
/// about as long as a kline frame.
async fn floor(steps: usize, per_step: usize, period: Duration) -> Hist {
    let origin = Instant::now();
    let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server_addr = server.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = server.accept().await.expect("accept");
        let _ = tcp.set_nodelay(true);
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        let mut tick = tokio::time::interval(period);
        let pad = "x".repeat(250);
        for _ in 0..steps {
            tick.tick().await;
            let t = origin.elapsed().as_nanos() as u64;
            for _ in 0..per_step {
                ws.feed(Message::Text(
                    format!("{{\"t\":{t},\"pad\":\"{pad}\"}}").into(),
                ))
                .await
                .expect("send");
            }
            ws.flush().await.expect("flush");
        }
    });
    let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let relay_addr = relay.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = relay.accept().await.expect("accept");
        let _ = tcp.set_nodelay(true);
        let mut down = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        let (mut up, _) = tokio_tungstenite::connect_async(format!("ws://{server_addr}/"))
            .await
            .expect("connect");
        while let Some(Ok(m)) = up.next().await {
            if m.is_text() && down.send(m).await.is_err() {
                break;
            }
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{relay_addr}/"))
        .await
        .expect("connect");
    let mut h = hist();
    for _ in 0..steps * per_step {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            break;
        };
        let now = origin.elapsed().as_nanos() as u64;
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
        let sent = v["t"].as_u64().expect("t");
        h.saturating_record(now.saturating_sub(sent).max(1));
    }
    h
}

/// Prints an engine case's frame-in->frame-out p99 against each floor.
fn ratios(out: &Hist, floors: &[(&str, &Hist)]) {
    for (name, floor) in floors {
        let ratio =
            out.value_at_quantile(0.99) as f64 / floor.value_at_quantile(0.99).max(1) as f64;
        println!("  p99 ratio to the floor {name}: {ratio:.2}");
    }
}

/// The workers' latency mode: `CANDLEWICK_SPIN_US` (default 200, as
/// `engine.spin_us`); 0 sleeps at once.
fn spin() -> Duration {
    std::env::var("CANDLEWICK_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(LIVE_SPIN, Duration::from_micros)
}

/// A latency-mode switch, on unless its variable is `0`:
/// `CANDLEWICK_INLINE` (as `engine.inline`; 0 queues every candle for its
/// shard's worker), `CANDLEWICK_SMALL_PAGES` (as `engine.small_pages`; 0
/// leaves transparent huge pages on).
fn switch(var: &str) -> bool {
    std::env::var(var).map_or(true, |v| v != "0")
}

/// An engine wired as `candlewick run` wires it, over the simulator.
struct Rig {
    sim: Simulator,
    metrics: Arc<Metrics>,
    feed: SocketAddr,
    pipeline: Pipeline,
    connections: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Stops the exchange connections (the pipeline's routers), then
    /// joins the pipeline, which commits its last checkpoint and closes
    /// the store before its directory goes. A pipeline left running at
    /// exit had RocksDB's threads race the process's teardown ("pthread
    /// lock: Invalid argument", now and then).
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        for c in self.connections {
            let _ = c.await;
        }
        let pipeline = self.pipeline;
        tokio::task::spawn_blocking(move || pipeline.join())
            .await
            .expect("join task")
            .expect("pipeline");
    }
}

/// The shipped model, named as `model_follow` reads it.
fn shipped_lstm() -> NamedModel {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/artifacts/eurusd-1h-lstm"
    );
    NamedModel::load(Some("prediction"), std::path::Path::new(dir)).expect("shipped model")
}

async fn rig(symbols: usize, steps: usize, model: Option<NamedModel>) -> Rig {
    let sim = Simulator::start(SimConfig::symbols(symbols, steps), 0)
        .await
        .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    let keys: Vec<StreamKey> = sim
        .config()
        .symbols
        .iter()
        .map(|s| format!("{s}/1m").parse().expect("key"))
        .collect();
    let n = keys.len();
    let store = Arc::new(Store::open(dir.path().join("state")).expect("store"));
    let mut config = HostConfig::default();
    if let Some(us) = std::env::var("CANDLEWICK_EPOCH_TICK_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.epoch_tick = Duration::from_micros(us);
    }
    let host = PluginHost::new(config).expect("host");
    // The three example strategies, as the embedded default runs them.
    let mut names = vec!["sma_cross", "rsi_reversion", "bollinger_breakout"];
    if model.is_some() {
        names.push("model_follow");
    }
    let strategies: Vec<Strategy> = names
        .iter()
        .map(|name| Strategy::new(host.load_file(&wasm_path(name)).expect("plugin")))
        .collect();
    // Room for the whole ceiling run: a client dropped for lagging would
    // end it early and read as a slow engine.
    let clock = Clock::new();
    let hub = Hub::new(1 << 18, true).timed(clock);
    // As `candlewick run` by default (`Engine::live`): emit first,
    // checkpoint every second in the background, poll the queue before
    // sleeping.
    let (pipeline, router) = Engine::live(keys)
        .configure(|c| {
            c.workers = 2;
            c.queue_capacity = 8192;
            c.indicator_spec = "sma(20) rsi(14)".into();
            c.tail_bars = 64;
            c.spin = spin();
            c.inline = switch("CANDLEWICK_INLINE");
            c.small_pages = switch("CANDLEWICK_SMALL_PAGES");
        })
        .store(store)
        .models(model.into_iter().collect())
        .strategies(&host, &strategies)
        .sink(Arc::new(hub.clone()))
        .clock(clock)
        .start()
        .expect("pipeline");
    let metrics = pipeline.metrics().clone();
    let (stop_tx, stop) = watch::channel(false);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let feed = listener.local_addr().expect("addr");
    let state = FeedState::new(
        FeedConfig {
            tokens: vec!["bench".into()],
            client_queue: 1 << 18,
            ..FeedConfig::default()
        },
        hub,
        metrics.clone(),
        Arc::new(Health::new()),
        stop.clone(),
    );
    tokio::spawn(candlewick_feed::serve(listener, state));
    let allow = Allowlist::new(Vec::<String>::new(), true);
    let bc = Arc::new(BinanceConfig::new(&sim.ws_url(), &sim.rest_url(), &allow).expect("urls"));
    let mut connections = Vec::new();
    for (i, chunk) in bc.connections(router.table()).into_iter().enumerate() {
        let conn = Connection::new(i, bc.clone(), chunk, vec![None; n], router.clone(), clock)
            .expect("conn");
        let stop = stop.clone();
        connections.push(tokio::spawn(async move {
            if let Err(e) = conn.run(stop).await {
                eprintln!("exchange connection {i}: {e}");
            }
        }));
    }
    Rig {
        sim,
        metrics,
        feed,
        pipeline,
        connections,
        stop: stop_tx,
        _dir: dir,
    }
}

/// Publishes `steps` steps `period` apart; prints the engine's
/// ingest->emit quantiles; returns frame-in->frame-out and the wall time.
async fn drive(rig: &Rig, steps: usize, period: Duration) -> (Hist, Duration) {
    let symbols = rig.sim.config().symbols.len();
    let start_ms = rig.sim.config().start_ms;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/feed?token=bench", rig.feed))
            .await
            .expect("feed");
    ws.send(Message::Text(
        r#"{"op":"subscribe","symbols":["*"],"strategies":["*"],"candles":true}"#.into(),
    ))
    .await
    .expect("subscribe");
    ws.send(Message::Text(r#"{"op":"ping"}"#.into()))
        .await
        .expect("ping");
    while let Some(Ok(m)) = ws.next().await {
        if m.to_text().is_ok_and(|t| t.contains("pong")) {
            break;
        }
    }
    // Let the exchange connections come up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.metrics.reset_latency();
    let published: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; steps]));
    let first = rig.sim.published();
    let p = published.clone();
    let sim = rig.sim.clone();
    let started = Instant::now();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        for i in 0..steps {
            tick.tick().await;
            p.lock().expect("lock")[i] = Some(Instant::now());
            sim.publish(1);
        }
    });
    let mut out = hist();
    let mut candles = 0;
    while candles < steps * symbols {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            break;
        };
        let now = Instant::now();
        let v: serde_json::Value = serde_json::from_str(t.as_str()).expect("json");
        if v["type"] != "candle" {
            continue;
        }
        candles += 1;
        let step = ((v["time"].as_i64().expect("time") - start_ms) / 60_000) as usize - first;
        if let Some(Some(at)) = published.lock().expect("lock").get(step) {
            out.saturating_record(now.duration_since(*at).as_nanos() as u64);
        }
    }
    let wall = started.elapsed();
    if candles < steps * symbols {
        println!(
            "  the feed dropped the client after {candles} of {} candles: figures below are void",
            steps * symbols
        );
    }
    let show = |name: &str, l: candlewick_pipeline::LatencySummary| {
        println!(
            "  engine {name:<12} n={} p50 {:.1} µs p99 {:.1} µs p99.9 {:.1} µs max {:.1} µs",
            l.count,
            l.p50 as f64 / 1e3,
            l.p99 as f64 / 1e3,
            l.p999 as f64 / 1e3,
            l.max as f64 / 1e3
        );
    };
    show("ingest->emit", rig.metrics.latency());
    let c = &rig.metrics.counters;
    println!(
        "  batches run in place {}, queued behind a busy shard {}",
        c.inline_ran.load(Relaxed),
        c.inline_busy.load(Relaxed)
    );
    for stage in Stage::ALL {
        show(stage.name(), rig.metrics.stage(stage));
    }
    let d = &rig.metrics.durability;
    println!(
        "  checkpoints {} (deferred {}), the last copied in {} µs, written in {} µs",
        d.committed.load(Relaxed),
        d.deferred.load(Relaxed),
        d.last_build_us.load(Relaxed),
        d.last_commit_us.load(Relaxed)
    );
    (out, wall)
}

/// Whether the command line asks for `case` (`latency burst steady`): every
/// case when it names none. Cargo's own `--bench` flag is not a case.
fn wanted(case: &str) -> bool {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    named.is_empty() || named.iter().any(|n| n == case)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let even = floor(20_000, 1, Duration::from_micros(100)).await;
    line("floor: 2 bare ws hops, 1 frame/100 µs", &even);
    if wanted("burst") {
        let shaped = floor(80, 1000, Duration::from_millis(100)).await;
        line("floor: 1000 frames/100 ms", &shaped);
        burst(&[("as the burst", &shaped), ("1 frame/100 µs", &even)]).await;
    }
    for (case, model) in [("steady", false), ("steady_lstm", true)] {
        if wanted(case) {
            let shaped = floor(5000, 10, Duration::from_millis(1)).await;
            line("floor: 10 frames/1 ms", &shaped);
            let floors = [("as the steady case", &shaped), ("1 frame/100 µs", &even)];
            steady(&floors, model.then(shipped_lstm)).await;
        }
    }
    if wanted("ceiling") {
        ceiling().await;
    }
}

async fn burst(floors: &[(&str, &Hist)]) {
    println!("burst: 1000 symbols, 1 burst / 100 ms");
    let r = rig(1000, 80, None).await;
    let (out, _) = drive(&r, 80, Duration::from_millis(100)).await;
    line("burst frame-in->frame-out", &out);
    ratios(&out, floors);
    r.shutdown().await;
}

async fn steady(floors: &[(&str, &Hist)], model: Option<NamedModel>) {
    let with = if model.is_some() {
        ", shipped LSTM"
    } else {
        ""
    };
    println!("steady: 10 symbols x 1000 candles/s{with}");
    let r = rig(10, 6000, model).await;
    let (out, _) = drive(&r, 5000, Duration::from_millis(1)).await;
    line("steady frame-in->frame-out", &out);
    ratios(&out, floors);
    r.shutdown().await;
}

async fn ceiling() {
    println!("ceiling: 1000 symbols x 200 steps at once");
    let r = rig(1000, 200, None).await;
    let (_, wall) = drive(&r, 200, Duration::from_micros(1)).await;
    println!(
        "  {:.0} candles/s end to end (applied, committed, framed, received)",
        200_000.0 / wall.as_secs_f64()
    );
    r.shutdown().await;
}
