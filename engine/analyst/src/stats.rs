//! [`Stats`]: the analyst's counters, for `/metrics`, `/healthz` and tests.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use candlewick_core::prometheus::{write_counters, write_gauge};
use hdrhistogram::Histogram;

use crate::Cause;

/// Counters of one analyst, shared (`Arc`) by its calls. Costs are kept in
/// micro-USD so that they add up exactly.
#[derive(Debug)]
pub struct Stats {
    /// HTTP requests sent (each attempt counts).
    pub requests: AtomicU64,
    /// Tokens the server reported (`usage`).
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
    /// Cost of those tokens at the configured price, micro-USD.
    pub cost_micro_usd: AtomicU64,
    /// Analyses stored as done / as failed.
    pub analyses: AtomicU64,
    pub failed: AtomicU64,
    /// Failed analyses by [`Cause`] (indexed as [`Cause::ALL`]).
    failures: [AtomicU64; Cause::ALL.len()],
    /// Analyses not attempted because the day's budget was spent.
    pub skipped_budget: AtomicU64,
    /// Event triggers dropped because the analyst's queue was full.
    pub dropped_triggers: AtomicU64,
    /// Gauge: the budget is spent for today.
    pub budget_reached: AtomicBool,
    /// Gauge: spent today, micro-USD.
    pub spent_today_micro_usd: AtomicU64,
    /// Request latency, ms (each attempt).
    latency_ms: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: AtomicU64::new(0),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            cost_micro_usd: AtomicU64::new(0),
            analyses: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: Default::default(),
            skipped_budget: AtomicU64::new(0),
            dropped_triggers: AtomicU64::new(0),
            budget_reached: AtomicBool::new(false),
            spent_today_micro_usd: AtomicU64::new(0),
            // 1 ms to 1 hour, 2 significant digits: a few KiB.
            latency_ms: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000, 2)
                    .unwrap_or_else(|_| unreachable!("static bounds are valid")),
            ),
        }
    }
}

/// USD as micro-USD, rounded to nearest.
pub(crate) fn micro(usd: f64) -> u64 {
    (usd.max(0.0) * 1e6).round() as u64
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Failed analyses of `cause`.
    pub fn failures(&self, cause: Cause) -> u64 {
        Cause::ALL
            .iter()
            .position(|c| *c == cause)
            .map_or(0, |i| self.failures[i].load(Relaxed))
    }

    pub(crate) fn fail(&self, cause: Cause) {
        Stats::add(&self.failed, 1);
        if let Some(i) = Cause::ALL.iter().position(|c| *c == cause) {
            Stats::add(&self.failures[i], 1);
        }
    }

    pub(crate) fn latency(&self, d: Duration) {
        let ms = (d.as_millis() as u64).clamp(1, 3_600_000);
        let mut h = match self.latency_ms.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        let _ = h.record(ms);
    }

    /// (count, p50, p99) of the request latency, ms.
    pub fn latency_summary(&self) -> (u64, u64, u64) {
        let h = match self.latency_ms.lock() {
            Ok(h) => h,
            Err(p) => p.into_inner(),
        };
        (h.len(), h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    }

    /// What `/healthz` shows under `analyst`.
    pub fn health(&self) -> serde_json::Value {
        serde_json::json!({
            "budget_reached": self.budget_reached.load(Relaxed),
            "spent_today_usd": self.spent_today_micro_usd.load(Relaxed) as f64 / 1e6,
            "analyses": self.analyses.load(Relaxed),
            "failed": self.failed.load(Relaxed),
        })
    }

    /// The counters as Prometheus text (`candlewick_analyst_*`).
    pub fn render_prometheus(&self, out: &mut String) {
        write_counters(
            out,
            "candlewick_analyst",
            &[
                ("requests", &self.requests),
                ("tokens_in", &self.tokens_in),
                ("tokens_out", &self.tokens_out),
                ("analyses", &self.analyses),
                ("skipped_budget", &self.skipped_budget),
                ("dropped_triggers", &self.dropped_triggers),
            ],
        );
        let _ = writeln!(out, "# TYPE candlewick_analyst_cost_usd_total counter");
        let _ = writeln!(
            out,
            "candlewick_analyst_cost_usd_total {}",
            self.cost_micro_usd.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "# TYPE candlewick_analyst_failures_total counter");
        for (i, cause) in Cause::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "candlewick_analyst_failures_total{{cause=\"{}\"}} {}",
                cause.as_str(),
                self.failures[i].load(Relaxed)
            );
        }
        write_gauge(
            out,
            "candlewick_analyst_budget_reached",
            u8::from(self.budget_reached.load(Relaxed)),
        );
        write_gauge(
            out,
            "candlewick_analyst_spent_today_usd",
            self.spent_today_micro_usd.load(Relaxed) as f64 / 1e6,
        );
        let h = match self.latency_ms.lock() {
            Ok(h) => h.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let _ = writeln!(out, "# TYPE candlewick_analyst_request_seconds histogram");
        for le in [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0] {
            let below = h.count_between(0, (le * 1000.0) as u64);
            let _ = writeln!(
                out,
                "candlewick_analyst_request_seconds_bucket{{le=\"{le}\"}} {below}"
            );
        }
        let _ = writeln!(
            out,
            "candlewick_analyst_request_seconds_bucket{{le=\"+Inf\"}} {}",
            h.len()
        );
        let sum_ms: f64 = h
            .iter_recorded()
            .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
            .sum();
        let _ = writeln!(
            out,
            "candlewick_analyst_request_seconds_sum {}",
            sum_ms / 1000.0
        );
        let _ = writeln!(out, "candlewick_analyst_request_seconds_count {}", h.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_causes_and_the_latency_histogram() {
        let s = Stats::default();
        s.fail(Cause::Invalid);
        s.latency(Duration::from_millis(300));
        s.latency(Duration::from_millis(3000));
        s.budget_reached.store(true, Relaxed);
        let mut out = String::new();
        s.render_prometheus(&mut out);
        assert!(
            out.contains("candlewick_analyst_failures_total{cause=\"invalid\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("candlewick_analyst_budget_reached 1\n"),
            "{out}"
        );
        assert!(
            out.contains("candlewick_analyst_request_seconds_bucket{le=\"0.5\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("candlewick_analyst_request_seconds_count 2\n"),
            "{out}"
        );
        assert_eq!(s.failures(Cause::Invalid), 1);
        assert_eq!(s.health()["budget_reached"], true);
    }
}
