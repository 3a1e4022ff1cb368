//! The machine-readable outputs. Floats are written with Rust's shortest
//! round-trip formatting: reading a value back gives the same bits.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;

use candlewick_history::{
    write_table_parquet, HistoryError, Kind, TableWriter, Values, TABLE_CHUNK,
};
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

/// What the per-bar files hold besides time, close and equity, computed a
/// chunk of bars at a time: the writers stream them beside the curve
/// instead of holding two more series of the run's length (16 MB of fresh
/// memory at 1M bars).
pub struct PerBar<'a> {
    curve: &'a EquityCurve,
    trades: &'a [Trade],
    /// The running equity peak before bar `next`.
    peak: f64,
    next: usize,
    /// Of the last chunk: drawdown from the running peak, percent, <= 0.
    pub drawdown_pct: Vec<f64>,
    /// Of the last chunk: the position's value at the bar's close as a
    /// percentage of equity, positive long, negative short, 0 when flat.
    pub exposure_pct: Vec<f64>,
}

impl<'a> PerBar<'a> {
    pub fn new(curve: &'a EquityCurve, trades: &'a [Trade]) -> Self {
        PerBar {
            curve,
            trades,
            peak: f64::NEG_INFINITY,
            next: 0,
            drawdown_pct: Vec::new(),
            exposure_pct: Vec::new(),
        }
    }

    /// Computes the next chunk of at most `n` bars into the two vectors;
    /// returns the bars' range, `None` after the last bar.
    pub fn next_chunk(&mut self, n: usize) -> Option<Range<usize>> {
        let (start, end) = (self.next, (self.next + n).min(self.curve.len()));
        if start >= end {
            return None;
        }
        self.next = end;
        let equity = &self.curve.equity()[start..end];
        self.drawdown_pct.clear();
        for &e in equity {
            self.peak = self.peak.max(e);
            let drawdown = 1.0 - e / self.peak; // as EquityCurve::drawdown_iter
            self.drawdown_pct.push(-drawdown * 100.0);
        }
        // Units held at each bar's close: a trade holds from its entry bar
        // up to, not including, its exit bar (it is gone by that close).
        // Summed in place, then turned into percent of equity.
        self.exposure_pct.clear();
        self.exposure_pct.resize(end - start, 0.0);
        for t in self.trades {
            let (from, to) = (t.entry_bar.max(start), t.exit_bar.min(end));
            for u in self
                .exposure_pct
                .iter_mut()
                .take(to.saturating_sub(start))
                .skip(from - start)
            {
                *u += t.size;
            }
        }
        let close = &self.curve.close()[start..end];
        for ((u, c), e) in self.exposure_pct.iter_mut().zip(close).zip(equity) {
            if *u != 0.0 {
                *u = *u * c / e * 100.0;
            }
        }
        Some(start..end)
    }
}

/// The per-bar columns, shared by the CSV and the Parquet file.
const BAR_COLUMNS: [(&str, Kind); 5] = [
    ("time", Kind::Time),
    ("close", Kind::Float),
    ("equity", Kind::Float),
    ("drawdown_pct", Kind::Float),
    ("exposure_pct", Kind::Float),
];

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
    let mut table = TableWriter::create(path, &BAR_COLUMNS)?;
    let mut bars = PerBar::new(curve, trades);
    while let Some(r) = bars.next_chunk(TABLE_CHUNK) {
        table.write(&[
            Values::Time(&curve.time()[r.clone()]),
            Values::Float(&curve.close()[r.clone()]),
            Values::Float(&curve.equity()[r]),
            Values::Float(&bars.drawdown_pct),
            Values::Float(&bars.exposure_pct),
        ])?;
    }
    table.finish()
}

/// `equity.csv`: the columns of `equity.parquet` as text, time as
/// `YYYY-MM-DD HH:MM:SS` UTC, floats as the shortest text that reads back
/// to the same value (ryu).
///
/// # Errors
/// The file cannot be written.
pub fn write_equity_csv(path: &Path, curve: &EquityCurve, trades: &[Trade]) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let names: Vec<&str> = BAR_COLUMNS.iter().map(|(name, _)| *name).collect();
    writeln!(w, "{}", names.join(","))?;
    let mut line = Vec::with_capacity(128);
    let mut float = ryu::Buffer::new();
    let mut clock = TimeText::default();
    let mut bars = PerBar::new(curve, trades);
    while let Some(r) = bars.next_chunk(TABLE_CHUNK) {
        for (j, i) in r.enumerate() {
            line.clear();
            line.extend_from_slice(clock.format(curve.time()[i]));
            for v in [
                curve.close()[i],
                curve.equity()[i],
                bars.drawdown_pct[j],
                bars.exposure_pct[j],
            ] {
                line.push(b',');
                if v.is_finite() {
                    line.extend_from_slice(float.format_finite(v).as_bytes());
                }
            }
            line.push(b'\n');
            w.write_all(&line)?;
        }
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

    /// Drawdown and exposure come out the same, bit for bit, whatever the
    /// chunk: trades that span chunk boundaries, a peak set in an earlier
    /// chunk, overlapping trades summed in their order.
    #[test]
    fn per_bar_chunks_give_the_whole_runs_values() {
        let mut curve = EquityCurve::default();
        for i in 0..1000 {
            let x = i as f64;
            curve.push(
                i * 60_000,
                100.0 + x.sin() * 5.0,
                10_000.0 + (x / 37.0).cos() * 900.0 + x,
            );
        }
        let trades = [
            Trade::held(3.0, 5, 300),
            Trade::held(-2.0, 250, 251),
            Trade::held(1.5, 299, 999),
            Trade::held(-0.5, 700, 1000),
        ];
        // Computed directly over the whole run.
        let drawdown: Vec<f64> = curve.drawdown().iter().map(|d| -d * 100.0).collect();
        let mut exposure = vec![0.0; curve.len()];
        for t in &trades {
            for u in &mut exposure[t.entry_bar..t.exit_bar] {
                *u += t.size;
            }
        }
        for (i, u) in exposure.iter_mut().enumerate() {
            if *u != 0.0 {
                *u = *u * curve.close()[i] / curve.equity()[i] * 100.0;
            }
        }
        for chunk in [1, 7, 250, 256, 999, 1000, 4096] {
            let mut bars = PerBar::new(&curve, &trades);
            let (mut dd, mut ex) = (Vec::new(), Vec::new());
            while let Some(r) = bars.next_chunk(chunk) {
                assert!(r.len() <= chunk && r.start == dd.len());
                dd.extend_from_slice(&bars.drawdown_pct);
                ex.extend_from_slice(&bars.exposure_pct);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dd), bits(&drawdown), "chunk {chunk}");
            assert_eq!(bits(&ex), bits(&exposure), "chunk {chunk}");
        }
        // The short at bar 250 offsets part of the long; the last bar is short.
        assert!(exposure[0] == 0.0 && exposure[999] < 0.0);
        assert!(exposure[250] > 0.0 && exposure[250] < exposure[249]);
    }

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
