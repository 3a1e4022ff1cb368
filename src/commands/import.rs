//! `candlewick import`: convert candles between formats, into the history
//! store's columnar files.
//!
//! Streams from any reader ([`CandleReader`]: either CSV dialect, Arrow IPC
//! or Parquet) into a [`CandleWriter`] chunk by chunk, so memory stays
//! flat whatever the file's length. Every row is validated on the way in
//! (the first bad one stops the import, naming its file and line), and the
//! output appears under its name only once complete.

use std::path::PathBuf;

use anyhow::{bail, Context};
use candlewick_history::{symbols, CandleReader, CandleWriter, Format, WriteOptions};
use candlewick_market::Symbol;
use indicatif::{ProgressBar, ProgressStyle};

/// Convert a candle file (CSV in either dialect, Arrow or Parquet) to Arrow
/// IPC or Parquet (DESIGN §4 schema: open_time ms UTC, open/high/low/close/
/// volume f64, optional dictionary-encoded symbol), streaming.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Input candles: .csv (either dialect), .arrow or .parquet.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// Output, by extension: .arrow (Arrow IPC file) or .parquet (Snappy).
    #[arg(long, value_name = "FILE.arrow|FILE.parquet")]
    pub out: PathBuf,
    /// Tag every row with this symbol (a `symbol` column); for inputs that
    /// have none. An input's own symbol column is always kept.
    #[arg(long, value_name = "SYMBOL")]
    pub symbol: Option<String>,
}

/// Rows between progress-bar updates.
const TICK: u64 = 1 << 16;

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let format = Format::from_path(&args.out)?;
    if format == Format::Csv {
        bail!(
            "{}: import writes .arrow or .parquet, not CSV",
            args.out.display()
        );
    }
    if same_file(&args.data, &args.out) {
        bail!(
            "{}: --out is the input file; write to a new file",
            args.out.display()
        );
    }
    let tag = args
        .symbol
        .as_deref()
        .map(Symbol::new)
        .transpose()
        .context("--symbol")?;
    let mut reader = CandleReader::open(&args.data)?;
    let own = symbols(&args.data)?;
    let declared: Option<Vec<String>> = match (&tag, own.is_empty()) {
        (None, true) => None,
        (None, false) => Some(own),
        (Some(s), true) => Some(vec![s.as_str().to_owned()]),
        (Some(_), false) => bail!(
            "{}: the file has its own symbol column ({}); drop --symbol",
            args.data.display(),
            own.join(", ")
        ),
    };
    let mut writer = CandleWriter::create(
        &args.out,
        format,
        declared.as_deref(),
        WriteOptions::default(),
    )?;
    let progress = bar(reader.progress().total, reader.progress().unit);
    let tag = tag.as_ref().map(Symbol::as_str);
    while let Some(row) = reader.next_row() {
        let row = row?;
        writer.push_for(row.symbol.or(tag), &row.candle)?;
        if writer.rows() % TICK == 0 {
            progress.set_position(reader.progress().done);
        }
    }
    progress.finish_and_clear();
    let rows = writer.finish()?;
    if rows == 0 {
        // Unreachable for CSV (an empty file is refused on open), possible
        // for a columnar file with a schema and no rows: say so, loudly.
        let _ = std::fs::remove_file(&args.out);
        bail!("{}: no candles to import", args.data.display());
    }
    println!(
        "imported {rows} candles: {} -> {} ({})",
        args.data.display(),
        args.out.display(),
        format.as_str()
    );
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// A bar on stderr for a known total (hidden when stderr is not a
/// terminal), a spinner otherwise.
fn bar(total: Option<u64>, unit: &str) -> ProgressBar {
    match total {
        Some(n) => {
            let pb = ProgressBar::new(n);
            let template = if unit == "bytes" {
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            } else {
                "{bar:40} {pos}/{len} rows {per_sec} eta {eta}"
            };
            pb.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb
        }
        None => ProgressBar::new_spinner(),
    }
}
