//! Prometheus text exposition of [`Metrics`].

use std::fmt::Write as _;

use candlewick_pipeline::{Health, Metrics, TaskState};

/// The `/metrics` page: every counter as `candlewick_<name>`, queue depths
/// per shard, ingest->emit latency quantiles (seconds, from hdrhistogram),
/// and one `candlewick_task_up` per supervised task.
pub fn render(metrics: &Metrics, health: &Health) -> String {
    let mut out = String::with_capacity(4096);
    for (name, value) in metrics.counters.all() {
        let kind = if name == "feed_clients" {
            "gauge"
        } else {
            "counter"
        };
        let suffix = if kind == "counter" { "_total" } else { "" };
        let _ = writeln!(out, "# TYPE candlewick_{name}{suffix} {kind}");
        let value = if name == "plugin_quarantines" {
            metrics.quarantines()
        } else {
            value
        };
        let _ = writeln!(out, "candlewick_{name}{suffix} {value}");
    }
    let _ = writeln!(out, "# TYPE candlewick_queue_depth gauge");
    for (shard, depth) in metrics.queue_depths().into_iter().enumerate() {
        let _ = writeln!(out, "candlewick_queue_depth{{shard=\"{shard}\"}} {depth}");
    }
    let l = metrics.latency();
    let _ = writeln!(out, "# TYPE candlewick_ingest_to_emit_seconds summary");
    for (q, v) in [
        ("0.5", l.p50),
        ("0.99", l.p99),
        ("0.999", l.p999),
        ("1", l.max),
    ] {
        let _ = writeln!(
            out,
            "candlewick_ingest_to_emit_seconds{{quantile=\"{q}\"}} {}",
            v as f64 / 1e9
        );
    }
    let _ = writeln!(out, "candlewick_ingest_to_emit_seconds_count {}", l.count);
    let _ = writeln!(out, "# TYPE candlewick_task_up gauge");
    for (task, state) in health.snapshot() {
        let up = u8::from(matches!(state, TaskState::Running | TaskState::Finished));
        let _ = writeln!(out, "candlewick_task_up{{task=\"{task}\"}} {up}");
    }
    out
}
