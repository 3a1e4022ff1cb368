//! Bars per second of a full backtest: indicators, strategy, broker and
//! statistics over synthetic one-minute bars (`synthetic_bars`, the series
//! `benches/backtesting_py.py` regenerates bit for bit for backtesting.py).
//!
//! The strategy is SMA(10/20) always in the market, as backtesting.py's
//! SmaCross, driven three ways:
//! - `native`: `CrossSource`, the plugin's twin in Rust, in the direct loop
//!   (`candlewick_backtest::run`): the broker's and statistics' own share;
//! - `wasm_direct`: the real `sma_cross.wasm` in the sandbox in the direct
//!   loop (`PluginSource`, one call per 1024 bars), as sweeps run it;
//! - `wasm_pipeline`: what `candlewick backtest` runs: `Replay` routes the
//!   bars to the live engine's shard workers (stream state, plugin runner,
//!   in-memory checkpoint per batch) with the broker as the sink.
//!
//! Run `scripts/build-plugins` first. Groups:
//! - `backtest/full_run`: 300k bars, one symbol: the job timed side by side
//!   with `benches/backtesting_py.py` for the ratio in README.md.
//! - `backtest/10m_single`: 10M bars, one symbol.
//! - `backtest/10m_all_cores`: the same 10M bars as 100 symbols of 100k,
//!   one account each, over every core (rayon for the direct loop, one
//!   shard worker per core for the pipeline).
//!
//! The bars are generated once, outside the timing; each iteration streams
//! them through as a reader would (copied out, one at a time).

use candlewick_backtest::{
    backtest_limits, run, CrossSource, PluginSource, Replay, ReplaySeries, RunOptions, SignalSource,
};
use candlewick_benches::{synthetic_bars, wasm_path};
use candlewick_market::{Candle, Symbol};
use candlewick_pipeline::Strategy;
use candlewick_plugins::{HostConfig, LoadedModule, PluginHost};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rayon::prelude::*;

const BARS: usize = 300_000;
const BIG: usize = 10_000_000;
const SYMBOLS: usize = 100;

fn options() -> RunOptions {
    let mut options = RunOptions::default();
    options.broker.lot_size = Some(1.0);
    options
}

fn host() -> PluginHost {
    PluginHost::new(HostConfig {
        limits: backtest_limits(),
        ..HostConfig::default()
    })
    .expect("host")
}

/// `sma_cross` with its default parameters in the direct loop.
fn wasm_direct(host: &PluginHost, module: &LoadedModule) -> PluginSource {
    let values = module
        .manifest()
        .resolve_params::<&str, &str>(&[])
        .expect("defaults");
    PluginSource::new(host, module, &values).expect("instance")
}

/// `symbols` through the pipeline on `workers` shard workers, as
/// `candlewick backtest` runs them; returns the trade count.
fn pipeline(
    host: &PluginHost,
    module: &LoadedModule,
    symbols: &[&[Candle]],
    workers: usize,
) -> usize {
    let replay = Replay {
        host,
        strategy: Strategy {
            limits: backtest_limits(),
            ..Strategy::new(module.clone())
        },
        options: options(),
        workers,
    };
    let series = symbols
        .iter()
        .enumerate()
        .map(|(i, bars)| ReplaySeries {
            symbol: Symbol::new(&format!("S{i:03}")).expect("symbol"),
            candles: Box::new(bars.iter().copied().map(Ok)),
        })
        .collect();
    replay
        .run(series, &|_| {})
        .expect("runs")
        .into_iter()
        .map(|r| r.expect("series runs").trades.len())
        .sum()
}

fn one<S: SignalSource>(mut source: S, bars: &[Candle], options: &RunOptions) -> usize {
    run(
        &mut source,
        bars.iter().copied().map(Ok),
        options,
        &mut |_| {},
    )
    .expect("runs")
    .trades
    .len()
}

fn full_run(c: &mut Criterion) {
    let bars = synthetic_bars(BARS);
    let options = options();
    let host = host();
    let module = host.load_file(&wasm_path("sma_cross")).expect("module");
    let mut group = c.benchmark_group("backtest/full_run");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(20);
    // The whole `candlewick backtest` path minus CSV parsing and file output.
    group.bench_function("sma_cross_10_20_300k_1m_bars", |b| {
        b.iter(|| one(CrossSource::new(10, 20).expect("periods"), &bars, &options));
    });
    group.bench_function("wasm_direct_sma_cross_10_20_300k_1m_bars", |b| {
        b.iter(|| one(wasm_direct(&host, &module), &bars, &options));
    });
    group.bench_function("wasm_pipeline_sma_cross_10_20_300k_1m_bars", |b| {
        b.iter(|| pipeline(&host, &module, &[&bars], 1));
    });
    group.finish();
}

fn ten_million(c: &mut Criterion) {
    let bars = synthetic_bars(BIG);
    let options = options();
    let host = host();
    let module = host.load_file(&wasm_path("sma_cross")).expect("module");

    let mut group = c.benchmark_group("backtest/10m_single");
    group.throughput(Throughput::Elements(BIG as u64));
    group.sample_size(10);
    group.bench_function("native", |b| {
        b.iter(|| one(CrossSource::new(10, 20).expect("periods"), &bars, &options));
    });
    group.bench_function("wasm_direct", |b| {
        b.iter(|| one(wasm_direct(&host, &module), &bars, &options));
    });
    group.bench_function("wasm_pipeline", |b| {
        b.iter(|| pipeline(&host, &module, &[&bars], 1));
    });
    group.finish();

    // 100 symbols of 100k bars each (each its own series and account).
    let symbols: Vec<&[Candle]> = bars.chunks(BIG / SYMBOLS).collect();
    let mut group = c.benchmark_group("backtest/10m_all_cores");
    group.throughput(Throughput::Elements(BIG as u64));
    group.sample_size(10);
    let threads = rayon::current_num_threads();
    group.bench_function(format!("native_{SYMBOLS}_symbols_{threads}_threads"), |b| {
        b.iter(|| {
            symbols
                .par_iter()
                .map(|s| one(CrossSource::new(10, 20).expect("periods"), s, &options))
                .sum::<usize>()
        });
    });
    group.bench_function(
        format!("wasm_direct_{SYMBOLS}_symbols_{threads}_threads"),
        |b| {
            b.iter(|| {
                symbols
                    .par_iter()
                    .map(|s| one(wasm_direct(&host, &module), s, &options))
                    .sum::<usize>()
            });
        },
    );
    group.bench_function(
        format!("wasm_pipeline_{SYMBOLS}_symbols_{threads}_workers"),
        |b| {
            b.iter(|| pipeline(&host, &module, &symbols, threads));
        },
    );
    group.finish();
}

criterion_group!(benches, full_run, ten_million);
criterion_main!(benches);
