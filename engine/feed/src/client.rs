//! One feed connection: subscriptions, per-connection `seq`, lag, liveness.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use crate::guard::{Bucket, Known};
use crate::hub::{FeedItem, ItemKind};
use crate::resume::{self, Sent};
use crate::FeedState;

/// A set of names, or every name (`"*"`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Names {
    #[default]
    None,
    All,
    Some(HashSet<String>),
}

impl Names {
    fn contains(&self, name: &str) -> bool {
        match self {
            Names::None => false,
            Names::All => true,
            Names::Some(set) => set.contains(name),
        }
    }

    /// Entries the set holds (`All` is one).
    fn entries(&self) -> usize {
        match self {
            Names::None => 0,
            Names::All => 1,
            Names::Some(set) => set.len(),
        }
    }

    /// Entries the set would hold after [`Names::add`]`(names)`.
    fn len_after(&self, names: &Option<Vec<String>>) -> usize {
        let Some(names) = names else { return 1 };
        if names.iter().any(|n| n == "*") {
            return 1;
        }
        match self {
            Names::All => 1,
            Names::None => names.iter().collect::<HashSet<_>>().len(),
            Names::Some(set) => {
                let fresh: HashSet<&String> = names.iter().filter(|n| !set.contains(*n)).collect();
                set.len() + fresh.len()
            }
        }
    }

    fn add(&mut self, names: &Option<Vec<String>>) {
        let Some(names) = names else {
            *self = Names::All;
            return;
        };
        if names.iter().any(|n| n == "*") {
            *self = Names::All;
            return;
        }
        match self {
            Names::All => {}
            Names::Some(set) => set.extend(names.iter().cloned()),
            Names::None => *self = Names::Some(names.iter().cloned().collect()),
        }
    }

    fn remove(&mut self, names: &Option<Vec<String>>) {
        match names {
            None => *self = Names::None,
            Some(names) if names.iter().any(|n| n == "*") => *self = Names::None,
            Some(names) => {
                if let Names::Some(set) = self {
                    for n in names {
                        set.remove(n);
                    }
                }
            }
        }
    }
}

/// What a client may subscribe to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy<'a> {
    /// `None`: any name (the set is still bounded).
    pub known: Option<&'a Known>,
    /// Most names (symbols plus strategies) one client holds.
    pub max_names: usize,
}

/// Why a subscribe changed nothing.
#[derive(Debug, PartialEq)]
enum Refusal {
    Unknown { code: &'static str, name: String },
    TooMany { limit: usize },
}

impl Refusal {
    fn frame(&self) -> String {
        match self {
            Refusal::Unknown { code, name } => {
                serde_json::json!({"type": "error", "code": code, "name": name}).to_string()
            }
            Refusal::TooMany { limit } => serde_json::json!({
                "type": "error", "code": "too_many_subscriptions", "limit": limit
            })
            .to_string(),
        }
    }
}

/// The first name of `names` not in `known` (`"*"` always passes).
fn unknown(
    names: &Option<Vec<String>>,
    known: &HashSet<String>,
    code: &'static str,
) -> Result<(), Refusal> {
    let first = names
        .iter()
        .flatten()
        .find(|n| *n != "*" && !known.contains(n.as_str()));
    match first {
        None => Ok(()),
        Some(name) => Err(Refusal::Unknown {
            code,
            name: clip(name, 64),
        }),
    }
}

/// At most `max` bytes of `s`, cut on a character boundary: a name echoed
/// back in an error is the client's own, but need not be all of it.
fn clip(s: &str, max: usize) -> String {
    let mut cut = s.len().min(max);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s[..cut].to_owned()
}

#[derive(Debug, Default)]
struct Subscription {
    symbols: Names,
    strategies: Names,
    candles: bool,
    predictions: bool,
    analysis: bool,
    /// Set by a subscribe with `since`, taken by the connection's loop,
    /// which then serves the resume (see [`crate::resume`]).
    resume_from: Option<i64>,
}

impl Subscription {
    /// Adds the names, all or none: every name must exist and the client
    /// must stay within its bound.
    fn subscribe(
        &mut self,
        symbols: &Option<Vec<String>>,
        strategies: &Option<Vec<String>>,
        policy: Policy<'_>,
    ) -> Result<(), Refusal> {
        if let Some(known) = policy.known {
            unknown(symbols, &known.symbols, "unknown_symbol")?;
            unknown(strategies, &known.strategies, "unknown_strategy")?;
        }
        let after = self.symbols.len_after(symbols) + self.strategies.len_after(strategies);
        if after > policy.max_names.max(2) {
            return Err(Refusal::TooMany {
                limit: policy.max_names,
            });
        }
        self.symbols.add(symbols);
        self.strategies.add(strategies);
        Ok(())
    }

