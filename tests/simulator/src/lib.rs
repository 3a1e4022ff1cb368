//! # An exchange on loopback
//!
//! A real WebSocket + HTTP server speaking the parts of Binance's public
//! market data the engine uses (see `shared/BINANCE.md`): combined kline
//! streams at `/stream?streams=a/b/...` and `GET /api/v3/klines`. It
//! replays deterministic synthetic candles for many symbols, one *step*
//! (every symbol's candle closing at once, a burst) at a time, at a chosen
//! rate, and injects faults on a schedule so that tests can count what
//! must survive them:
//!
//! - `disconnect_every`: drop the TCP connection (no close frame) after this
//!   many kline frames on it, possibly mid-burst;
//! - `malformed_every`: send a frame that is not JSON;
//! - `duplicate_every`: send a closed kline twice;
//! - `out_of_order_every`: re-send the previous step's kline after the
//!   current one;
//! - `stall_every` / `stall_for`: go silent (connection open) for a while,
//!   every `stall_every` kline frames over all connections.
//!
//! REST only ever returns candles of published steps, so the engine can
//! backfill exactly what the stream lost. Like Binance, a new connection
//! gets only steps published after it connected.
//!
//! REST speaks Binance's rate limits and can be told to misbehave:
//!
//! - every answer carries `X-MBX-USED-WEIGHT-1M`, the weight (2 per
//!   request) used in the current window of [`SimConfig::weight_window`]
//!   (aligned to the epoch, as Binance's minutes are); past
//!   [`SimConfig::weight_limit`] the answer is 429 with `Retry-After`;
//! - [`SimConfig::missing`]: steps the exchange has no klines for (a
//!   trading halt): REST skips them, streams still send them;
//! - [`Simulator::rest_fault_at`] / [`Simulator::rest_fault_from`]: scripted
//!   answers to chosen requests (429/418 with `Retry-After`, a 500, or a
//!   connection dropped in the middle of the body).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use candlewick_market::Candle;
use futures_util::SinkExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Fault schedule; `None` disables each. Counts are kline frames per
/// connection, except `stall_every` (over all connections, since a stall
/// longer than the engine's idle timeout ends the connection).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub disconnect_every: Option<u64>,
    pub malformed_every: Option<u64>,
    pub duplicate_every: Option<u64>,
    pub out_of_order_every: Option<u64>,
    pub stall_every: Option<u64>,
    pub stall_for: Duration,
    /// Send a forming (`x:false`) update before each closed kline.
    pub forming: bool,
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Upper-case symbols, e.g. `SYM0000USDT`.
    pub symbols: Vec<String>,
    /// Candles per symbol (steps).
    pub steps: usize,
    /// Steps per second; 0 publishes nothing until [`Simulator::publish`].
    pub rate: f64,
    pub faults: Faults,
    /// Open time of the first candle (ms); interval is 1m.
    pub start_ms: i64,
    /// Steps REST has no klines for, as in a trading halt.
    pub missing: Vec<Range<usize>>,
    /// Weight a window allows before answering 429 (Binance: 6000).
    pub weight_limit: u32,
    /// Length of a weight window (Binance: one minute).
    pub weight_window: Duration,
}

/// A scripted REST answer in place of the klines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestFault {
    /// This status with `{"code":..,"msg":..}`, and `Retry-After` if given.
    Status {
        code: u16,
        retry_after_s: Option<u64>,
    },
    /// Start the body, then drop the connection before it ends.
    Drop,
}

/// Which requests get a [`RestFault`], by 1-based request number.
#[derive(Debug, Default)]
struct RestScript {
    at: BTreeMap<u64, RestFault>,
    from: Option<(u64, RestFault)>,
}

impl RestScript {
    fn fault(&self, request: u64) -> Option<RestFault> {
        self.at.get(&request).copied().or(self
            .from
            .filter(|(first, _)| request >= *first)
            .map(|(_, f)| f))
    }
}

/// Weight used in the current window: (window index, weight).
#[derive(Debug, Default)]
struct Weight {
    window: i64,
    used: u32,
}

