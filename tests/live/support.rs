//! Test support: the engine as a child process, feed clients, references.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candlewick_plugins::{HostConfig, Limits, PluginHost, PluginRunner, RestartPolicy};
use candlewick_simulator::Simulator;
use candlewick_state::{StateStore, Store, StreamKey, StreamState};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::process::Process;

/// Longest any wait may take before the test fails (a hang guard, not a
/// timing assertion).
const PATIENCE: Duration = Duration::from_secs(180);
pub const SPEC: &str = "sma(5) rsi(3)";

pub fn sma_cross_wasm() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/wasm/wasm32-unknown-unknown/release/sma_cross.wasm");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/build-plugins",
        p.display()
    );
    p
}

/// An engine config reading the simulator's Binance streams.
pub fn binance_config(
    sim: &Simulator,
    per_connection: usize,
    token: &str,
    client_queue: usize,
) -> String {
    let symbols: Vec<String> = sim
        .config()
        .symbols
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    format!(
        r#"
[engine]
workers = 2
queue_capacity = 1024
max_batch = 256
tail_bars = 64

[source]
kind = "binance"

[binance]
ws_url = "{ws}"
rest_url = "{rest}"
allowed_hosts = []
allow_loopback = true
symbols = [{symbols}]
intervals = ["1m"]
max_streams_per_connection = {per_connection}
idle_timeout_s = 1.0
start_from_ms = {start}

[indicators]
spec = "{SPEC}"

[[strategies]]
wasm = {wasm:?}
# Generous: tests run in parallel on busy machines, and a missed deadline
# (a quarantine, by design) would change the signals compared below.
deadline_ms = 250.0

[state]
path = "state"

[feed]
listen = "127.0.0.1:0"
tokens = ["{token}"]
client_queue = {client_queue}
candles = true
send_timeout_s = 120.0
"#,
        ws = sim.ws_url(),
        rest = sim.rest_url(),
        symbols = symbols.join(", "),
        start = sim.config().start_ms,
        wasm = sma_cross_wasm().display().to_string(),
    )
}

/// `candlewick run` as a child process, with the feed's address.
pub struct Engine {
    process: Process,
    pub addr: SocketAddr,
    /// How long a wait for a metric may take before the test fails.
    patience: Duration,
}

