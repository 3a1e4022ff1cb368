//! The cluster's counters as Prometheus text (`candlewick_cluster_*`),
//! and the broker connection for `/healthz`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use candlewick_core::prometheus::write_counters;

use crate::consume::ConsumeStats;
use crate::lease::LeaseStats;
use crate::publish::PublishStats;
use crate::shared::SharedStats;
use crate::signal_feed::FeedStats;

/// Writes `candlewick_cluster_<group>_<name>_total` for each counter.
fn counters(out: &mut String, group: &str, values: &[(&str, &AtomicU64)]) {
    write_counters(out, &format!("candlewick_cluster_{group}"), values);
}

impl ConsumeStats {
    pub fn render_prometheus(&self, out: &mut String) {
        counters(
            out,
            "candles",
            &[
                ("routed", &self.routed),
                ("acked", &self.acked),
                ("malformed", &self.malformed),
                ("not_served", &self.unknown),
                ("delivery_gaps", &self.delivery_gaps),
            ],
        );
        let us = self.ack_latency_us.load(Relaxed);
        let _ = writeln!(
            out,
            "# TYPE candlewick_cluster_ack_latency_seconds summary\ncandlewick_cluster_ack_latency_seconds_sum {}\ncandlewick_cluster_ack_latency_seconds_count {}",
            us as f64 / 1e6,
            self.acked.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE candlewick_cluster_consumer_lag gauge");
        for (p, lag) in self.lag.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "candlewick_cluster_consumer_lag{{partition=\"{p}\"}} {lag}"
            );
        }
    }
}

impl PublishStats {
    /// As the `group` publisher (`signals` or `candles`).
    pub fn render_prometheus(&self, group: &str, out: &mut String) {
        counters(
            out,
            group,
            &[
                ("stored", &self.stored),
                ("duplicates", &self.duplicates),
                ("publish_failures", &self.failures),
                ("fenced", &self.fenced),
            ],
        );
    }
}

impl LeaseStats {
    pub fn render_prometheus(&self, out: &mut String) {
        counters(
            out,
            "leases",
            &[
                ("acquired", &self.acquired),
                ("released", &self.released),
                ("lost", &self.lost),
                ("renewals", &self.renewals),
                ("renew_failures", &self.renew_failures),
            ],
        );
        let _ = writeln!(
            out,
            "# TYPE candlewick_cluster_leases_held gauge\ncandlewick_cluster_leases_held {}",
            self.held.load(Relaxed)
        );
    }
}

impl SharedStats {
    pub fn render_prometheus(&self, out: &mut String) {
        counters(
            out,
            "shared_state",
            &[
                ("writes", &self.writes),
                ("bytes", &self.bytes),
                ("fenced", &self.fenced),
                ("retries", &self.retries),
                ("imported_streams", &self.imported),
            ],
        );
    }
}

impl FeedStats {
    pub fn render_prometheus(&self, out: &mut String) {
        counters(
            out,
            "feed",
            &[("signals", &self.signals), ("malformed", &self.malformed)],
        );
    }
}

/// The broker connection as `/healthz` shows it: `connected`,
/// `disconnected` or `pending`, and the servers (never a credential).
pub fn connection_health(js: &crate::JetStream, servers: &str) -> serde_json::Value {
    let state = match js.client().connection_state() {
        async_nats::connection::State::Connected => "connected",
        async_nats::connection::State::Disconnected => "disconnected",
        async_nats::connection::State::Pending => "pending",
    };
    serde_json::json!({ "state": state, "servers": servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let s = LeaseStats::default();
        s.acquired.store(3, Relaxed);
        s.held.store(2, Relaxed);
        let mut out = String::new();
        s.render_prometheus(&mut out);
        assert!(
            out.contains("candlewick_cluster_leases_acquired_total 3\n"),
            "{out}"
        );
        assert!(out.contains("candlewick_cluster_leases_held 2\n"), "{out}");
        assert!(out.contains("# TYPE candlewick_cluster_leases_lost_total counter\n"));
        let c = ConsumeStats::default();
        c.acked.store(4, Relaxed);
        c.ack_latency_us.store(2_000_000, Relaxed);
        c.lag.lock().unwrap().insert(3, 17);
        let mut out = String::new();
        c.render_prometheus(&mut out);
        assert!(
            out.contains("candlewick_cluster_ack_latency_seconds_sum 2\n"),
            "{out}"
        );
        assert!(
            out.contains("candlewick_cluster_ack_latency_seconds_count 4\n"),
            "{out}"
        );
        assert!(
            out.contains("candlewick_cluster_consumer_lag{partition=\"3\"} 17\n"),
            "{out}"
        );
    }
}
