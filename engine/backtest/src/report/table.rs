//! The summary printed on the terminal.

use std::fmt::Write;

use super::Report;

/// Statistics as an aligned two-column table, then the fingerprint.
pub fn summary_table(report: &Report<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest  {} on {}",
        report.strategy_label, report.data_label
    );
    for (name, value) in rows(report) {
        let _ = writeln!(out, "  {name:<26}{value:>24}");
    }
    if report.result.bankrupt {
        let _ = writeln!(out, "  account liquidated: equity reached zero");
    }
    let _ = writeln!(out, "fingerprint {}", report.fingerprint);
    out
}

/// The statistics as `(name, shown value)`, in backtesting.py's order.
pub(crate) fn rows(report: &Report<'_>) -> Vec<(String, String)> {
    let stats = &report.result.stats;
    let mut rows = match serde_json::to_value(stats) {
        Ok(serde_json::Value::Object(map)) => map_in_order(stats, map),
        _ => Vec::new(),
    };
    if report.result.rejected_orders > 0 {
        rows.push((
            "Rejected orders".to_owned(),
            report.result.rejected_orders.to_string(),
        ));
    }
    rows
}

/// serde_json maps are sorted by key; the table keeps the struct's order.
fn map_in_order(
    stats: &crate::Stats,
    map: serde_json::Map<String, serde_json::Value>,
) -> Vec<(String, String)> {
    let ordered = serde_json::to_string(stats).unwrap_or_default();
    let mut keys: Vec<(usize, String)> = map
        .keys()
        .filter_map(|k| ordered.find(&format!("\"{k}\":")).map(|at| (at, k.clone())))
        .collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|(_, k)| map.get(&k).map(|v| (k, v)))
        .filter(|(k, _)| k != "Annualisation")
        .map(|(k, v)| (k, show(v)))
        .collect()
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
            Some(x) => format!("{x:.4}"),
            None => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
