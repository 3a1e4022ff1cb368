//! Bars per second of a full backtest: indicators, strategy, broker and
//! statistics over synthetic one-minute bars (`synthetic_bars`, the series
//! `benches/backtesting_py.py` regenerates bit for bit for backtesting.py).
//!
//! The strategy is SMA(10/20) always in the market, as backtesting.py's
//! SmaCross: the real `sma_cross.wasm` in the sandbox, run the one way
//! there is: `Replay` routes the bars to the live engine's shard workers
//! (stream state, plugin runner) with the broker as the sink, as
//! `candlewick backtest` does. (The direct loop that ran a strategy beside
//! the engine is retired; its last figures are in README.md.)
//!
//! Run `scripts/build-plugins` first. Groups:
//! - `backtest/full_run`: 300k bars, one symbol: the job timed side by side
//!   with `benches/backtesting_py.py` for the ratio in README.md.
//! - `backtest/10m_single`: 10M bars, one symbol.
//! - `backtest/10m_all_cores`: the same 10M bars as 100 symbols of 100k,
//!   one account each, over every core, the two ways a sweep could run
//!   them: many engines of one worker in parallel (rayon, as
//!   `candlewick backtest --param a..b` runs its points), or one engine
//!   with every stream on one shard worker per core.
//!
//! The bars are generated once, outside the timing; each iteration streams
//! them through as a reader would (copied out, one at a time).

use candlewick_backtest::{backtest_limits, Replay, ReplaySeries, RunOptions};
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

fn full_run(c: &mut Criterion) {
    let bars = synthetic_bars(BARS);
    let host = host();
    let module = host.load_file(&wasm_path("sma_cross")).expect("module");
    let mut group = c.benchmark_group("backtest/full_run");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(20);
    // The whole `candlewick backtest` path minus CSV parsing and file output.
    group.bench_function("wasm_pipeline_sma_cross_10_20_300k_1m_bars", |b| {
        b.iter(|| pipeline(&host, &module, &[&bars], 1));
    });
    group.finish();
}

fn ten_million(c: &mut Criterion) {
    let bars = synthetic_bars(BIG);
    let host = host();
    let module = host.load_file(&wasm_path("sma_cross")).expect("module");

    let mut group = c.benchmark_group("backtest/10m_single");
    group.throughput(Throughput::Elements(BIG as u64));
    group.sample_size(10);
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
    group.bench_function(
        format!("wasm_engines_{SYMBOLS}_symbols_{threads}_threads"),
        |b| {
            b.iter(|| {
                symbols
                    .par_iter()
                    .map(|s| pipeline(&host, &module, &[s], 1))
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