    /// Names held.
    #[cfg(test)]
    fn names(&self) -> usize {
        self.symbols.entries() + self.strategies.entries()
    }

    fn wants(&self, item: &FeedItem) -> bool {
        self.symbols.contains(&item.symbol)
            && match item.kind {
                ItemKind::Signal => self.strategies.contains(&item.strategy),
                ItemKind::Candle => self.candles,
                ItemKind::Prediction => self.predictions,
                ItemKind::Analysis => self.analysis,
            }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Op {
    Subscribe {
        symbols: Option<Vec<String>>,
        strategies: Option<Vec<String>>,
        #[serde(default)]
        candles: bool,
        #[serde(default)]
        predictions: bool,
        /// The analyst's `analysis` frames for these symbols.
        #[serde(default)]
        analysis: bool,
        /// Resume: first the signals of candles from this open time (ms)
        /// on, from the outbox (see [`crate::resume`]).
        since: Option<i64>,
    },
    Unsubscribe {
        symbols: Option<Vec<String>>,
        strategies: Option<Vec<String>>,
    },
    Ping,
}

/// Why a connection ended, for the log.
enum End {
    ClientClosed,
    Shutdown,
    Idle,
    SendTimeout,
    RateLimited,
    Error(String),
}

pub(crate) async fn run(
    socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<FeedItem>>,
    state: FeedState,
) {
    let m = &state.metrics;
    m.add(&m.counters.feed_clients, 1);
    let end = serve(socket, &mut rx, &state).await;
    m.counters
        .feed_clients
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    match end {
        End::ClientClosed | End::Shutdown => tracing::debug!("feed client closed"),
        End::Idle => tracing::info!("feed client dropped: idle"),
        End::SendTimeout => tracing::info!("feed client dropped: not reading (send timeout)"),
        End::RateLimited => tracing::info!("feed client dropped: over its message rate"),
        End::Error(e) => tracing::debug!(cause = %e, "feed client connection error"),
    }
}

async fn serve(
    socket: WebSocket,
    rx: &mut broadcast::Receiver<Arc<FeedItem>>,
    state: &FeedState,
) -> End {
    let config = &state.config;
    let metrics = &state.metrics;
    let clock = state.hub.clock();
    let (mut tx, mut incoming) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let mut sub = Subscription::default();
    let mut sent = Sent::default();
    let mut seq = 0u64;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;
    let mut ops = Bucket::new(config.ops_per_second, config.ops_burst, Instant::now());
    let policy = Policy {
        known: state.known.as_deref(),
        max_names: config.max_subscriptions,
    };

    // `send` writes a frame and flushes the socket; `feed` only queues it
    // in the connection's write buffer for the next `flush`.
    macro_rules! io {
        ($op:expr) => {
            match tokio::time::timeout(config.send_timeout, $op).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return End::Error(e.to_string()),
                Err(_) => return End::SendTimeout,
            }
        };
    }
    macro_rules! send {
        ($msg:expr) => {{
            io!(tx.send($msg));
            metrics.add(&metrics.counters.feed_writes, 1);
        }};
    }
    let mut written: Vec<u64> = Vec::with_capacity(COALESCE);

    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                // Frames already in the ring go out first.
                while let Ok(item) = rx.try_recv() {
                    if sub.wants(&item) {
                        seq += 1;
                        send!(frame(&item, seq));
                        metrics.add(&metrics.counters.feed_frames_out, 1);
                    }
                }
                let _ = tx
                    .send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "engine shutting down".into(),
                    })))
                    .await;
                return End::Shutdown;
            }
            msg = incoming.next() => {
                last_heard = Instant::now();
                let counted = matches!(
                    msg,
                    Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_)))
                );
                if counted && !ops.take(last_heard) {
                    let _ = tx
                        .send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: "rate limit".into(),
                        })))
                        .await;
                    return End::RateLimited;
                }
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(reply) = handle(&text, &mut sub, policy) {
                            send!(Message::Text(reply.into()));
                        }
                        if let Some(time) = sub.resume_from.take() {
                            match resume::since(state, time, |i| sub.wants(i)) {
                                Ok(r) => {
                                    for item in &r.frames {
                                        seq += 1;
                                        send!(frame(item, seq));
                                        metrics.add(&metrics.counters.feed_frames_out, 1);
                                    }
                                    sent.remember(&r.frames);
                                    if let Some(next) = r.truncated_at {
                                        let text = format!("{{\"type\":\"error\",\"code\":\"resume_truncated\",\"since\":{next}}}");
                                        send!(Message::Text(text.into()));
                                    }
                                }
                                Err(why) => {
                                    let text = serde_json::json!({"type": "error", "code": "resume_failed", "message": why}).to_string();
                                    send!(Message::Text(text.into()));
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return End::ClientClosed,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return End::Error(e.to_string()),
                }
            }
            first = rx.recv() => {
                // Every frame already waiting in the ring (up to
                // `COALESCE`) goes out in one socket write: a burst of
                // a thousand candles costs tens of writes, not thousands,
                // and a lone frame is flushed at once as before.
                let mut next = Some(first);
                let mut taken = 0;
                let mut fed = 0u64;
                while let Some(item) = next {
                    taken += 1;
                    match item {
                        Ok(item) => {
                            if sub.wants(&item) && !sent.already(&item) {
                                seq += 1;
                                io!(tx.feed(frame(&item, seq)));
                                fed += 1;
                                if clock.is_some() && item.ingest_ns > 0 {
                                    written.push(item.ingest_ns);
                                }
                            }
                        }
                        Err(RecvError::Lagged(dropped)) => {
                            metrics.add(&metrics.counters.feed_lag_dropped, dropped);
                            let text = format!("{{\"type\":\"error\",\"code\":\"lagged\",\"dropped\":{dropped}}}");
                            io!(tx.feed(Message::Text(text.into())));
                        }
                        Err(RecvError::Closed) => {
                            io!(tx.flush());
                            return End::Shutdown;
                        }
                    }
                    next = if taken < COALESCE { waiting(rx) } else { None };
                }
                io!(tx.flush());
                metrics.add(&metrics.counters.feed_writes, 1);
                metrics.add(&metrics.counters.feed_frames_out, fed);
                if let Some(clock) = clock {
                    let now = clock.now_ns();
                    for ingest_ns in written.drain(..) {
                        metrics.record_written(now.saturating_sub(ingest_ns));
                    }
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > config.idle_timeout {
                    let _ = tx.send(Message::Close(Some(CloseFrame { code: 1001, reason: "idle".into() }))).await;
                    return End::Idle;
                }
                send!(Message::Ping(Vec::new().into()));
            }
        }
    }
}

