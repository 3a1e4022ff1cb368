//! Health notifications: a supervised task (the exchange connection, the
//! feed, a shard) that stays down longer than `down_after`, its recovery,
//! and feed clients falling behind (messages dropped for them, summed over
//! a minute).
//!
//! [`HealthWatch`] is the decision, a pure function of what it has seen
//! (tested as such); [`watch`] polls the engine's [`Health`] and
//! [`Metrics`] once a second and hands what it decides to the
//! [`Notifier`], which never waits. A source that reconnects within
//! `down_after` (a blip) says nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use candlewick_pipeline::{json_str, Health, Metrics, TaskState};
use tokio::sync::watch::Receiver;

use crate::{Kind, Notification, Notifier, NotifyError};

/// Feed-lag notifications at most this often; drops in between are summed.
const LAG_EVERY_MS: i64 = 60_000;

/// How often [`watch`] looks.
const POLL: Duration = Duration::from_secs(1);

/// What the watch remembers between looks.
#[derive(Debug)]
pub struct HealthWatch {
    run_ms: i64,
    down_after_ms: i64,
    /// Tasks not running now: since when, and whether that was told.
    down: HashMap<String, (i64, bool)>,
    lag_seen: u64,
    lag_unsent: u64,
    lag_told_ms: i64,
}

impl HealthWatch {
    /// A watch for the engine run that started at `run_ms`.
    pub fn new(run_ms: i64, down_after: Duration) -> HealthWatch {
        HealthWatch {
            run_ms,
            down_after_ms: down_after.as_millis().min(i64::MAX as u128) as i64,
            down: HashMap::new(),
            lag_seen: 0,
            lag_unsent: 0,
            lag_told_ms: i64::MIN,
        }
    }

    /// What to tell, given the tasks' states and the feed's dropped-message
    /// counter at `now_ms`.
    pub fn observe(
        &mut self,
        now_ms: i64,
        tasks: &BTreeMap<String, TaskState>,
        lag_dropped: u64,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for (task, state) in tasks {
            let error = match state {
                TaskState::Running | TaskState::Finished => None,
                TaskState::Restarting { last_error, .. } => Some(last_error),
                TaskState::Failed { error } => Some(error),
            };
            match (error, self.down.get_mut(task)) {
                (Some(error), Some((since, told))) => {
                    if !*told && now_ms - *since >= self.down_after_ms {
                        *told = true;
                        out.push(task_down(self.run_ms, task, *since, error, now_ms));
                    }
                }
                (Some(_), None) => {
                    self.down.insert(task.clone(), (now_ms, false));
                }
                (None, Some(&mut (since, told))) => {
                    self.down.remove(task);
                    if told {
                        out.push(task_up(self.run_ms, task, since, now_ms));
                    }
                }
                (None, None) => {}
            }
        }
        self.lag_unsent += lag_dropped.saturating_sub(self.lag_seen);
        self.lag_seen = self.lag_seen.max(lag_dropped);
        if self.lag_unsent > 0 && now_ms.saturating_sub(self.lag_told_ms) >= LAG_EVERY_MS {
            out.push(feed_lag(self.run_ms, self.lag_unsent, now_ms));
            self.lag_unsent = 0;
            self.lag_told_ms = now_ms;
        }
        out
    }
}

fn task_down(run_ms: i64, task: &str, since: i64, error: &str, now_ms: i64) -> Notification {
    health(
        format!("health:down:{task}:{run_ms}:{since}"),
        now_ms,
        format!(
            "{{\"event\":\"down\",\"task\":{},\"since\":{since},\"error\":{}}}",
            json_str(task),
            json_str(error)
        ),
    )
}

fn task_up(run_ms: i64, task: &str, since: i64, now_ms: i64) -> Notification {
    health(
        format!("health:up:{task}:{run_ms}:{since}"),
        now_ms,
        format!(
            "{{\"event\":\"up\",\"task\":{},\"since\":{since},\"down_ms\":{}}}",
            json_str(task),
            now_ms - since
        ),
    )
}

