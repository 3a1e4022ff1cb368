//! One feed connection: subscriptions, per-connection `seq`, lag, liveness.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

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

#[derive(Debug, Default)]
struct Subscription {
    symbols: Names,
    strategies: Names,
    candles: bool,
    predictions: bool,
}

impl Subscription {
    fn wants(&self, item: &FeedItem) -> bool {
        self.symbols.contains(&item.symbol)
            && match item.kind {
                ItemKind::Signal => self.strategies.contains(&item.strategy),
                ItemKind::Candle => self.candles,
                ItemKind::Prediction => self.predictions,
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
    let (mut tx, mut incoming) = socket.split();
    let mut shutdown = state.shutdown.clone();
    let mut sub = Subscription::default();
    let mut sent = Sent::default();
    let mut seq = 0u64;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.tick().await;

    macro_rules! send {
        ($msg:expr) => {
            match tokio::time::timeout(config.send_timeout, tx.send($msg)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return End::Error(e.to_string()),
                Err(_) => return End::SendTimeout,
            }
        };
    }

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
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        let (reply, since) = handle(&text, &mut sub);
                        if let Some(reply) = reply {
                            send!(Message::Text(reply.into()));
                        }
                        if let Some(time) = since {
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
            item = rx.recv() => match item {
                Ok(item) => {
                    if sub.wants(&item) && !sent.already(&item) {
                        seq += 1;
                        send!(frame(&item, seq));
                        metrics.add(&metrics.counters.feed_frames_out, 1);
                    }
                }
                Err(RecvError::Lagged(dropped)) => {
                    metrics.add(&metrics.counters.feed_lag_dropped, dropped);
                    let text = format!("{{\"type\":\"error\",\"code\":\"lagged\",\"dropped\":{dropped}}}");
                    send!(Message::Text(text.into()));
                }
                Err(RecvError::Closed) => return End::Shutdown,
            },
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

fn frame(item: &FeedItem, seq: u64) -> Message {
    let kind = match item.kind {
        ItemKind::Signal => "signal",
        ItemKind::Candle => "candle",
        ItemKind::Prediction => "prediction",
    };
    Message::Text(format!("{{\"type\":\"{kind}\",\"seq\":{seq},{}", item.body).into())
}

/// Applies one client message; the reply to send, if any, and the time to
/// resume from when the message asked for it.
fn handle(text: &str, sub: &mut Subscription) -> (Option<String>, Option<i64>) {
    let reply = match serde_json::from_str::<Op>(text) {
        Ok(Op::Subscribe {
            symbols,
            strategies,
            candles,
            predictions,
            since,
        }) => {
            sub.symbols.add(&symbols);
            sub.strategies.add(&strategies);
            sub.candles |= candles;
            sub.predictions |= predictions;
            return (None, since);
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
    };
    (reply, None)
}

/// Resolves when the watched flag turns true (or its sender is gone).
async fn stopped(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
                &mut sub
            ),
            (None, None)
        );
        assert!(sub.wants(&sig));
        assert!(!sub.wants(&item(ItemKind::Signal, "ETHUSDT", "sma_cross")));
        assert!(!sub.wants(&item(ItemKind::Signal, "BTCUSDT", "rsi_reversion")));
        assert!(!sub.wants(&item(ItemKind::Candle, "BTCUSDT", "")));
        handle(
            r#"{"op":"subscribe","symbols":["*"],"candles":true}"#,
            &mut sub,
        );
        assert!(sub.wants(&item(ItemKind::Candle, "ETHUSDT", "")));
        let prediction = item(ItemKind::Prediction, "ETHUSDT", "lstm");
        assert!(!sub.wants(&prediction), "predictions are opt-in");
        handle(r#"{"op":"subscribe","predictions":true}"#, &mut sub);
        assert!(sub.wants(&prediction));
        handle(r#"{"op":"unsubscribe","strategies":["*"]}"#, &mut sub);
        assert!(!sub.wants(&sig));
        assert_eq!(
            handle(r#"{"op":"ping"}"#, &mut sub).0.as_deref(),
            Some(r#"{"type":"pong"}"#)
        );
        assert_eq!(
            handle(r#"{"op":"subscribe","since":1700000000000}"#, &mut sub),
            (None, Some(1_700_000_000_000))
        );
        assert!(handle(r#"{"op":"dance"}"#, &mut sub)
            .0
            .unwrap()
            .contains("bad_request"));
    }
}
