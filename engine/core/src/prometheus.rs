//! Prometheus text exposition, the two shapes every part's counters take:
//! a group of monotonic counters, and a single gauge. The engine's
//! `/metrics` page is the concatenation of each part's block.

use std::fmt::{Display, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Writes `{prefix}_{name}_total` (with its `# TYPE ... counter` line) for
/// each counter, e.g. `candlewick_notify_delivered_total`.
pub fn write_counters(out: &mut String, prefix: &str, counters: &[(&str, &AtomicU64)]) {
    for (name, value) in counters {
        let metric = format!("{prefix}_{name}_total");
        let _ = writeln!(
            out,
            "# TYPE {metric} counter\n{metric} {}",
            value.load(Relaxed)
        );
    }
}

/// Writes the gauge `name` (with its `# TYPE ... gauge` line).
pub fn write_gauge(out: &mut String, name: &str, value: impl Display) {
    let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_are_typed_and_named_as_prometheus_wants() {
        let (a, b) = (AtomicU64::new(3), AtomicU64::new(0));
        let mut out = String::new();
        write_counters(&mut out, "candlewick_x", &[("sent", &a), ("lost", &b)]);
        write_gauge(&mut out, "candlewick_x_pending", 2.5);
        assert_eq!(
            out,
            "# TYPE candlewick_x_sent_total counter\ncandlewick_x_sent_total 3\n\
             # TYPE candlewick_x_lost_total counter\ncandlewick_x_lost_total 0\n\
             # TYPE candlewick_x_pending gauge\ncandlewick_x_pending 2.5\n"
        );
    }
}