fn feed_lag(run_ms: i64, dropped: u64, now_ms: i64) -> Notification {
    health(
        format!("health:feed_lag:{run_ms}:{now_ms}"),
        now_ms,
        format!("{{\"event\":\"feed_lag\",\"dropped\":{dropped}}}"),
    )
}

fn health(id: String, time_ms: i64, data: String) -> Notification {
    Notification {
        id,
        kind: Kind::Health,
        time_ms,
        strategy: None,
        symbol: None,
        action: None,
        strength: None,
        data,
    }
}

/// Polls `health` and `metrics` once a second until `stop` says `true`,
/// handing each health notification to `notifier`.
///
/// # Errors
/// None so far; the signature lets it run beside the delivery under one
/// supervisor.
pub async fn watch(
    mut health_watch: HealthWatch,
    notifier: Notifier,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    mut stop: Receiver<bool>,
) -> Result<(), NotifyError> {
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { return Ok(()) },
        }
        let lag = metrics.counters.feed_lag_dropped.load(Relaxed);
        for n in health_watch.observe(crate::delivery::now_ms(), &health.snapshot(), lag) {
            notifier.try_notify(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(list: &[(&str, TaskState)]) -> BTreeMap<String, TaskState> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn restarting(error: &str) -> TaskState {
        TaskState::Restarting {
            failures: 1,
            last_error: error.into(),
        }
    }

    fn events(ns: &[Notification]) -> Vec<String> {
        ns.iter()
            .map(|n| {
                let v: serde_json::Value = serde_json::from_str(&n.data).unwrap();
                format!(
                    "{}:{}",
                    v["event"].as_str().unwrap(),
                    v["task"].as_str().unwrap_or("-")
                )
            })
            .collect()
    }

    #[test]
    fn a_task_down_longer_than_the_threshold_is_told_once_then_its_recovery() {
        let mut w = HealthWatch::new(7, Duration::from_secs(30));
        let up = tasks(&[("source", TaskState::Running)]);
        let down = tasks(&[("source", restarting("connection reset"))]);
        assert!(w.observe(0, &up, 0).is_empty());
        assert!(w.observe(1_000, &down, 0).is_empty(), "just went down");
        assert!(w.observe(30_999, &down, 0).is_empty(), "not yet 30 s");
        let told = w.observe(31_000, &down, 0);
        assert_eq!(events(&told), ["down:source"]);
        assert_eq!(told[0].id, "health:down:source:7:1000");
        assert!(told[0].data.contains("connection reset"));
        assert!(w.observe(40_000, &down, 0).is_empty(), "told once");
        let back = w.observe(45_000, &up, 0);
        assert_eq!(events(&back), ["up:source"]);
        assert!(
            back[0].data.contains("\"down_ms\":44000"),
            "{}",
            back[0].data
        );
        assert_eq!(back[0].kind, Kind::Health);
    }

    #[test]
    fn a_blip_shorter_than_the_threshold_says_nothing() {
        let mut w = HealthWatch::new(7, Duration::from_secs(30));
        let down = tasks(&[("source", restarting("reset"))]);
        assert!(w.observe(0, &down, 0).is_empty());
        assert!(w
            .observe(5_000, &tasks(&[("source", TaskState::Running)]), 0)
            .is_empty());
        assert!(
            w.observe(60_000, &down, 0).is_empty(),
            "a new outage starts now"
        );
        assert_eq!(events(&w.observe(90_000, &down, 0)), ["down:source"]);
    }

    #[test]
    fn feed_drops_are_summed_and_told_at_most_once_a_minute() {
        let mut w = HealthWatch::new(7, Duration::from_secs(30));
        let none = tasks(&[]);
        assert!(w.observe(0, &none, 0).is_empty());
        let first = w.observe(1_000, &none, 5);
        assert_eq!(events(&first), ["feed_lag:-"]);
        assert!(first[0].data.contains("\"dropped\":5"));
        assert!(w.observe(2_000, &none, 9).is_empty(), "within the minute");
        assert!(w.observe(30_000, &none, 12).is_empty());
        let next = w.observe(61_000, &none, 12);
        assert!(next[0].data.contains("\"dropped\":7"), "{}", next[0].data);
        assert!(w.observe(200_000, &none, 12).is_empty(), "nothing new");
    }
}