impl SimConfig {
    /// `n` symbols named `S0000USDT`.. with `steps` candles each.
    pub fn symbols(n: usize, steps: usize) -> Self {
        SimConfig {
            symbols: (0..n).map(|i| format!("S{i:04}USDT")).collect(),
            steps,
            rate: 0.0,
            faults: Faults::default(),
            start_ms: 1_699_999_980_000, // on the 1m grid, like every real kline
            missing: Vec::new(),
            weight_limit: 6000,
            weight_window: Duration::from_secs(60),
        }
    }
}

/// Counters of what the simulator did.
#[derive(Debug, Default)]
pub struct SimStats {
    pub connections: AtomicU64,
    pub kline_frames: AtomicU64,
    pub disconnects: AtomicU64,
    pub malformed: AtomicU64,
    pub duplicates: AtomicU64,
    pub out_of_order: AtomicU64,
    pub stalls: AtomicU64,
    pub rest_requests: AtomicU64,
    /// 429 and 418 answers, scripted or earned.
    pub rate_limited: AtomicU64,
    /// Scripted 500s and dropped connections.
    pub rest_failures: AtomicU64,
    /// Most weight reported in one window.
    pub max_weight: AtomicU64,
}

struct Shared {
    config: SimConfig,
    /// `data[symbol][step]`.
    data: Vec<Vec<Candle>>,
    by_name: HashMap<String, usize>,
    published: watch::Sender<usize>,
    stats: SimStats,
    script: Mutex<RestScript>,
    weight: Mutex<Weight>,
}

/// A running simulator; dropping it does not stop the server (call
/// [`Simulator::publish`] to drive it, and let the runtime end).
#[derive(Clone)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// The deterministic candle `step` of symbol number `sym`: a wavy series
/// with several SMA crosses per 100 bars, different per symbol.
pub fn candle(sym: usize, step: usize, start_ms: i64) -> Candle {
    let x = step as f64 + sym as f64 * 13.0;
    let close = 100.0 + sym as f64 + 10.0 * (x / 7.0).sin() + 3.0 * (x / 2.3).cos();
    Candle {
        open_time: start_ms + 60_000 * step as i64,
        open: close - 0.5,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume: 10.0 + (step % 17) as f64,
    }
}

impl Simulator {
    /// Binds 127.0.0.1:`port` (0: any) and starts serving and publishing.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn start(config: SimConfig, port: u16) -> std::io::Result<Simulator> {
        let data = (0..config.symbols.len())
            .map(|s| {
                (0..config.steps)
                    .map(|i| candle(s, i, config.start_ms))
                    .collect()
            })
            .collect();
        let by_name = config
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("{}@kline_1m", s.to_ascii_lowercase()), i))
            .collect();
        let (published, _) = watch::channel(0usize);
        let shared = Arc::new(Shared {
            config,
            data,
            by_name,
            published,
            stats: SimStats::default(),
            script: Mutex::default(),
            weight: Mutex::default(),
        });
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/stream", get(stream))
            .route("/api/v3/klines", get(klines))
            .with_state(shared.clone());
        // As an exchange's servers do: a kline is written when it closes,
        // not held back by Nagle's algorithm for the next one.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let sim = Simulator { addr, shared };
        if sim.shared.config.rate > 0.0 {
            sim.play(sim.shared.config.rate);
        }
        Ok(sim)
    }

    /// Publishes one step every `1 / rate` seconds until the data ends.
    pub fn play(&self, rate: f64) {
        self.play_to(rate, self.shared.config.steps);
    }

    /// Publishes one step every `1 / rate` seconds until `until` steps are
    /// published (or the data ends).
    pub fn play_to(&self, rate: f64, until: usize) {
        let s = self.clone();
        let until = until.min(self.shared.config.steps);
        tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate.max(1e-3));
            let mut tick = tokio::time::interval(period);
            while s.published() < until {
                tick.tick().await;
                s.publish(1);
            }
        });
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Publishes `n` more steps (clamped to the data).
    pub fn publish(&self, n: usize) {
        let steps = self.shared.config.steps;
        self.shared
            .published
            .send_modify(|p| *p = (*p + n).min(steps));
    }

    pub fn published(&self) -> usize {
        *self.shared.published.borrow()
    }

    pub fn stats(&self) -> &SimStats {
        &self.shared.stats
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Every candle of symbol number `sym`.
    pub fn candles(&self, sym: usize) -> &[Candle] {
        &self.shared.data[sym]
    }

    /// The candles of symbol number `sym` that REST serves once every step
    /// is published: all but the [`SimConfig::missing`] steps.
    pub fn rest_candles(&self, sym: usize) -> Vec<Candle> {
        let missing = &self.shared.config.missing;
        self.shared.data[sym]
            .iter()
            .enumerate()
            .filter(|(i, _)| !missing.iter().any(|r| r.contains(i)))
            .map(|(_, c)| *c)
            .collect()
    }

    /// Answers REST request number `request` (1-based, counting every
    /// klines request) with `fault` instead.
    pub fn rest_fault_at(&self, request: u64, fault: RestFault) {
        self.script().at.insert(request, fault);
    }

    /// Answers every REST request from number `request` on with `fault`,
    /// until [`Simulator::clear_rest_faults`]: an outage.
    pub fn rest_fault_from(&self, request: u64, fault: RestFault) {
        self.script().from = Some((request, fault));
    }

    /// Ends every scripted REST fault.
    pub fn clear_rest_faults(&self) {
        *self.script() = RestScript::default();
    }

    fn script(&self) -> std::sync::MutexGuard<'_, RestScript> {
        // The script is plain data: a panic elsewhere cannot leave it torn.
        self.shared
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    streams: String,
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let mut subs = Vec::new();
    for name in q.streams.split('/') {
        match shared.by_name.get(name) {
            Some(&i) => subs.push(i),
            None => {
                return (StatusCode::BAD_REQUEST, format!("unknown stream {name}")).into_response()
            }
        }
    }
    ws.on_upgrade(move |socket| connection(socket, shared, subs))
}