/// The most ring items one socket write carries: enough that a burst
/// costs few writes, few enough that the first frame of a burst waits
/// only for a handful of others to be formatted.
const COALESCE: usize = 32;

/// The ring's next item if one is already waiting, as `recv` gives it.
fn waiting(
    rx: &mut broadcast::Receiver<Arc<FeedItem>>,
) -> Option<Result<Arc<FeedItem>, RecvError>> {
    match rx.try_recv() {
        Ok(item) => Some(Ok(item)),
        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        Err(TryRecvError::Empty) => None,
    }
}

fn frame(item: &FeedItem, seq: u64) -> Message {
    let kind = match item.kind {
        ItemKind::Signal => "signal",
        ItemKind::Candle => "candle",
        ItemKind::Prediction => "prediction",
        ItemKind::Analysis => "analysis",
    };
    Message::Text(format!("{{\"type\":\"{kind}\",\"seq\":{seq},{}", item.body).into())
}

/// Applies one client message; the reply to send, if any. A subscription
/// that asks to resume leaves its time in [`Subscription::resume_from`].
fn handle(text: &str, sub: &mut Subscription, policy: Policy<'_>) -> Option<String> {
    match serde_json::from_str::<Op>(text) {
        Ok(Op::Subscribe {
            symbols,
            strategies,
            candles,
            predictions,
            analysis,
            since,
        }) => {
            if let Err(refusal) = sub.subscribe(&symbols, &strategies, policy) {
                return Some(refusal.frame());
            }
            sub.candles |= candles;
            sub.predictions |= predictions;
            sub.analysis |= analysis;
            sub.resume_from = since;
            None
        }
        Ok(Op::Unsubscribe {
            symbols,
            strategies,
        }) => {
            if symbols.is_some() || strategies.is_none() {
                sub.symbols.remove(&symbols);
            }
            if strategies.is_some() {
                sub.strategies.remove(&strategies);
            }
            None
        }
        Ok(Op::Ping) => Some("{\"type\":\"pong\"}".to_owned()),
        Err(e) => Some(
            serde_json::json!({"type": "error", "code": "bad_request", "message": e.to_string()})
                .to_string(),
        ),
    }
}

