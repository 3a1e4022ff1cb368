//! [`Notification`]: one event worth telling someone about, and the JSON a
//! webhook receives for it.

use std::sync::Arc;

use candlewick_pipeline::{json_str, Signal};
use candlewick_state::StreamKey;

/// What a notification is about; webhooks subscribe by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A strategy's signal.
    Signal,
    /// A strategy was quarantined on a stream (a fault in its plugin).
    Quarantine,
    /// The engine started or stopped.
    Engine,
    /// A task down longer than `notify.down_after_s` (the exchange
    /// connection, the feed, a shard), its recovery, feed clients behind.
    Health,
    /// A strategy's module was reloaded (or a reload was refused).
    Reload,
    /// The analyst's answer for a symbol (its `strength` is the answer's
    /// confidence, which `min_confidence` filters on).
    Analysis,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Signal,
        Kind::Quarantine,
        Kind::Engine,
        Kind::Health,
        Kind::Reload,
        Kind::Analysis,
    ];

    /// The name used in configs and payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::Quarantine => "quarantine",
            Kind::Engine => "engine",
            Kind::Health => "health",
            Kind::Reload => "reload",
            Kind::Analysis => "analysis",
        }
    }

    /// The kind named `name`; `None` for another word.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event, ready to be filtered and sent.
///
/// Its [`Notification::id`] is deterministic (a signal's own id, or one
/// made of the event's parts), so the same event queued twice (a signal
/// re-emitted after a crash) is one outbox record, and a receiver dedupes
/// retries by the `Idempotency-Key` header, which carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub kind: Kind,
    /// When the event happened (ms since the Unix epoch; a signal's candle
    /// open time).
    pub time_ms: i64,
    /// What filters look at; `None` where the kind has no such part.
    pub strategy: Option<Arc<str>>,
    pub symbol: Option<String>,
    pub action: Option<&'static str>,
    pub strength: Option<f64>,
    /// The event's own fields: one JSON object, the payload's `data`.
    pub data: String,
}

impl Notification {
    /// A signal, with its id and the feed's body as `data`.
    pub fn signal(s: &Signal) -> Notification {
        Notification {
            id: s.id.clone(),
            kind: Kind::Signal,
            time_ms: s.time,
            strategy: Some(s.strategy.clone()),
            symbol: Some(s.symbol.as_str().to_owned()),
            action: Some(s.action.as_str()),
            strength: Some(s.strength),
            data: format!("{{{}", s.feed_body()),
        }
    }

    /// The `count`-th quarantine of `strategy` on `stream` in the engine run
    /// that started at `run_ms` (the pair makes the id unique across runs).
    pub fn quarantine(
        run_ms: i64,
        count: u64,
        stream: &StreamKey,
        strategy: &str,
        fault: &str,
        time_ms: i64,
    ) -> Notification {
        Notification {
            id: format!("quarantine:{strategy}:{stream}:{run_ms}:{count}"),
            kind: Kind::Quarantine,
            time_ms,
            strategy: Some(strategy.into()),
            symbol: Some(stream.symbol.as_str().to_owned()),
            action: None,
            strength: None,
            data: format!(
                "{{\"strategy\":{},\"symbol\":\"{}\",\"interval\":\"{}\",\"fault\":{},\"count\":{count}}}",
                json_str(strategy),
                stream.symbol,
                stream.interval,
                json_str(fault),
            ),
        }
    }

    /// `strategy`'s module reloaded for the `reloads`-th time in the run
    /// that started at `run_ms` (and refused `failures` times so far); told
    /// once per strategy, not per stream.
    pub fn reload(
        run_ms: i64,
        strategy: &str,
        reloads: u64,
        failures: u64,
        time_ms: i64,
    ) -> Notification {
        Notification {
            id: format!("reload:{strategy}:{run_ms}:{reloads}:{failures}"),
            kind: Kind::Reload,
            time_ms,
            strategy: Some(strategy.into()),
            symbol: None,
            action: None,
            strength: None,
            data: format!(
                "{{\"strategy\":{},\"reloads\":{reloads},\"failures\":{failures}}}",
                json_str(strategy)
            ),
        }
    }

    /// The analyst's answer for `symbol` asked at `time_ms`, with
    /// `confidence` (0-1) and `data`, the feed's analysis frame as one
    /// JSON object.
    pub fn analysis(symbol: &str, time_ms: i64, confidence: f64, data: String) -> Notification {
        Notification {
            id: format!("analysis:{symbol}:{time_ms}"),
            kind: Kind::Analysis,
            time_ms,
            strategy: None,
            symbol: Some(symbol.to_owned()),
            action: None,
            strength: Some(confidence),
            data,
        }
    }

    /// The engine run that started at `run_ms` started (`stopped = false`)
    /// or stopped; `detail` says why it stopped, or what it runs.
    pub fn engine(run_ms: i64, stopped: bool, time_ms: i64, detail: &str) -> Notification {
        let event = if stopped { "stop" } else { "start" };
        Notification {
            id: format!("engine:{event}:{run_ms}"),
            kind: Kind::Engine,
            time_ms,
            strategy: None,
            symbol: None,
            action: None,
            strength: None,
            data: format!(
                "{{\"event\":\"{event}\",\"run\":{run_ms},\"detail\":{},\"version\":\"{}\"}}",
                json_str(detail),
                env!("CARGO_PKG_VERSION"),
            ),
        }
    }

    /// The request body a webhook receives:
    /// `{"id":...,"kind":...,"time":...,"data":{...}}`.
    pub fn body(&self) -> String {
        format!(
            "{{\"id\":{},\"kind\":\"{}\",\"time\":{},\"data\":{}}}",
            json_str(&self.id),
            self.kind.as_str(),
            self.time_ms,
            self.data
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use candlewick_plugins::Action;

    use super::*;

    pub(crate) fn signal() -> Signal {
        let btc = candlewick_market::Symbol::new("BTCUSDT").unwrap();
        Signal {
            emitted_at_us: 7,
            ..Signal::decided(
                "sma_cross".into(),
                btc,
                "1m".parse().unwrap(),
                60_000,
                (Action::Buy, 0.5),
                10.5,
            )
        }
    }

    #[test]
    fn bodies_are_json_with_the_id_kind_and_data() {
        let n = Notification::signal(&signal());
        let v: serde_json::Value = serde_json::from_str(&n.body()).unwrap();
        assert_eq!(v["id"], "sma_cross:BTCUSDT:1m:60000");
        assert_eq!(v["kind"], "signal");
        assert_eq!(v["data"]["action"], "buy");
        assert_eq!(v["data"]["strength"], 0.5);
        let stream: StreamKey = "BTCUSDT/1m".parse().unwrap();
        let q = Notification::quarantine(5, 2, &stream, "x\"y", "trap: unreachable", 9);
        let v: serde_json::Value = serde_json::from_str(&q.body()).unwrap();
        assert_eq!(v["data"]["strategy"], "x\"y");
        assert_eq!(q.id, "quarantine:x\"y:BTCUSDT/1m:5:2");
        let e = Notification::engine(5, true, 6, "SIGTERM");
        let v: serde_json::Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["data"]["event"].as_str()),
            (Some("engine:stop:5"), Some("stop"))
        );
    }

    #[test]
    fn kinds_parse_their_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("signals"), None);
    }
}
