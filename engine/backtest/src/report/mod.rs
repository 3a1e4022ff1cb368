//! What a run leaves behind: `stats.json`, `trades.csv` and
//! `trades.parquet`, the per-bar series (`equity.parquet`, or `equity.csv`
//! on request), a self-contained `report.html`, and a summary table for
//! the terminal.
//!
//! Per-bar files grow with the data (a row per bar), so they are Parquet
//! by default: on millions of bars, formatting floats as text would cost
//! more than the backtest. The HTML draws at most a few thousand points
//! per chart (each pixel column's minimum and maximum, so no spike is
//! hidden) and stays a few hundred kilobytes whatever the length.
//!
//! Every file states the run's inputs, settings and fingerprint, so a
//! number found in one can be traced to what produced it. The HTML has no
//! script and no link: charts are inline SVG, and it opens offline.

mod files;
mod html;
mod svg;
mod table;

pub use files::{
    write_equity_csv, write_equity_parquet, write_stats_json, write_trades_csv,
    write_trades_parquet, PerBar,
};
pub use html::render_html;
pub use table::summary_table;

use std::path::Path;

use crate::fingerprint::Inputs;
use crate::result::RunResult;

/// A finished run with what is needed to describe it.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub result: &'a RunResult,
    pub inputs: &'a Inputs,
    /// Shown in headers: the data file and strategy as the user named them.
    pub data_label: &'a str,
    pub strategy_label: &'a str,
    pub fingerprint: &'a str,
}

/// The assumptions a reader must know, in words, for the report's header.
pub fn assumptions(result: &RunResult) -> Vec<String> {
    let b = &result.options.broker;
    let end = match b.end_of_data {
        crate::EndOfData::CloseAtLastClose => "at the last bar's close",
        crate::EndOfData::CloseAtLastOpen => {
            "at the last bar's open (backtesting.py finalize_trades)"
        }
    };
    let lot = b.lot_size.map_or_else(
        || "fractional units".to_owned(),
        |l| format!("units rounded down to lots of {l}"),
    );
    let a = &result.stats.annualisation;
    vec![
        "Signals decided on a bar's close are filled at the next bar's open; a signal on the last bar is not filled.".to_owned(),
        format!("Fee {} bps of notional per fill; slippage {} bps against the trader on market and stop fills.", b.fee_bps, b.slippage_bps),
        "Stops and targets are checked against each bar's high/low from the entry bar on; a gap through the stop fills at the open; when both are in one bar's range the stop is assumed first.".to_owned(),
        format!("One net position, sized as |strength| x {} of equity with fees paid from it; {lot}.", b.max_fraction),
        format!("A position still open at the end is closed {end} and marked end_of_data."),
        format!(
            "Annualisation: bars of {}, {} returns of equity, {} periods per year (weekend share of bars {:.3}).",
            a.bar_interval, a.period, a.periods_per_year, a.weekend_share
        ),
        format!("Buy & Hold starts at bar {} (first bar with every indicator of {:?}).", result.warmup, result.indicator_spec),
    ]
}

/// The format of the per-bar file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PerBarFormat {
    /// `equity.parquet` (the default).
    #[default]
    Parquet,
    /// `equity.csv`.
    Csv,
}

impl PerBarFormat {
    /// The per-bar file's name.
    pub fn file_name(self) -> &'static str {
        match self {
            PerBarFormat::Parquet => "equity.parquet",
            PerBarFormat::Csv => "equity.csv",
        }
    }
}

/// Writes every file into `dir`, creating it, with the per-bar series as
/// Parquet.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write_all(dir: &Path, report: &Report<'_>) -> std::io::Result<()> {
    write_files(dir, report, PerBarFormat::Parquet).map(drop)
}

/// Writes every file into `dir`, creating it; returns their names.
///
/// The per-bar file, the largest by far (a row per bar), is written on a
/// thread of its own while this one writes the rest and renders the HTML:
/// on a 1M-bar run the two take about as long as each other.
///
/// # Errors
/// The directory or a file cannot be written (the first failure; the
/// other writer is still waited for).
pub fn write_files(
    dir: &Path,
    report: &Report<'_>,
    per_bar: PerBarFormat,
) -> std::io::Result<Vec<&'static str>> {
    let r = report.result;
    std::fs::create_dir_all(dir)?;
    let bars = dir.join(per_bar.file_name());
    let (bars_written, rest_written) = std::thread::scope(|scope| {
        let bars_writer = scope.spawn(|| match per_bar {
            PerBarFormat::Parquet => write_equity_parquet(&bars, &r.curve, &r.trades)
                .map(drop)
                .map_err(std::io::Error::other),
            PerBarFormat::Csv => write_equity_csv(&bars, &r.curve, &r.trades),
        });
        let rest = write_small_files(dir, report);
        let bars = bars_writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the per-bar writer panicked")));
        (bars, rest)
    });
    bars_written?;
    rest_written?;
    Ok(vec![
        "stats.json",
        "trades.csv",
        "trades.parquet",
        per_bar.file_name(),
        "report.html",
    ])
}

/// Every file but the per-bar one: a few per trade, or fixed in size.
fn write_small_files(dir: &Path, report: &Report<'_>) -> std::io::Result<()> {
    let trades = &report.result.trades;
    write_stats_json(&dir.join("stats.json"), report)?;
    write_trades_csv(&dir.join("trades.csv"), trades)?;
    write_trades_parquet(&dir.join("trades.parquet"), trades).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("report.html"), render_html(report))
}
