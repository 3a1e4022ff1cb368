//! What the backtest tests share: the bundled data, the plugin host, and
//! one call that runs series through the engine ([`Replay`]), the one
//! backtest loop there is.
#![allow(dead_code)] // each test file uses its own share of these

use std::path::PathBuf;

use candlewick_backtest::{backtest_limits, Replay, ReplaySeries, RunError, RunOptions, RunResult};
use candlewick_market::{Candle, CsvReader, Symbol};
use candlewick_pipeline::Strategy;
use candlewick_plugins::{HostConfig, LoadedModule, PluginHost};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn eurusd_path() -> PathBuf {
    root().join("data/EURUSD-1h.csv")
}

/// 5,000 hourly EURUSD bars.
pub fn eurusd() -> Vec<Candle> {
    CsvReader::open(&eurusd_path())
        .expect("data")
        .collect::<Result<_, _>>()
        .expect("valid data")
}

pub fn host() -> PluginHost {
    PluginHost::new(HostConfig {
        limits: backtest_limits(),
        ..HostConfig::default()
    })
    .expect("host")
}

/// A plugin of `plugins/` or `tests/plugins/`, built if need be.
pub fn module(host: &PluginHost, name: &str) -> LoadedModule {
    let dir = candlewick_plugins::testing::build_plugins(&root()).unwrap_or_else(|e| panic!("{e}"));
    host.load_file(&dir.join(format!("{name}.wasm")))
        .expect("module")
}

/// Whole units, as backtesting.py trades.
pub fn options() -> RunOptions {
    let mut options = RunOptions::default();
    options.broker.lot_size = Some(1.0);
    options
}

pub fn series<'a>(symbol: &str, bars: &'a [Candle]) -> ReplaySeries<'a> {
    ReplaySeries {
        symbol: Symbol::new(symbol).expect("symbol"),
        candles: Box::new(bars.iter().copied().map(Ok)),
    }
}

/// The engine's backtest of `module` with `params` on `workers` workers.
pub fn replay<'a>(
    host: &'a PluginHost,
    module: &LoadedModule,
    params: &[(&str, &str)],
    options: RunOptions,
    workers: usize,
) -> Replay<'a> {
    Replay {
        host,
        strategy: Strategy {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            limits: backtest_limits(),
            ..Strategy::new(module.clone())
        },
        options,
        workers,
    }
}

/// One series through the engine on one worker.
pub fn run_one(
    host: &PluginHost,
    module: &LoadedModule,
    params: &[(&str, &str)],
    options: RunOptions,
    bars: &[Candle],
) -> Result<RunResult, RunError> {
    replay(host, module, params, options, 1)
        .run(vec![series("EURUSD", bars)], &|_| {})?
        .pop()
        .expect("one result per series")
}