/// See [`crate::fuzz_client_ops`].
pub(crate) fn fuzz_ops<'a>(messages: impl IntoIterator<Item = &'a str>) -> usize {
    let known = Known {
        symbols: ["BTCUSDT", "ETHUSDT"].map(String::from).into(),
        strategies: ["sma_cross"].map(String::from).into(),
    };
    let policy = Policy {
        known: Some(&known),
        max_names: 8,
    };
    let mut open = Subscription::default();
    let unchecked = Policy {
        known: None,
        max_names: 8,
    };
    let mut sub = Subscription::default();
    for m in messages {
        let _ = handle(m, &mut sub, policy);
        let _ = handle(m, &mut open, unchecked);
    }
    let held = |s: &Subscription| s.symbols.entries() + s.strategies.entries();
    assert!(held(&open) <= 8, "the bound was passed");
    held(&sub)
}

/// Resolves when the watched flag turns true (or its sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Policy<'static> = Policy {
        known: None,
        max_names: 1024,
    };

    fn item(kind: ItemKind, symbol: &str, strategy: &str) -> FeedItem {
        FeedItem {
            kind,
            symbol: symbol.into(),
            strategy: strategy.into(),
            body: "}".into(),
            ingest_ns: 0,
            time: 0,
            id: "".into(),
        }
    }

    #[test]
    fn subscriptions_filter_by_symbol_strategy_and_kind() {
        let mut sub = Subscription::default();
        let sig = item(ItemKind::Signal, "BTCUSDT", "sma_cross");
        assert!(!sub.wants(&sig), "nothing before subscribing");
        assert_eq!(
            handle(
                r#"{"op":"subscribe","symbols":["BTCUSDT"],"strategies":["sma_cross"]}"#,
                &mut sub,
                OPEN
            ),
            None
        );
        assert!(sub.wants(&sig));
        assert!(!sub.wants(&item(ItemKind::Signal, "ETHUSDT", "sma_cross")));
        assert!(!sub.wants(&item(ItemKind::Signal, "BTCUSDT", "rsi_reversion")));
        assert!(!sub.wants(&item(ItemKind::Candle, "BTCUSDT", "")));
        handle(
            r#"{"op":"subscribe","symbols":["*"],"candles":true}"#,
            &mut sub,
            OPEN,
        );
        assert!(sub.wants(&item(ItemKind::Candle, "ETHUSDT", "")));
        let prediction = item(ItemKind::Prediction, "ETHUSDT", "lstm");
        assert!(!sub.wants(&prediction), "predictions are opt-in");
        handle(r#"{"op":"subscribe","predictions":true}"#, &mut sub, OPEN);
        assert!(sub.wants(&prediction));
        let analysis = item(ItemKind::Analysis, "ETHUSDT", "");
        assert!(!sub.wants(&analysis), "analyses are opt-in");
        handle(r#"{"op":"subscribe","analysis":true}"#, &mut sub, OPEN);
        assert!(sub.wants(&analysis));
        handle(r#"{"op":"unsubscribe","strategies":["*"]}"#, &mut sub, OPEN);
        assert!(!sub.wants(&sig));
        assert_eq!(
            handle(r#"{"op":"ping"}"#, &mut sub, OPEN).as_deref(),
            Some(r#"{"type":"pong"}"#)
        );
        assert_eq!(
            handle(
                r#"{"op":"subscribe","since":1700000000000}"#,
                &mut sub,
                OPEN
            ),
            None
        );
        assert_eq!(sub.resume_from, Some(1_700_000_000_000));
        assert!(handle(r#"{"op":"dance"}"#, &mut sub, OPEN)
            .unwrap()
            .contains("bad_request"));
    }

    fn known() -> Known {
        Known {
            symbols: ["BTCUSDT", "ETHUSDT"].map(String::from).into(),
            strategies: ["sma_cross"].map(String::from).into(),
        }
    }

    #[test]
    fn unknown_names_are_refused_and_change_nothing() {
        let known = known();
        let policy = Policy {
            known: Some(&known),
            max_names: 1024,
        };
        let mut sub = Subscription::default();
        let reply = handle(
            r#"{"op":"subscribe","symbols":["BTCUSDT","DOGEUSDT"]}"#,
            &mut sub,
            policy,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["code"], "unknown_symbol");
        assert_eq!(v["name"], "DOGEUSDT");
        assert_eq!(sub.names(), 0, "all or nothing");
        let reply = handle(
            r#"{"op":"subscribe","symbols":["BTCUSDT"],"strategies":["nope"]}"#,
            &mut sub,
            policy,
        )
        .unwrap();
        assert!(reply.contains("\"unknown_strategy\""), "{reply}");
        assert_eq!(sub.names(), 0);
        assert_eq!(
            handle(
                r#"{"op":"subscribe","symbols":["BTCUSDT","*"],"strategies":["sma_cross"]}"#,
                &mut sub,
                policy
            ),
            None
        );
        assert!(sub.wants(&item(ItemKind::Signal, "ETHUSDT", "sma_cross")));
        // A long name is echoed clipped.
        let long = format!(r#"{{"op":"subscribe","symbols":["{}"]}}"#, "é".repeat(500));
        let reply = handle(&long, &mut sub, policy).unwrap();
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert!(v["name"].as_str().unwrap().len() <= 64);
    }

    #[test]
    fn ten_thousand_fresh_names_leave_the_set_bounded() {
        let known = known();
        let checked = Policy {
            known: Some(&known),
            max_names: 100,
        };
        let unchecked = Policy {
            known: None,
            max_names: 100,
        };
        for policy in [checked, unchecked] {
            let mut sub = Subscription::default();
            let mut refused = 0;
            for i in 0..10_000 {
                let msg =
                    format!(r#"{{"op":"subscribe","symbols":["FRESH{i}"],"strategies":["s{i}"]}}"#);
                if handle(&msg, &mut sub, policy).is_some() {
                    refused += 1;
                }
            }
            assert!(sub.names() <= 100, "{}", sub.names());
            assert!(refused >= 10_000 - 50, "{refused}");
        }
    }
}
