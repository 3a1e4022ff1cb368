//! The Binance adapter: combined kline streams with REST backfill.
//!
//! One [`Connection`] serves up to [`BinanceConfig::max_streams_per_connection`]
//! streams (Binance allows 1024) over one combined-stream WebSocket. Its life:
//!
//! 1. **Connect** to `{ws_url}/stream?streams=a/b/...` (time-limited).
//! 2. **Backfill** each stream over REST from the candle after the last one
//!    routed up to now, paging by 1000. Frames that arrive meanwhile wait
//!    in the socket; the ones backfill already covered are then skipped.
//! 3. **Stream.** Closed klines are routed; forming ones are counted and
//!    skipped (only closed candles change state). A frame older than or
//!    equal to the last candle routed is counted and skipped; one that
//!    skips ahead backfills the gap first. Malformed frames are counted,
//!    logged once per kind with a sample, and skipped: the connection stays.
//!    Pings are answered by tungstenite as frames are read.
//! 4. **Reconnect** when the server closes, errors, or is silent for
//!    [`BinanceConfig::idle_timeout`]: counted in `reconnects`, then after an
//!    exponential backoff with jitter, back to 1. A session that delivered
//!    frames resets the backoff.
//!
//! REST goes through [`RestClient`] (shared with `candlewick fetch`): it
//! keeps under the weight budget and obeys 429/418 (`Retry-After`), never
//! hammering.

mod frame;
pub mod rest;

/// For the fuzz targets (`fuzz/`): parses one combined-stream frame;
/// whether it held a closed kline.
#[doc(hidden)]
pub fn fuzz_frame(text: &str) -> bool {
    matches!(frame::parse(text), Ok(Frame::Kline { closed: true, .. }))
}

pub use rest::{Kline, KlinePager, RestClient, RestOptions, RestStats};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use candlewick_core::{
    Backoff, CandleEvent, Clock, Health, Metrics, Router, StreamId, StreamTable, TaskState,
};

use crate::Destination;
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

use crate::{Allowlist, IngestError};
use frame::Frame;

/// Where and how to reach the exchange.
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// Base of the streams, e.g. `wss://stream.binance.com:9443`.
    pub ws_url: Url,
    /// Base of the REST API, e.g. `https://api.binance.com`.
    pub rest_url: Url,
    /// Default 1024 (Binance's limit per connection).
    pub max_streams_per_connection: usize,
    /// Silence after which the connection is presumed dead. Default 60 s
    /// (Binance pings every 20 s).
    pub idle_timeout: Duration,
    /// Limit on connecting (TCP + TLS + upgrade). Default 10 s.
    pub connect_timeout: Duration,
    pub reconnect: Backoff,
    /// Where a stream with no committed offset starts: `Some(t)` backfills
    /// from open time `t`; `None` (default) starts at the live stream.
    pub start_from: Option<i64>,
}

impl BinanceConfig {
    /// Checks both URLs against `allow`.
    ///
    /// # Errors
    /// [`IngestError::UrlRefused`].
    pub fn new(ws_url: &str, rest_url: &str, allow: &Allowlist) -> Result<Self, IngestError> {
        Ok(BinanceConfig {
            ws_url: allow.check(ws_url)?,
            rest_url: allow.check(rest_url)?,
            max_streams_per_connection: 1024,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            reconnect: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(30),
                reset_after: Duration::from_secs(60),
                max_failures: u32::MAX,
            },
            start_from: None,
        })
    }

    /// The streams of `table` split into connections.
    pub fn connections(&self, table: &StreamTable) -> Vec<Vec<StreamId>> {
        let ids: Vec<StreamId> = table.ids().collect();
        ids.chunks(self.max_streams_per_connection.max(1))
            .map(<[StreamId]>::to_vec)
            .collect()
    }
}

/// One WebSocket connection's worth of streams, reconnecting forever.
///
/// Its closed candles go to a [`Destination`]: the local pipeline's
/// [`Router`] (`candlewick run`), or a publisher to the cluster's candle
/// stream (`candlewick ingest`).
pub struct Connection<D: Destination = Router> {
    config: Arc<BinanceConfig>,
    streams: Vec<StreamId>,
    router: D,
    clock: Clock,
    rest: RestClient,
    /// Open time of the last candle routed, per global stream id.
    last: Vec<Option<i64>>,
    /// Kinds of bad frame already logged (once each).
    logged: u8,
    name: String,
    /// Where the connection says whether it is up (`/healthz`, and the
    /// notifier's health watch): Running once connected, Restarting while
    /// it reconnects.
    health: Option<Arc<Health>>,
    /// At least [`BURST_AHEAD`] frames had arrived behind the one in hand.
    burst: bool,
}

