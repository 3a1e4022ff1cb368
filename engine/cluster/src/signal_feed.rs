//! The feed role's source: the SIGNALS stream into the feed's hub.
//!
//! `candlewick feed` serves the WebSocket feed of §4 to any number of
//! clients, for every engine of the cluster at once, from SIGNALS instead
//! of an in-process pipeline, so that consumers scale apart from compute.
//! It follows the stream with an ordered consumer (the server replays from
//! the last message seen after a reconnect, in order) that starts at a
//! point in time, `nats.feed_replay_s` before the start: the hub then
//! holds the recent signals that a client resuming with `since` asks for.
//!
//! Every message is checked at this boundary ([`decode_signal`]): a body
//! that is not a signal is counted and skipped, never passed on.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{push, DeliverPolicy};
use async_nats::jetstream::Context;
use candlewick_market::{Interval, Symbol};
use candlewick_pipeline::{Signal, Sink};
use candlewick_plugins::Action;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use crate::{ClusterConfig, ClusterError};

/// What the feed role received.
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Signals passed to the hub.
    pub signals: AtomicU64,
    /// Messages that were not a valid signal (skipped).
    pub malformed: AtomicU64,
}

/// A SIGNALS message body as the engines write it
/// ([`crate::publish::signal_body`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    symbol: String,
    interval: String,
    strategy: String,
    time: i64,
    action: String,
    strength: Option<f64>,
    price: Option<f64>,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    emitted_at_us: i64,
}

/// A SIGNALS body as a [`Signal`], every field checked: the id must be
/// the one its fields make (`strategy:SYMBOL:interval:time`), the action
/// one of the four, numbers finite where the engine writes them.
///
/// # Errors
/// What is wrong, in a few words.
pub fn decode_signal(bytes: &[u8]) -> Result<Signal, String> {
    let b: Body = serde_json::from_slice(bytes).map_err(|e| format!("not a signal: {e}"))?;
    if b.kind != "signal" {
        return Err(format!("type {:?}", b.kind));
    }
    let symbol = Symbol::new(&b.symbol).map_err(|_| "bad symbol".to_owned())?;
    let interval: Interval = b.interval.parse().map_err(|_| "bad interval".to_owned())?;
    let action = [Action::Hold, Action::Buy, Action::Sell, Action::Exit]
        .into_iter()
        .find(|a| a.as_str() == b.action)
        .ok_or_else(|| format!("action {:?}", b.action))?;
    let id =
        candlewick_pipeline::signal_id(&b.strategy, symbol.as_str(), interval.as_str(), b.time);
    if id != b.id {
        return Err(format!("id {:?} does not match its fields", b.id));
    }
    let finite = |v: Option<f64>, what: &str| match v {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{what} is not a number")),
    };
    Ok(Signal {
        id,
        strategy: b.strategy.into(),
        symbol,
        interval,
        time: b.time,
        action,
        strength: finite(b.strength, "strength")?,
        price: finite(b.price, "price")?,
        stop_loss: b.stop_loss.filter(|v| v.is_finite()),
        take_profit: b.take_profit.filter(|v| v.is_finite()),
        emitted_at_us: b.emitted_at_us,
        ingest_ns: 0,
    })
}

/// Follows SIGNALS from `replay` before now into `sink` until `stop`.
///
/// # Errors
/// [`ClusterError::JetStream`] when the stream or its consumer cannot be
/// had, or the message stream ends (the supervisor starts it again).
pub async fn follow_signals(
    js: Context,
    cfg: ClusterConfig,
    replay: Duration,
    sink: Arc<dyn Sink>,
    stats: Arc<FeedStats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ClusterError> {
    let what = || format!("stream {}", cfg.signals_stream);
    let stream = js
        .get_stream(&cfg.signals_stream)
        .await
        .map_err(|e| ClusterError::js(what(), e))?;
    let from = SystemTime::now() - replay;
    let start_time = time::OffsetDateTime::from(from);
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: js.client().new_inbox(),
            filter_subject: "signals.>".to_owned(),
            deliver_policy: DeliverPolicy::ByStartTime { start_time },
            ..push::OrderedConfig::default()
        })
        .await
        .map_err(|e| ClusterError::js(what(), e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| ClusterError::js(what(), e))?;
    tracing::info!(stream = %cfg.signals_stream, replay_s = replay.as_secs_f64(), "following the cluster's signals");
    let mut logged = false;
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => return Ok(()),
            next = messages.next() => {
                let message = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(ClusterError::js(what(), e)),
                    None => return Err(ClusterError::js(what(), "message stream ended")),
                };
                match decode_signal(&message.payload) {
                    Ok(signal) => {
                        stats.signals.fetch_add(1, Relaxed);
                        sink.signal(signal);
                    }
                    Err(e) => {
                        stats.malformed.fetch_add(1, Relaxed);
                        if !std::mem::replace(&mut logged, true) {
                            tracing::warn!(subject = %message.subject, cause = %e, "a SIGNALS message that is not a signal was skipped (counted; logged once)");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(id: &str, action: &str) -> String {
        format!(
            r#"{{"type":"signal","id":"{id}","symbol":"BTCUSDT","interval":"1m","strategy":"sma_cross","time":60000,"action":"{action}","strength":0.5,"price":101.5,"emitted_at_us":7}}"#
        )
    }

    #[test]
    fn bodies_the_engines_write_decode_and_others_are_refused() {
        let s = decode_signal(body("sma_cross:BTCUSDT:1m:60000", "buy").as_bytes()).unwrap();
        assert_eq!((s.action, s.strength, s.time), (Action::Buy, 0.5, 60_000));
        // The engine's own encoding round-trips.
        let again = format!("{{\"type\":\"signal\",{}", s.feed_body());
        assert_eq!(decode_signal(again.as_bytes()).unwrap(), s);
        for (bad, why) in [
            (body("sma_cross:BTCUSDT:1m:1", "buy"), "does not match"),
            (body("sma_cross:BTCUSDT:1m:60000", "moon"), "action"),
            (
                body("x", "buy").replace("\"price\":101.5", "\"price\":null"),
                "does not match",
            ),
            (
                body("sma_cross:BTCUSDT:1m:60000", "buy").replace("0.5", "null"),
                "strength",
            ),
            ("{\"type\":\"candle\"}".to_owned(), "not a signal"),
        ] {
            let e = decode_signal(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