fn kline_frame(symbol: &str, c: &Candle, closed: bool) -> String {
    format!(
        "{{\"stream\":\"{}@kline_1m\",\"data\":{{\"e\":\"kline\",\"E\":{},\"s\":\"{symbol}\",\"k\":{{\"t\":{},\"T\":{},\"s\":\"{symbol}\",\"i\":\"1m\",\"f\":1,\"L\":2,\"o\":\"{}\",\"c\":\"{}\",\"h\":\"{}\",\"l\":\"{}\",\"v\":\"{}\",\"n\":2,\"x\":{closed},\"q\":\"0\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\"}}}}}}",
        symbol.to_ascii_lowercase(),
        c.open_time + 60_000,
        c.open_time,
        c.open_time + 59_999,
        c.open,
        c.close,
        c.high,
        c.low,
        c.volume,
    )
}

fn every(n: u64, k: Option<u64>) -> bool {
    k.is_some_and(|k| k > 0 && n % k == 0)
}

async fn connection(mut socket: WebSocket, shared: Arc<Shared>, subs: Vec<usize>) {
    let stats = &shared.stats;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let f = &shared.config.faults;
    let mut published = shared.published.subscribe();
    let mut cursor = *published.borrow();
    let mut sent = 0u64;
    loop {
        if published.wait_for(|p| *p > cursor).await.is_err() {
            return;
        }
        for &sym in &subs {
            let name = &shared.config.symbols[sym];
            let c = &shared.data[sym][cursor];
            sent += 1;
            // This frame's number over all connections: each number is
            // seen by exactly one sender, so with several connections open
            // at once (a reconnect overlapping the dying one) no stall is
            // skipped, as re-reading the counter after sending could.
            let global = stats.kline_frames.fetch_add(1, Ordering::Relaxed) + 1;
            let mut frames = Vec::with_capacity(4);
            if every(sent, f.malformed_every) {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                frames.push("{\"stream\":\"garbage".to_owned());
            }
            if f.forming {
                frames.push(kline_frame(name, c, false));
            }
            frames.push(kline_frame(name, c, true));
            if every(sent, f.duplicate_every) {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                frames.push(kline_frame(name, c, true));
            }
            if cursor > 0 && every(sent, f.out_of_order_every) {
                stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                frames.push(kline_frame(name, &shared.data[sym][cursor - 1], true));
            }
            // A step's frames go out in as few writes as the socket's
            // buffer allows, as a server with a thousand klines to send at
            // the close of a minute writes them; what was written before a
            // stall or a drop is flushed first.
            for text in frames {
                if socket.feed(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            if every(global, f.stall_every) {
                stats.stalls.fetch_add(1, Ordering::Relaxed);
                let _ = socket.flush().await;
                tokio::time::sleep(f.stall_for).await;
            }
            if every(sent, f.disconnect_every) {
                stats.disconnects.fetch_add(1, Ordering::Relaxed);
                let _ = socket.flush().await;
                // Dropped without a close frame: an abrupt loss.
                return;
            }
        }
        if socket.flush().await.is_err() {
            return;
        }
        cursor += 1;
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct KlinesQuery {
    symbol: String,
    interval: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    limit: Option<usize>,
}

async fn klines(State(shared): State<Arc<Shared>>, Query(q): Query<KlinesQuery>) -> Response {
    let request = shared.stats.rest_requests.fetch_add(1, Ordering::Relaxed) + 1;
    let used = charge(&shared, 2);
    let weight = [("x-mbx-used-weight-1m", used.to_string())];
    let scripted = shared
        .script
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .fault(request);
    if let Some(fault) = scripted {
        return (weight, faulty(&shared, fault)).into_response();
    }
    if used > shared.config.weight_limit {
        shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        let window = shared.config.weight_window.as_millis().max(1) as i64;
        let retry_after = (window - now_ms().rem_euclid(window) + 999) / 1000;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            weight,
            [("retry-after", retry_after.max(1).to_string())],
            r#"{"code":-1003,"msg":"Too many requests."}"#,
        )
            .into_response();
    }
    (weight, rows(&shared, &q)).into_response()
}

/// Adds `w` to the current window's weight and returns the window's total.
fn charge(shared: &Shared, w: u32) -> u32 {
    let window = shared.config.weight_window.as_millis().max(1) as i64;
    let index = now_ms().div_euclid(window);
    let mut weight = shared.weight.lock().unwrap_or_else(PoisonError::into_inner);
    if weight.window != index {
        *weight = Weight {
            window: index,
            used: 0,
        };
    }
    weight.used += w;
    shared
        .stats
        .max_weight
        .fetch_max(u64::from(weight.used), Ordering::Relaxed);
    weight.used
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The answer a scripted fault gives.
fn faulty(shared: &Shared, fault: RestFault) -> Response {
    match fault {
        RestFault::Status {
            code,
            retry_after_s,
        } => {
            if code == 429 || code == 418 {
                shared.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            } else {
                shared.stats.rest_failures.fetch_add(1, Ordering::Relaxed);
            }
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!(r#"{{"code":-1000,"msg":"scripted {code}"}}"#);
            match retry_after_s {
                Some(s) => (status, [("retry-after", s.to_string())], body).into_response(),
                None => (status, body).into_response(),
            }
        }
        RestFault::Drop => {
            shared.stats.rest_failures.fetch_add(1, Ordering::Relaxed);
            // Half a row, then an error: hyper aborts the connection.
            let chunks: [Result<Bytes, std::io::Error>; 2] = [
                Ok(Bytes::from_static(b"[[1700000000000,\"1.0")),
                Err(std::io::Error::other("connection dropped (scripted)")),
            ];
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
    }
}

/// The klines a query asks for, as Binance writes them.
fn rows(shared: &Shared, q: &KlinesQuery) -> Response {
    let Some(sym) = shared.config.symbols.iter().position(|s| *s == q.symbol) else {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"code":-1121,"msg":"Invalid symbol."}"#,
        )
            .into_response();
    };
    if q.interval != "1m" {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"code":-1120,"msg":"Invalid interval."}"#,
        )
            .into_response();
    }
    let published = *shared.published.borrow();
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let missing = &shared.config.missing;
    let rows: Vec<String> = shared.data[sym][..published]
        .iter()
        .enumerate()
        .filter(|(i, _)| !missing.iter().any(|r| r.contains(i)))
        .map(|(_, c)| c)
        .filter(|c| q.start_time.is_none_or(|s| c.open_time >= s))
        .filter(|c| q.end_time.is_none_or(|e| c.open_time <= e))
        .take(limit)
        .map(|c| {
            format!(
                "[{},\"{}\",\"{}\",\"{}\",\"{}\",\"{}\",{},\"0\",2,\"0\",\"0\",\"0\"]",
                c.open_time,
                c.open,
                c.high,
                c.low,
                c.close,
                c.volume,
                c.open_time + 59_999
            )
        })
        .collect();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        format!("[{}]", rows.join(",")),
    )
        .into_response()
}
