//! The machine-readable outputs. Floats are written with Rust's shortest
//! round-trip formatting: reading a value back gives the same bits.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use candlewick_history::{write_table_parquet, HistoryError, Values};
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

/// The trades' columns, shared by the CSV and the Parquet file.
const TRADE_COLUMNS: [&str; 14] = [
    "entry_bar",
    "exit_bar",
    "entry_time",
    "exit_time",
    "side",
    "size",
    "entry_price",
    "exit_price",
    "stop_loss",
    "take_profit",
    "pnl",
    "fees",
    "return_pct",
    "exit_reason",
];

fn side(t: &Trade) -> &'static str {
    if t.size > 0.0 {
        "long"
    } else {
        "short"
    }
}

/// `trades.csv`: one row per trade, bars 0-based, times UTC.
///
/// # Errors
/// The file cannot be written.
pub fn write_trades_csv(path: &Path, trades: &[Trade]) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(w, "{}", TRADE_COLUMNS.join(","))?;
    let opt = |v: Option<f64>| v.map_or_else(String::new, |x| x.to_string());
    for t in trades {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            t.entry_bar,
            t.exit_bar,
            format_ms(t.entry_time),
            format_ms(t.exit_time),
            side(t),
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

/// `trades.parquet`: the columns of `trades.csv`, typed (bars as integers,
/// times as UTC timestamps, no stop or target as NaN).
///
/// # Errors
/// The file cannot be written.
pub fn write_trades_parquet(path: &Path, trades: &[Trade]) -> Result<u64, HistoryError> {
    let ints = |f: &dyn Fn(&Trade) -> i64| trades.iter().map(f).collect::<Vec<i64>>();
    let floats = |f: &dyn Fn(&Trade) -> f64| trades.iter().map(f).collect::<Vec<f64>>();
    let entry_bar = ints(&|t| t.entry_bar as i64);
    let exit_bar = ints(&|t| t.exit_bar as i64);
    let entry_time = ints(&|t| t.entry_time);
    let exit_time = ints(&|t| t.exit_time);
    let sides: Vec<&str> = trades.iter().map(side).collect();
    let size = floats(&|t| t.size);
    let entry_price = floats(&|t| t.entry_price);
    let exit_price = floats(&|t| t.exit_price);
    let stop_loss = floats(&|t| t.stop_loss.unwrap_or(f64::NAN));
    let take_profit = floats(&|t| t.take_profit.unwrap_or(f64::NAN));
    let pnl = floats(&|t| t.pnl);
    let fees = floats(&|t| t.fees);
    let return_pct = floats(&|t| t.return_frac * 100.0);
    let reasons: Vec<&str> = trades.iter().map(|t| t.exit_reason.as_str()).collect();
    let values = [
        Values::Int(&entry_bar),
        Values::Int(&exit_bar),
        Values::Time(&entry_time),
        Values::Time(&exit_time),
        Values::Text(&sides),
        Values::Float(&size),
        Values::Float(&entry_price),
        Values::Float(&exit_price),
        Values::Float(&stop_loss),
        Values::Float(&take_profit),
        Values::Float(&pnl),
        Values::Float(&fees),
        Values::Float(&return_pct),
        Values::Text(&reasons),
    ];
    let columns: Vec<_> = TRADE_COLUMNS.iter().copied().zip(values).collect();
    write_table_parquet(path, &columns)
}

/// What the per-bar files hold besides time, close and equity.
pub struct PerBar {
    /// Drawdown from the running peak, percent, <= 0.
    pub drawdown_pct: Vec<f64>,
    /// The position's value at the bar's close as a percentage of equity:
    /// positive long, negative short, 0 when flat.
    pub exposure_pct: Vec<f64>,
}

impl PerBar {
    pub fn new(curve: &EquityCurve, trades: &[Trade]) -> PerBar {
        let drawdown_pct = curve.drawdown_iter().map(|d| -d * 100.0).collect();
        // Units held at each bar's close: a trade holds from its entry
        // bar up to, not including, its exit bar (it is gone by that close).
        // Summed in place, then turned into percent of equity.
        let mut exposure_pct = vec![0.0; curve.len()];
        for t in trades {
            for u in exposure_pct.iter_mut().take(t.exit_bar).skip(t.entry_bar) {
                *u += t.size;
            }
        }
        for ((u, c), e) in exposure_pct
            .iter_mut()
            .zip(curve.close())
            .zip(curve.equity())
        {
            if *u != 0.0 {
                *u = *u * c / e * 100.0;
            }
        }
        PerBar {
            drawdown_pct,
            exposure_pct,
        }
    }
}

/// The per-bar columns' names, shared by the CSV and the Parquet file.
const BAR_COLUMNS: [&str; 5] = ["time", "close", "equity", "drawdown_pct", "exposure_pct"];

/// `equity.parquet`: per bar, time, close, equity, drawdown and exposure
/// (see [`PerBar`]); the default per-bar output, a few bytes a bar.
///
/// # Errors
/// The file cannot be written.
pub fn write_equity_parquet(
    path: &Path,
    curve: &EquityCurve,
    trades: &[Trade],
) -> Result<u64, HistoryError> {
    let bars = PerBar::new(curve, trades);
    let values = [
        Values::Time(curve.time()),
        Values::Float(curve.close()),
        Values::Float(curve.equity()),
        Values::Float(&bars.drawdown_pct),
        Values::Float(&bars.exposure_pct),
    ];
    let columns: Vec<_> = BAR_COLUMNS.iter().copied().zip(values).collect();
    write_table_parquet(path, &columns)
}

/// `equity.csv`: the columns of `equity.parquet` as text, time as
/// `YYYY-MM-DD HH:MM:SS` UTC, floats as the shortest text that reads back
/// to the same value (ryu).
///
/// # Errors
/// The file cannot be written.
pub fn write_equity_csv(path: &Path, curve: &EquityCurve, trades: &[Trade]) -> std::io::Result<()> {
    let bars = PerBar::new(curve, trades);
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    writeln!(w, "{}", BAR_COLUMNS.join(","))?;
    let mut line = Vec::with_capacity(128);
    let mut float = ryu::Buffer::new();
    let mut clock = TimeText::default();
    for i in 0..curve.len() {
        line.clear();
        line.extend_from_slice(clock.format(curve.time()[i]));
        for v in [
            curve.close()[i],
            curve.equity()[i],
            bars.drawdown_pct[i],
            bars.exposure_pct[i],
        ] {
            line.push(b',');
            if v.is_finite() {
                line.extend_from_slice(float.format_finite(v).as_bytes());
            }
        }
        line.push(b'\n');
        w.write_all(&line)?;
    }
    w.flush()
}

/// Formats epoch ms as `YYYY-MM-DD HH:MM:SS` without allocating, reusing
/// the date while consecutive bars fall on one day.
#[derive(Default)]
struct TimeText {
    day: Option<i64>,
    text: [u8; 19],
}

impl TimeText {
    fn format(&mut self, ms: i64) -> &[u8] {
        const DAY_MS: i64 = 86_400_000;
        let day = ms.div_euclid(DAY_MS);
        if self.day != Some(day) {
            let date = format_ms(day * DAY_MS);
            self.text[..10].copy_from_slice(&date.as_bytes()[..10]);
            self.text[10] = b' ';
            self.day = Some(day);
        }
        let secs = ms.rem_euclid(DAY_MS) / 1000;
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        for (at, v) in [(11, h), (14, m), (17, s)] {
            self.text[at] = b'0' + (v / 10) as u8;
            self.text[at + 1] = b'0' + (v % 10) as u8;
        }
        self.text[13] = b':';
        self.text[16] = b':';
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_text_matches_format_ms() {
        let mut t = TimeText::default();
        for ms in [0, 59_000, 86_399_000, 1_492_592_400_000, 1_719_878_399_000] {
            assert_eq!(
                std::str::from_utf8(t.format(ms)).unwrap(),
                format_ms(ms),
                "{ms}"
            );
        }
    }
}