impl Engine {
    pub fn start(dir: &Path, config: &str) -> Engine {
        let process = Process::start(
            dir,
            "run",
            "engine.toml",
            config,
            "signal feed on ws://",
            PATIENCE,
        );
        let addr = process.addr();
        Engine {
            process,
            addr,
            patience: PATIENCE,
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// `/metrics` as name (without the `candlewick_` prefix) -> value.
    pub async fn metrics(&self) -> HashMap<String, u64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        body.lines()
            .filter_map(|l| l.strip_prefix("candlewick_"))
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_owned(), v.parse::<f64>().ok()? as u64))
            })
            .collect()
    }

    /// Waits for metrics up to `patience` instead of the default (a load
    /// that takes minutes by design).
    pub fn with_patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    pub async fn wait_metric(&self, name: &str, value: u64) {
        let v = self.wait_metric_at_least(name, value).await;
        assert_eq!(v, value, "{name} overshot:\n{}", self.log());
    }

    pub async fn wait_metric_at_least(&self, name: &str, value: u64) -> u64 {
        let start = Instant::now();
        loop {
            let v = self.metrics().await.get(name).copied().unwrap_or(0);
            if v >= value {
                return v;
            }
            assert!(
                start.elapsed() < self.patience,
                "{name} = {v} < {value}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM; the engine must drain and exit 0. Returns its log.
    pub fn terminate(mut self) -> String {
        let (status, log) = self.process.terminate();
        assert!(status.success(), "exit {status}:\n{log}");
        assert!(log.contains("SIGTERM: draining and stopping"), "{log}");
        log
    }

    /// SIGTERM for an engine sharing partitions by leases: it must exit 0,
    /// draining what it runs or, holding no partition at that moment (its
    /// lease lapsed while the bus was away and the others took them all),
    /// stopping while it waits for one. Returns its log.
    #[allow(dead_code)] // only the cluster tests share partitions
    pub fn terminate_leased(mut self) -> String {
        let (status, log) = self.process.terminate();
        assert!(status.success(), "exit {status}:\n{log}");
        assert!(
            log.contains("SIGTERM: draining and stopping") || log.contains("SIGTERM: stopping"),
            "{log}"
        );
        log
    }

    /// A resident-set field of `/proc/PID/status` in bytes (Linux):
    /// `VmRSS` (all of it) or `RssAnon` (heap, stacks, wasm memories:
    /// without the mapped binary, whose size depends on the build profile).
    pub fn resident(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id()))
            .expect("the engine is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// SIGSTOP (`pause = true`) or SIGCONT: the process freezes as a
    /// machine that stalls or drops off the network would, then goes on.
    pub fn pause(&self, pause: bool) {
        let status = std::process::Command::new("kill")
            .arg(if pause { "-STOP" } else { "-CONT" })
            .arg(self.process.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no chance to drain or checkpoint.
    pub fn kill9(mut self) {
        self.process.child.kill().unwrap();
        let _ = self.process.child.wait();
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A feed client that records what it receives.
pub struct Client {
    ws: Ws,
    pub seqs: Vec<u64>,
    pub ids: Vec<String>,
    sigs: Vec<(String, String)>,
    pub signal_count: usize,
    pub candle_count: usize,
    pub last_time: HashMap<String, i64>,
    /// Per symbol, the candle time of the last signal received.
    pub last_signal_time: HashMap<String, i64>,
    pub dropped: u64,
    pub lagged_errors: u64,
    pongs: u64,
}

impl Client {
    fn new(ws: Ws) -> Client {
        Client {
            ws,
            seqs: Vec::new(),
            ids: Vec::new(),
            sigs: Vec::new(),
            signal_count: 0,
            candle_count: 0,
            last_time: HashMap::new(),
            last_signal_time: HashMap::new(),
            dropped: 0,
            lagged_errors: 0,
            pongs: 0,
        }
    }

    pub async fn connect(addr: SocketAddr, token: &str, candles: bool) -> Client {
        Client::connect_since(addr, token, candles, None).await
    }

    /// A client that resumes: first the signals of candles from `since`
    /// on, then the live ones.
    pub async fn connect_since(
        addr: SocketAddr,
        token: &str,
        candles: bool,
        since: Option<i64>,
    ) -> Client {
        let url = format!("ws://{addr}/v1/feed?token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut c = Client::new(ws);
        c.subscribe_since(candles, since).await;
        c
    }

    /// A client whose socket receive buffer is tiny, so that not reading
    /// backs up into the server quickly.
    pub async fn connect_small_buffer(addr: SocketAddr, token: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let url = format!("ws://{addr}/v1/feed?token={token}");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        let mut c = Client::new(ws);
        c.subscribe(true).await;
        c
    }

    async fn subscribe(&mut self, candles: bool) {
        self.subscribe_since(candles, None).await;
    }

    async fn subscribe_since(&mut self, candles: bool, since: Option<i64>) {
        let since = since.map_or(String::new(), |t| format!(r#","since":{t}"#));
        let sub = format!(
            r#"{{"op":"subscribe","symbols":["*"],"strategies":["*"],"candles":{candles}{since}}}"#
        );
        self.ws.send(Message::Text(sub.into())).await.unwrap();
    }

    /// The earliest, over symbols, of the last signal's candle time seen:
    /// resuming from it misses nothing (a stream's signals come in time
    /// order). `None` until every symbol has had a signal.
    pub fn resume_point(&self, symbols: &[String]) -> Option<i64> {
        symbols
            .iter()
            .map(|s| self.last_signal_time.get(s).copied())
            .collect::<Option<Vec<i64>>>()
            .and_then(|t| t.into_iter().min())
    }

    /// Sends a ping and reads until its pong: the server has applied every
    /// earlier message of this client.
    pub async fn ping(&mut self) {
        self.ws
            .send(Message::Text(r#"{"op":"ping"}"#.into()))
            .await
            .unwrap();
        let before = self.pongs;
        self.read_until(|c| c.pongs > before).await;
    }

    /// Signals received: id -> "action strength".
    pub fn signals(&self) -> BTreeMap<String, String> {
        self.sigs.iter().cloned().collect()
    }

    /// Signals received, in order of arrival: (id, "action strength").
    pub fn signals_in_order(&self) -> &[(String, String)] {
        &self.sigs
    }

    pub async fn read_until(&mut self, mut done: impl FnMut(&Client) -> bool) {
        let start = Instant::now();
        while !done(self) {
            let left = PATIENCE.saturating_sub(start.elapsed());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .expect("feed went quiet before the expected frames arrived");
            match msg {
                Some(Ok(Message::Text(t))) => self.on_text(t.as_str()),
                Some(Ok(_)) => {}
                other => panic!("feed ended: {other:?}"),
            }
        }
    }

    /// Reads until every symbol's last candle has arrived.
    pub async fn wait_for_symbols_done(&mut self, sim: &Simulator) {
        let symbols = sim.config().symbols.clone();
        let last = sim.candles(0).last().unwrap().open_time;
        self.read_until(|c| symbols.iter().all(|s| c.last_time.get(s) == Some(&last)))
            .await;
    }

    /// Reads everything until the engine closes the feed (a healthy client
    /// that never falls behind); returns itself with what it counted.
    pub async fn read_to_end(mut self) -> Client {
        while let Some(Ok(msg)) = self.ws.next().await {
            if let Message::Text(t) = msg {
                self.on_text(t.as_str());
            }
        }
        self
    }

    /// Reads what arrives until the feed is quiet for a moment.
    pub async fn drain_now(&mut self) {
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_millis(300), self.ws.next()).await
        {
            if let Message::Text(t) = msg {
                self.on_text(t.as_str());
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let str_of = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        match v["type"].as_str() {
            Some("signal") => {
                self.seqs.push(v["seq"].as_u64().unwrap());
                self.ids.push(str_of("id"));
                let strength = v["strength"].as_f64().unwrap();
                let content = format!("{} {strength}", str_of("action"));
                self.sigs.push((str_of("id"), content));
                self.signal_count += 1;
                self.last_signal_time
                    .insert(str_of("symbol"), v["time"].as_i64().unwrap());
            }
            Some("candle") => {
                self.seqs.push(v["seq"].as_u64().unwrap());
                self.candle_count += 1;
                self.last_time
                    .insert(str_of("symbol"), v["time"].as_i64().unwrap());
            }
            Some("error") if v["code"] == "lagged" => {
                self.lagged_errors += 1;
                self.dropped += v["dropped"].as_u64().unwrap();
            }
            Some("pong") => self.pongs += 1,
            _ => panic!("unexpected frame {text}"),
        }
    }
}

/// The HTTP status of a feed handshake (101 = upgraded).
pub async fn handshake_status(url: &str, bearer: Option<&str>) -> u16 {
    let mut request = url.into_client_request().unwrap();
    if let Some(t) = bearer {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, response)) => {
            let _ = ws.close(None).await;
            response.status().as_u16()
        }
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

pub fn assert_gapless(seqs: &[u64]) {
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert!(seqs == want.as_slice(), "seq is not 1..={}", seqs.len());
}

/// Each stream's committed state equals applying every candle once.
pub fn assert_state_is_every_candle_once(dir: &Path, sim: &Simulator) {
    let store = Store::open(dir.join("state")).unwrap();
    for (i, symbol) in sim.config().symbols.iter().enumerate() {
        let key: StreamKey = format!("{symbol}/1m").parse().unwrap();
        let state = store.load(&key, SPEC).unwrap();
        let mut fresh = StreamState::new(key.clone(), SPEC).unwrap();
        let mut out = vec![0.0; fresh.set().width()];
        for c in sim.candles(i) {
            fresh.apply(c, &mut out).unwrap();
        }
        assert_eq!(state.set().applied(), sim.candles(i).len() as u64, "{key}");
        assert!(
            state == fresh,
            "{key}: state differs from one application of each candle"
        );
    }
}

/// What sma_cross says over each symbol's candles in one straight pass
/// (the backtest path): id -> "action strength".
pub fn reference_signals(sim: &Simulator) -> BTreeMap<String, String> {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let module = host.load_file(&sma_cross_wasm()).unwrap();
    let mut out = BTreeMap::new();
    for (i, symbol) in sim.config().symbols.iter().enumerate() {
        let mut runner = PluginRunner::new(
            &host,
            module.clone(),
            &[] as &[(&str, &str)],
            Limits {
                deadline: Duration::from_millis(250),
                ..Limits::default()
            },
            RestartPolicy::default(),
        )
        .unwrap();
        let candles = sim.candles(i);
        for c in candles {
            runner.push(c, &[]);
        }
        for s in runner.flush() {
            let id =
                candlewick_pipeline::signal_id("sma_cross", symbol, "1m", candles[s.bar].open_time);
            out.insert(id, format!("{} {}", s.action.as_str(), s.strength));
        }
    }
    out
}

/// Random kill points: `next(n)` in `0..n`, from a xorshift generator seeded
/// by the clock. The seed is printed, so that a failing run can be followed.
pub fn kill_points() -> impl FnMut(u64) -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill points from seed {seed}");
    let mut rng = seed | 1;
    move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    }
}

/// Adds the signals `c` received to `got` (id -> content): each id at most
/// once on one connection, and a repeat on another connection only with the
/// same content.
pub fn record_signals(c: &Client, got: &mut BTreeMap<String, String>) {
    let mut once = std::collections::BTreeSet::new();
    for (id, content) in c.signals_in_order() {
        assert!(once.insert(id.clone()), "{id} sent twice on one connection");
        if let Some(before) = got.insert(id.clone(), content.clone()) {
            assert_eq!(&before, content, "{id} came again with other content");
        }
    }
}
