//! What a run leaves behind: `stats.json`, `trades.csv`, `equity.csv`, a
//! self-contained `report.html`, and a summary table for the terminal.
//!
//! Every file states the run's inputs, settings and fingerprint, so a
//! number found in one can be traced to what produced it. The HTML has no
//! script and no link: charts are inline SVG, and it opens offline.

mod files;
mod html;
mod svg;
mod table;

pub use files::{write_equity_csv, write_stats_json, write_trades_csv};
pub use html::render_html;
pub use table::summary_table;

use std::path::Path;

use crate::fingerprint::Inputs;
use crate::run::RunResult;

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

/// Writes the four files into `dir`, creating it.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write_all(dir: &Path, report: &Report<'_>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_stats_json(&dir.join("stats.json"), report)?;
    write_trades_csv(&dir.join("trades.csv"), &report.result.trades)?;
    write_equity_csv(&dir.join("equity.csv"), &report.result.curve)?;
    std::fs::write(dir.join("report.html"), render_html(report))
}
