//! The machine-readable outputs. Floats are written with Rust's shortest
//! round-trip formatting: reading a value back gives the same bits.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use candlewick_market::time::format_ms;

use super::Report;
use crate::equity::EquityCurve;
use crate::trade::Trade;

/// `stats.json`: fingerprint, inputs, settings, assumptions and the
/// statistics under backtesting.py's names.
///
/// # Errors
/// The file cannot be written.
pub fn write_stats_json(path: &Path, report: &Report<'_>) -> std::io::Result<()> {
    let r = report.result;
    let doc = serde_json::json!({
        "fingerprint": report.fingerprint,
        "data": report.data_label,
        "strategy": report.strategy_label,
        "inputs": report.inputs,
        "settings": {
            "broker": r.options.broker,
            "gaps": format!("{:?}", r.options.gaps).to_lowercase(),
            "indicators": r.indicator_spec,
            "warmup_bars": r.warmup,
        },
        "assumptions": super::assumptions(r),
        "bars": r.curve.len(),
        "rejected_orders": r.rejected_orders,
        "bankrupt": r.bankrupt,
        "stats": r.stats,
    });
    let mut w = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut w, &doc)?;
    w.write_all(b"\n")?;
    w.flush()
}

/// `trades.csv`: one row per trade, bars 0-based, times UTC.
///
/// # Errors
/// The file cannot be written.
pub fn write_trades_csv(path: &Path, trades: &[Trade]) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(
        w,
        "entry_bar,exit_bar,entry_time,exit_time,side,size,entry_price,exit_price,\
         stop_loss,take_profit,pnl,fees,return_pct,exit_reason"
    )?;
    let opt = |v: Option<f64>| v.map_or_else(String::new, |x| x.to_string());
    for t in trades {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            t.entry_bar,
            t.exit_bar,
            format_ms(t.entry_time),
            format_ms(t.exit_time),
            if t.size > 0.0 { "long" } else { "short" },
            t.size,
            t.entry_price,
            t.exit_price,
            opt(t.stop_loss),
            opt(t.take_profit),
            t.pnl,
            t.fees,
            t.return_frac * 100.0,
            t.exit_reason.as_str(),
        )?;
    }
    w.flush()
}

/// `equity.csv`: per bar, time, close, equity and drawdown (percent, <= 0).
///
/// # Errors
/// The file cannot be written.
pub fn write_equity_csv(path: &Path, curve: &EquityCurve) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(w, "time,close,equity,drawdown_pct")?;
    let dd = curve.drawdown();
    let rows = curve
        .time()
        .iter()
        .zip(curve.close())
        .zip(curve.equity())
        .zip(&dd);
    for (((&time, close), equity), dd) in rows {
        writeln!(w, "{},{close},{equity},{}", format_ms(time), -dd * 100.0)?;
    }
    w.flush()
}
