//! Prometheus text exposition of [`Metrics`].

use std::fmt::Write as _;

use std::sync::atomic::Ordering::Relaxed;

use candlewick_core::{Health, LatencySummary, Metrics, Stage, TaskState};

/// The `/metrics` page: every counter as `candlewick_<name>`, queue depths
/// per shard, ingest->emit latency quantiles (seconds, from hdrhistogram),
/// the same per stage of the path (ARCHITECTURE §2), the checkpoint
/// writer's progress, and one `candlewick_task_up` per supervised task.
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
    let _ = writeln!(out, "# TYPE candlewick_ingest_to_emit_seconds summary");
    quantiles(
        &mut out,
        "candlewick_ingest_to_emit_seconds",
        "",
        &metrics.latency(),
    );
    let _ = writeln!(out, "# TYPE candlewick_stage_latency_seconds summary");
    for stage in Stage::ALL {
        let label = format!("stage=\"{}\",", stage.name());
        quantiles(
            &mut out,
            "candlewick_stage_latency_seconds",
            &label,
            &metrics.stage(stage),
        );
    }
    let d = &metrics.durability;
    let _ = writeln!(out, "# TYPE candlewick_checkpoints_deferred_total counter");
    let _ = writeln!(
        out,
        "candlewick_checkpoints_deferred_total {}",
        d.deferred.load(Relaxed)
    );
    let _ = writeln!(out, "# TYPE candlewick_checkpoint_last_unix_ms gauge");
    let _ = writeln!(
        out,
        "candlewick_checkpoint_last_unix_ms {}",
        d.last_commit_ms.load(Relaxed)
    );
    let _ = writeln!(out, "# TYPE candlewick_checkpoint_write_seconds gauge");
    let _ = writeln!(
        out,
        "candlewick_checkpoint_write_seconds {}",
        d.last_commit_us.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "# TYPE candlewick_checkpoint_build_seconds gauge");
    let _ = writeln!(
        out,
        "candlewick_checkpoint_build_seconds {}",
        d.last_build_us.load(Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "# TYPE candlewick_task_up gauge");
    for (task, state) in health.snapshot() {
        let up = u8::from(matches!(state, TaskState::Running | TaskState::Finished));
        let _ = writeln!(out, "candlewick_task_up{{task=\"{task}\"}} {up}");
    }
    out
}

/// One summary's quantile lines and count; `labels` ends with a comma.
fn quantiles(out: &mut String, name: &str, labels: &str, l: &LatencySummary) {
    for (q, v) in [
        ("0.5", l.p50),
        ("0.99", l.p99),
        ("0.999", l.p999),
        ("1", l.max),
    ] {
        let _ = writeln!(out, "{name}{{{labels}quantile=\"{q}\"}} {}", v as f64 / 1e9);
    }
    let labels = labels.trim_end_matches(',');
    if labels.is_empty() {
        let _ = writeln!(out, "{name}_count {}", l.count);
    } else {
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", l.count);
    }
}
