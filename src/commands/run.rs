//! `candlewick run`: the main job.
//!
//! Today it replays a candle source through the indicator stage with
//! RocksDB checkpoints; the live engine (exchange ingest, strategies,
//! signal feed) arrives with its own issue and is not faked here.

use std::io::{BufRead, Cursor};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use candlewick_market::{time::format_ms, CsvReader};
use candlewick_state::{Checkpoint, StateStore, Store, StoreOptions, StreamKey, StreamState};

use super::output::{AtomicFile, IndicatorWriter};
use crate::config::{Config, DataRef, SourceKind};

/// Run the engine: replay candles through the indicators, checkpointing
/// state to RocksDB so the next run resumes where this one stopped.
///
/// With no --config, uses the embedded default (config/default.toml):
/// offline, on the bundled EURUSD hourly candles.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Configuration file (TOML). Default: the embedded config/default.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What a run did.
#[derive(Debug, Default)]
struct Tally {
    applied: u64,
    already_applied: u64,
    checkpoints: u64,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    // The only source so far; the live exchange source adds a variant.
    let SourceKind::Replay = config.source.kind;
    let key = StreamKey::new(config.source.symbol.clone(), config.source.interval);
    let store = Store::open_with(
        &config.state.path,
        StoreOptions::default().sync(config.state.sync),
    )?;
    let mut stream = store.load(&key, &config.indicators.spec)?;
    match stream.last_open_time() {
        Some(t) => tracing::info!(stream = %key, "resuming after the candle of {}", format_ms(t)),
        None => tracing::info!(stream = %key, "no checkpoint yet: starting from the first candle"),
    }
    let started = Instant::now();
    let (source_name, tally) = match &config.source.data {
        DataRef::Bundled(bundled) => {
            let reader = CsvReader::new(
                Path::new(bundled.name()),
                Cursor::new(bundled.text().as_bytes()),
            )?;
            (
                bundled.name().to_owned(),
                replay(reader, &mut stream, &store, &config)?,
            )
        }
        DataRef::File(path) => (
            path.display().to_string(),
            replay(CsvReader::open(path)?, &mut stream, &store, &config)?,
        ),
    };
    tracing::info!(
        stream = %key,
        applied = tally.applied,
        already_applied = tally.already_applied,
        checkpoints = tally.checkpoints,
        seconds = started.elapsed().as_secs_f64(),
        "replayed {source_name}: state in {}, indicator rows in {}",
        config.state.path.display(),
        config.output.indicators.display(),
    );
    tracing::info!(
        "strategies, the signal feed and live exchange ingest are not built yet \
         (see README, Roadmap); this run computed indicators and checkpoints only"
    );
    Ok(())
}

/// Applies every candle not applied before, checkpointing every
/// `checkpoint_every` candles and at the end, in one WriteBatch each.
fn replay<R: BufRead>(
    mut reader: CsvReader<R>,
    stream: &mut StreamState,
    store: &Store,
    config: &Config,
) -> anyhow::Result<Tally> {
    let (file, writer) = AtomicFile::create(&config.output.indicators)?;
    let mut writer = IndicatorWriter::new(writer);
    writer.header(stream.set().columns())?;
    let mut values = vec![0.0; stream.set().width()];
    let mut tally = Tally::default();
    let mut pending = 0;
    for candle in reader.by_ref() {
        let candle = candle?;
        // A restart replays the source from its start: candles at or before
        // the checkpoint are already in the state and are passed over here,
        // counted, never re-applied.
        if stream
            .last_open_time()
            .is_some_and(|last| candle.open_time <= last)
        {
            tally.already_applied += 1;
            continue;
        }
        stream.apply(&candle, &mut values)?;
        writer.row(candle.open_time, &values)?;
        tally.applied += 1;
        pending += 1;
        if pending == config.state.checkpoint_every {
            checkpoint(store, stream, &mut tally)?;
            pending = 0;
        }
    }
    if pending > 0 {
        checkpoint(store, stream, &mut tally)?;
    }
    file.commit(writer.finish()?).context("indicator output")?;
    Ok(tally)
}

fn checkpoint(store: &Store, stream: &StreamState, tally: &mut Tally) -> anyhow::Result<()> {
    let mut batch = Checkpoint::new();
    batch.stream(stream);
    store.commit(&batch)?;
    tally.checkpoints += 1;
    Ok(())
}
