//! [`NotifySink`]: the pipeline's sink with notifications on the side.

use std::collections::HashMap;
use std::sync::Mutex;

use candlewick_pipeline::{Signal, SinkTap, Tapped};
use candlewick_plugins::{Health as PluginHealth, PluginStats};
use candlewick_state::StreamKey;

use crate::delivery::now_ms;
use crate::{Kind, Notification, Notifier};

/// The engine's sink (the feed hub) with the notifier on the side:
/// everything goes to the sink as before; signals and new quarantines and
/// reloads also go to the [`Notifier`], by `try_send` (a worker never
/// waits on a webhook).
pub type NotifySink<S> = Tapped<S, NotifyTap>;

/// The notifier's side of a [`NotifySink`].
#[derive(Debug)]
pub struct NotifyTap {
    notifier: Notifier,
    /// The engine run's start (ms), part of quarantine ids.
    run_ms: i64,
    /// Quarantines already told, per (stream, strategy). Touched only for
    /// runners that have faulted (see `Sink::strategy_health`).
    told: Mutex<HashMap<(StreamKey, String), u64>>,
    /// Reload counts (done, refused) already told, per strategy: a reload
    /// reaches every stream's runner, and is told once.
    reloads_told: Mutex<HashMap<String, (u64, u64)>>,
}

impl NotifyTap {
    /// `inner` with `notifier` on the side.
    pub fn wrap<S>(inner: S, notifier: Notifier, run_ms: i64) -> NotifySink<S> {
        Tapped::new(
            inner,
            NotifyTap {
                notifier,
                run_ms,
                told: Mutex::new(HashMap::new()),
                reloads_told: Mutex::new(HashMap::new()),
            },
        )
    }
}

impl SinkTap for NotifyTap {
    fn signal(&self, signal: Signal) {
        self.notifier.signal(&signal);
    }

    fn strategy_health(
        &self,
        stream: &StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        if let PluginHealth::Quarantined { fault, .. } = health {
            self.quarantined(stream, strategy, stats.quarantines(), &fault.to_string());
        }
        if stats.reloads + stats.reload_failures > 0 {
            self.reloaded(strategy, stats.reloads, stats.reload_failures);
        }
    }
}

impl NotifyTap {
    /// Tells a strategy's reload once: when its counts first reach these
    /// values on any stream.
    fn reloaded(&self, strategy: &str, reloads: u64, failures: u64) {
        if !self
            .notifier
            .wants(Kind::Reload, Some(strategy), None, None, None)
        {
            return;
        }
        let mut told = self
            .reloads_told
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = told.entry(strategy.to_owned()).or_insert((0, 0));
        if reloads <= last.0 && failures <= last.1 {
            return;
        }
        *last = (last.0.max(reloads), last.1.max(failures));
        drop(told);
        self.notifier.try_notify(Notification::reload(
            self.run_ms,
            strategy,
            reloads,
            failures,
            now_ms(),
        ));
    }

    /// Tells each quarantine once: when the runner's count has grown since
    /// the last one told.
    fn quarantined(&self, stream: &StreamKey, strategy: &str, count: u64, fault: &str) {
        if !self.notifier.wants(
            Kind::Quarantine,
            Some(strategy),
            Some(stream.symbol.as_str()),
            None,
            None,
        ) {
            return;
        }
        let mut told = self
            .told
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let last = told
            .entry((stream.clone(), strategy.to_owned()))
            .or_insert(0);
        if count <= *last {
            return;
        }
        *last = count;
        drop(told);
        self.notifier.try_notify(Notification::quarantine(
            self.run_ms,
            count,
            stream,
            strategy,
            fault,
            now_ms(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use candlewick_pipeline::{Sink, VecSink};
    use candlewick_plugins::{Action, Fault};

    use super::*;
    use crate::{channel, NotifyConfig, Secret, Stats, WebhookConfig};

    fn signal() -> Signal {
        let eurusd = candlewick_market::Symbol::new("EURUSD").unwrap();
        Signal::decided(
            "s".into(),
            eurusd,
            "1h".parse().unwrap(),
            0,
            (Action::Buy, 1.0),
            1.0,
        )
    }

    #[test]
    fn signals_reach_both_and_each_quarantine_and_reload_is_told_once() {
        let secret = Secret::new("0123456789abcdef", "t").unwrap();
        let config = NotifyConfig {
            webhooks: vec![WebhookConfig::new("w", "http://127.0.0.1:1/", secret)],
            ..NotifyConfig::default()
        };
        let (notifier, inbox) = channel(&config, Arc::new(Stats::default()));
        let sink = NotifyTap::wrap(VecSink::default(), notifier, 42);
        sink.signal(signal());
        assert_eq!(sink.inner.take().len(), 1);

        let stream: StreamKey = "EURUSD/1h".parse().unwrap();
        let quarantined = PluginHealth::Quarantined {
            fault: Fault::Trap("unreachable".into()),
            consecutive: 1,
            retry_at: Instant::now(),
        };
        let mut stats = PluginStats {
            traps: 1,
            ..PluginStats::default()
        };
        for _ in 0..3 {
            sink.strategy_health(&stream, "s", &stats, &quarantined);
        }
        stats.traps = 2;
        sink.strategy_health(&stream, "s", &stats, &quarantined);
        sink.strategy_health(&stream, "s", &stats, &PluginHealth::Running);

        // A reload reaches every stream's runner; it is told once.
        let reloaded = PluginStats {
            traps: 2,
            reloads: 1,
            ..PluginStats::default()
        };
        for stream in ["EURUSD/1h", "GBPUSD/1h", "EURUSD/1h"] {
            let stream: StreamKey = stream.parse().unwrap();
            sink.strategy_health(&stream, "s", &reloaded, &PluginHealth::Running);
        }

        let mut rx = inbox.0.try_lock().unwrap();
        let ids: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok().map(|n| n.id)).collect();
        assert_eq!(
            ids,
            [
                "s:EURUSD:1h:0",
                "quarantine:s:EURUSD/1h:42:1",
                "quarantine:s:EURUSD/1h:42:2",
                "reload:s:42:1:0"
            ]
        );
    }
}
