//! [`Stats`]: the notifier's counters, for `/metrics` and tests.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use candlewick_core::prometheus::{write_counters, write_gauge};

/// Counters of one notifier. Shared (`Arc`) by the engine's handle, the
/// intake and the destinations.
#[derive(Debug, Default)]
pub struct Stats {
    /// Notifications handed to the notifier (accepted by the channel).
    pub queued: AtomicU64,
    /// Notifications dropped because the hand-off channel was full.
    pub dropped_channel_full: AtomicU64,
    /// Records dropped because a destination's outbox was at its bound.
    pub dropped_outbox_full: AtomicU64,
    /// Records written to the outbox.
    pub outbox_writes: AtomicU64,
    /// Records delivered (2xx).
    pub delivered: AtomicU64,
    /// Attempts that failed (each is retried or buried).
    pub failed_attempts: AtomicU64,
    /// Records moved to the dead letters by this process.
    pub dead_lettered: AtomicU64,
    /// Gauge: records waiting in the outbox now.
    pub pending: AtomicI64,
    /// Gauge: dead letters held now.
    pub dead_letters: AtomicI64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// The counters as Prometheus text (`candlewick_notify_*`).
    pub fn render_prometheus(&self, out: &mut String) {
        write_counters(
            out,
            "candlewick_notify",
            &[
                ("queued", &self.queued),
                ("dropped_channel_full", &self.dropped_channel_full),
                ("dropped_outbox_full", &self.dropped_outbox_full),
                ("outbox_writes", &self.outbox_writes),
                ("delivered", &self.delivered),
                ("failed_attempts", &self.failed_attempts),
                ("dead_lettered", &self.dead_lettered),
            ],
        );
        for (name, v) in [
            ("pending", &self.pending),
            ("dead_letters", &self.dead_letters),
        ] {
            write_gauge(
                out,
                &format!("candlewick_notify_{name}"),
                v.load(Relaxed).max(0),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_and_gauge() {
        let s = Stats::default();
        Stats::add(&s.dead_lettered, 2);
        s.dead_letters.store(3, Relaxed);
        let mut out = String::new();
        s.render_prometheus(&mut out);
        assert!(
            out.contains("candlewick_notify_dead_lettered_total 2\n"),
            "{out}"
        );
        assert!(out.contains("candlewick_notify_dead_letters 3\n"), "{out}");
        assert_eq!(out.lines().filter(|l| l.starts_with("# TYPE")).count(), 9);
    }
}