/// Frames already received behind the one in hand that make a burst: its
/// candles are queued for the shard workers (which take them side by
/// side while this connection reads on) rather than run one after another
/// on this connection's thread. Fewer than this (a few dozen symbols
/// closing together, or frames that piled up while the thread was
/// preempted) run in place, the fastest way for each. At 16, one
/// preemption of 1.6 ms at 10,000 candles/s queued the frames behind it
/// and made most of the steady p99 (see benches/README.md).
const BURST_AHEAD: usize = 64;

/// One item of the exchange's WebSocket stream, as `StreamExt::next` gives
/// it.
type WsItem = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// Takes up to [`BURST_AHEAD`] items that have already arrived, without
/// waiting, after those in `ahead`; stops after the stream's end or an
/// error (they are handled in order, like any frame).
fn read_ahead<S>(ws: &mut S, ahead: &mut VecDeque<WsItem>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    while ahead.len() < BURST_AHEAD && !matches!(ahead.back(), Some(None | Some(Err(_)))) {
        match ws.next().now_or_never() {
            Some(item) => ahead.push_back(item),
            None => break,
        }
    }
}

const LOG_MALFORMED: u8 = 1;
const LOG_DUPLICATE: u8 = 2;
const LOG_OUT_OF_ORDER: u8 = 4;
const LOG_UNKNOWN: u8 = 8;
const LOG_IMPOSSIBLE_TIME: u8 = 16;

/// How far the exchange's clock may run ahead of ours before a kline's
/// open time is taken for a lie.
pub const CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// Whether a closed kline of `interval` opening at `open_time` can be real
/// at wall time `now_ms`: on the interval's grid, and not opening more
/// than an interval plus [`CLOCK_SKEW_MS`] from now. One that is not would
/// become the stream's offset and make every real kline after it look old.
///
/// # Errors
/// A short reason.
pub fn admit_open_time(
    interval: candlewick_market::Interval,
    open_time: i64,
    now_ms: i64,
) -> Result<(), String> {
    if !crate::grid::is_open_time(interval, open_time) {
        return Err(format!(
            "open time {open_time} is not on the {interval} grid"
        ));
    }
    let limit = now_ms
        .saturating_add(interval.nominal_ms())
        .saturating_add(CLOCK_SKEW_MS);
    if open_time > limit {
        return Err(format!(
            "open time {open_time} is in the future (now {now_ms})"
        ));
    }
    Ok(())
}

use rest::wall_ms;

/// How a session ended.
enum End {
    Shutdown,
    Lost(String),
}

impl<D: Destination> Connection<D> {
    /// `offsets[id]` is each stream's committed offset (from the store, or
    /// the last candle the cluster's stream holds).
    ///
    /// # Errors
    /// [`IngestError::Rest`] when the HTTP client cannot be built.
    pub fn new(
        index: usize,
        config: Arc<BinanceConfig>,
        streams: Vec<StreamId>,
        offsets: Vec<Option<i64>>,
        router: D,
        clock: Clock,
    ) -> Result<Self, IngestError> {
        let rest = RestClient::new(
            &config.rest_url,
            RestOptions {
                // A live engine has nowhere better to be: obey any ban.
                max_retry_after: Duration::from_secs(u64::from(u32::MAX)),
                ..RestOptions::default()
            },
        )?;
        Ok(Connection {
            config,
            streams,
            router,
            clock,
            rest,
            last: offsets,
            logged: 0,
            name: format!("binance-{index}"),
            health: None,
            burst: false,
        })
    }

    /// Reports the connection's state to `health` under its name: a lost
    /// connection shows as restarting until the next one is up, so that
    /// `/healthz` and the notifier's health watch see an outage that the
    /// reconnect loop would otherwise keep to itself.
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    fn report(&self, state: TaskState) {
        if let Some(h) = &self.health {
            h.set(&self.name, state);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn metrics(&self) -> &Metrics {
        self.router.metrics()
    }

    /// Connects, backfills, streams and reconnects until `shutdown` turns
    /// true.
    ///
    /// # Errors
    /// Only when the pipeline has stopped (nothing to route to); network
    /// trouble, and a destination that could not take a candle
    /// ([`IngestError::Publish`]), are retried forever with backoff: the
    /// next session backfills from the last candle handed over.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), IngestError> {
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let before = self
                .metrics()
                .counters
                .events_ingested
                .load(std::sync::atomic::Ordering::Relaxed);
            let cause = match self.session(&mut shutdown).await {
                Ok(End::Shutdown) => return Ok(()),
                Ok(End::Lost(cause)) => cause,
                Err(IngestError::Route(e)) => return Err(IngestError::Route(e)),
                Err(e) => e.to_string(),
            };
            let after = self
                .metrics()
                .counters
                .events_ingested
                .load(std::sync::atomic::Ordering::Relaxed);
            failures = if after > before {
                1
            } else {
                failures.saturating_add(1)
            };
            let wait = self.config.reconnect.wait(failures);
            self.metrics().add(&self.metrics().counters.reconnects, 1);
            self.report(TaskState::Restarting {
                failures,
                last_error: cause.clone(),
            });
            tracing::warn!(connection = %self.name, cause = %cause, failures, retry_in_ms = wait.as_millis() as u64, "exchange connection lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(&mut shutdown) => return Ok(()),
            }
        }
    }

