//! `candlewick indicators`: compute an indicator spec over a candle file.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use candlewick_indicators::{spec::catalogue, IndicatorSet};
use candlewick_market::CsvReader;
use indicatif::{ProgressBar, ProgressStyle};

use super::output::{AtomicFile, IndicatorWriter};

/// Compute technical indicators over a candle CSV, TA-Lib-exact, streaming.
///
/// Reads the file one row at a time (constant memory: 10 million rows are
/// fine) and writes one output row per candle: `time` (epoch ms, UTC), then
/// one column per indicator output, named by the spec item
/// (`macd(12,26,9).signal`). Warm-up cells are empty; floats round-trip.
/// The first bad input row stops the run with its line and field.
#[derive(Debug, clap::Args)]
#[command(after_long_help = indicators_help())]
pub struct IndicatorsArgs {
    /// Candle CSV: a header with Open,High,Low,Close,Volume (any case), or
    /// Binance kline rows (no header, 12 columns, open time in ms or us).
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,

    /// Space-separated items, e.g. "sma(20) macd(12,26,9) bbands(20,2) obv".
    #[arg(long, value_name = "SPEC")]
    pub spec: String,

    /// Output CSV, or `-` for stdout. A file appears only when complete.
    #[arg(long, value_name = "OUT.csv")]
    pub out: PathBuf,
}

fn indicators_help() -> String {
    format!("Indicators: {}\n\nExample:\n  candlewick indicators --data data/EURUSD-1h.csv \\\n    --spec \"sma(20) rsi(14) macd(12,26,9)\" --out out/ind.csv", catalogue())
}

/// What a run did, for the summary line.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub rows: u64,
    pub columns: usize,
}

pub fn run(args: IndicatorsArgs) -> anyhow::Result<()> {
    let mut set = IndicatorSet::parse(&args.spec).context("--spec")?;
    let reader = CsvReader::open(&args.data)?;
    let started = Instant::now();
    let summary = if args.out.as_os_str() == "-" {
        let stdout = std::io::stdout().lock();
        write_all(reader, &mut set, IndicatorWriter::new(stdout), None)?.0
    } else {
        let total = std::fs::metadata(&args.data).map(|m| m.len()).unwrap_or(0);
        let (file, writer) = AtomicFile::create(&args.out)?;
        let (summary, writer) = write_all(
            reader,
            &mut set,
            IndicatorWriter::new(writer),
            Some(progress(total)),
        )?;
        file.commit(writer)?;
        summary
    };
    tracing::info!(
        rows = summary.rows,
        columns = summary.columns,
        seconds = started.elapsed().as_secs_f64(),
        "wrote {}",
        args.out.display()
    );
    Ok(())
}

fn progress(total_bytes: u64) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} {bar:30} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Streams every candle through `set` into `writer`.
///
/// # Errors
/// The first bad row (with file and line) or a write error.
pub fn write_all<R: BufRead, W: Write>(
    mut reader: CsvReader<R>,
    set: &mut IndicatorSet,
    mut writer: IndicatorWriter<W>,
    progress: Option<ProgressBar>,
) -> anyhow::Result<(Summary, W)> {
    writer.header(set.columns())?;
    let mut values = vec![0.0; set.width()];
    let mut rows = 0u64;
    while let Some(candle) = reader.next() {
        let candle = candle?;
        set.update(&candle, &mut values);
        writer.row(candle.open_time, &values)?;
        rows += 1;
        if rows % 65_536 == 0 {
            if let Some(bar) = &progress {
                bar.set_position(reader.bytes_read());
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let out = writer.finish()?;
    Ok((
        Summary {
            rows,
            columns: set.width(),
        },
        out,
    ))
}