    fn stream_url(&self) -> String {
        let table = self.router.table();
        let names: Vec<String> = self.streams.iter().map(|&id| table.name(id)).collect();
        let mut url = self.config.ws_url.clone();
        url.set_path("/stream");
        url.set_query(Some(&format!("streams={}", names.join("/"))));
        url.to_string()
    }

    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<End, IngestError> {
        let url = self.stream_url();
        let ws_err = |message: String| IngestError::WebSocket {
            url: self.config.ws_url.to_string(),
            message,
        };
        // Nagle off: a kline frame is small, and waiting to coalesce it
        // with the next would delay it by up to a round trip.
        let connect = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true);
        let (mut ws, _) = match tokio::time::timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(ws_err(e.to_string())),
            Err(_) => return Err(ws_err("connect timed out".to_owned())),
        };
        tracing::info!(connection = %self.name, streams = self.streams.len(), "exchange connected; backfilling");
        self.report(TaskState::Running);
        for i in 0..self.streams.len() {
            let id = self.streams[i];
            // A backfill may wait out a long `Retry-After`: shutdown ends it.
            tokio::select! {
                r = self.backfill(id, None) => r?,
                _ = stopped(shutdown) => return Ok(End::Shutdown),
            }
        }
        let mut ahead = VecDeque::new();
        loop {
            let next = match ahead.pop_front() {
                Some(next) => next,
                None => {
                    let waited = tokio::select! {
                        _ = stopped(shutdown) => {
                            let _ = ws.close(None).await;
                            return Ok(End::Shutdown);
                        }
                        next = tokio::time::timeout(self.config.idle_timeout, ws.next()) => next,
                    };
                    match waited {
                        Ok(next) => next,
                        Err(_) => {
                            return Ok(End::Lost(
                                "no frame within idle_timeout (stalled)".to_owned(),
                            ))
                        }
                    }
                }
            };
            read_ahead(&mut ws, &mut ahead);
            self.burst = ahead.len() >= BURST_AHEAD;
            let msg = match next {
                None => return Ok(End::Lost("server closed the connection".to_owned())),
                Some(Err(e)) => return Ok(End::Lost(e.to_string())),
                Some(Ok(msg)) => msg,
            };
            match msg {
                // A gap's backfill may wait on the exchange: shutdown ends it.
                Message::Text(text) => tokio::select! {
                    r = self.on_text(text.as_str()) => r?,
                    _ = stopped(shutdown) => return Ok(End::Shutdown),
                },
                Message::Close(frame) => {
                    return Ok(End::Lost(format!("server sent close {frame:?}")));
                }
                Message::Ping(payload) => {
                    // tungstenite queues the pong; flush it now.
                    let _ = payload;
                    let _ = ws.flush().await;
                }
                _ => {}
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Result<(), IngestError> {
        let ingest_ns = self.clock.now_ns();
        let (stream, candle, closed) = match frame::parse(text) {
            Ok(Frame::Kline {
                stream,
                candle,
                closed,
            }) => (stream, candle, closed),
            Ok(Frame::Other) => return Ok(()),
            Err(reason) => {
                self.metrics()
                    .add(&self.metrics().counters.frames_malformed, 1);
                self.log_once(LOG_MALFORMED, "malformed frame skipped", &reason, text);
                return Ok(());
            }
        };
        let Some(id) = self.router.table().find(stream) else {
            self.metrics()
                .add(&self.metrics().counters.frames_unknown_stream, 1);
            self.log_once(LOG_UNKNOWN, "frame for a stream not served", stream, text);
            return Ok(());
        };
        if !closed {
            self.metrics()
                .add(&self.metrics().counters.frames_forming, 1);
            return Ok(());
        }
        let interval = self.router.table().key(id).interval;
        if let Err(reason) = admit_open_time(interval, candle.open_time, wall_ms()) {
            // Counted with the malformed frames: never routed, never an offset.
            self.metrics()
                .add(&self.metrics().counters.frames_malformed, 1);
            self.log_once(
                LOG_IMPOSSIBLE_TIME,
                "kline with an impossible open time skipped",
                &reason,
                text,
            );
            return Ok(());
        }
        let last = self.last[id.0 as usize];
        if let Some(last) = last {
            if candle.open_time == last {
                self.metrics()
                    .add(&self.metrics().counters.frames_duplicate, 1);
                self.log_once(LOG_DUPLICATE, "duplicate kline skipped", stream, text);
                return Ok(());
            }
            if candle.open_time < last {
                self.metrics()
                    .add(&self.metrics().counters.frames_out_of_order, 1);
                self.log_once(LOG_OUT_OF_ORDER, "out-of-order kline skipped", stream, text);
                return Ok(());
            }
            let step = self.router.table().key(id).interval.nominal_ms();
            if candle.open_time > last + step {
                self.backfill(id, Some(candle.open_time)).await?;
                if self.last[id.0 as usize].is_some_and(|l| candle.open_time <= l) {
                    return Ok(());
                }
            }
        }
        self.route(id, candle, ingest_ns).await
    }

    async fn route(
        &mut self,
        id: StreamId,
        candle: candlewick_market::Candle,
        ingest_ns: u64,
    ) -> Result<(), IngestError> {
        let event = CandleEvent {
            stream: id,
            candle,
            ingest_ns,
        };
        if self.burst {
            self.router.deliver_in_burst(event).await?;
        } else {
            self.router.deliver(event).await?;
        }
        self.last[id.0 as usize] = Some(candle.open_time);
        Ok(())
    }

    fn log_once(&mut self, kind: u8, what: &str, reason: &str, sample: &str) {
        if self.logged & kind == 0 {
            self.logged |= kind;
            let sample: String = sample.chars().take(200).collect();
            tracing::warn!(connection = %self.name, reason, sample = %sample, "{what} (counted; logged once per kind)");
        }
    }
}

/// Resolves when the watched flag turns true (or its sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_market::Interval;
    use tokio_tungstenite::tungstenite::Error as WsError;

    fn text(i: usize) -> Result<Message, WsError> {
        Ok(Message::Text(i.to_string().into()))
    }

    #[test]
    fn read_ahead_takes_what_has_arrived_up_to_a_burst_and_stops_at_an_end() {
        // More than a burst already here: a burst's worth is taken, in order.
        let mut ws = futures_util::stream::iter((0..BURST_AHEAD + 24).map(text));
        let mut ahead = VecDeque::new();
        read_ahead(&mut ws, &mut ahead);
        assert_eq!(ahead.len(), BURST_AHEAD);
        assert!(matches!(&ahead[0], Some(Ok(Message::Text(t))) if t.as_str() == "0"));
        ahead.pop_front();
        read_ahead(&mut ws, &mut ahead);
        assert!(
            matches!(&ahead[BURST_AHEAD - 1], Some(Ok(Message::Text(t))) if *t.as_str() == BURST_AHEAD.to_string())
        );

        // An error ends the read-ahead, after the frames before it.
        let items = vec![text(0), text(1), Err(WsError::ConnectionClosed), text(3)];
        let mut ws = futures_util::stream::iter(items);
        let mut ahead = VecDeque::new();
        read_ahead(&mut ws, &mut ahead);
        assert_eq!(ahead.len(), 3);
        assert!(matches!(ahead.back(), Some(Some(Err(_)))));
        read_ahead(&mut ws, &mut ahead);
        assert_eq!(ahead.len(), 3, "nothing is read past an error");

        // The stream's end is kept too; nothing pending reads nothing.
        let mut ws = futures_util::stream::iter(vec![text(0)]);
        let mut ahead = VecDeque::new();
        read_ahead(&mut ws, &mut ahead);
        assert!(matches!(ahead.back(), Some(None)));
        let mut ws = futures_util::stream::pending::<Result<Message, WsError>>();
        let mut ahead = VecDeque::new();
        read_ahead(&mut ws, &mut ahead);
        assert!(ahead.is_empty());
    }

    #[test]
    fn klines_off_the_grid_or_in_the_future_are_refused() {
        let base = 1_699_999_980_000; // on the 1m grid
        let now = base + 40_000; // 40 s into that minute
        let m1: Interval = "1m".parse().unwrap();
        let h1: Interval = "1h".parse().unwrap();
        admit_open_time(m1, base - 60_000, now).unwrap();
        admit_open_time(m1, base, now).unwrap();
        let e = admit_open_time(m1, base + 1, now).unwrap_err();
        assert!(e.contains("grid"), "{e}");
        let e = admit_open_time(h1, base, now).unwrap_err();
        assert!(e.contains("grid"), "{e}");
        // Within an interval plus the skew: a fast exchange clock.
        admit_open_time(m1, base + 5 * 60_000, now).unwrap();
        let e = admit_open_time(m1, base + 60 * 60_000, now).unwrap_err();
        assert!(e.contains("future"), "{e}");
        assert!(
            admit_open_time(m1, 4_102_444_800_000, now).is_err(),
            "year 2100"
        );
        assert!(admit_open_time(m1, i64::MAX - (i64::MAX % 60_000), now).is_err());
    }
}
