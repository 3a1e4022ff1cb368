//! Bars per second of a full backtest: indicators, strategy, broker and
//! statistics over synthetic one-minute bars (`synthetic_bars`, the series
//! `benches/backtesting_py.py` regenerates bit for bit for backtesting.py).
//!
//! The strategy is SMA(10/20) always in the market, as backtesting.py's
//! SmaCross, in two forms:
//! - `native`: `CrossSource`, the plugin's twin in Rust, which measures the
//!   engine's own share;
//! - `wasm`: the real `sma_cross.wasm` in the sandbox (one batched call per
//!   1024 bars, deadline and output validation included), which is what
//!   `candlewick backtest` runs. Run `scripts/build-plugins` first.
//!
//! Groups:
//! - `backtest/full_run`: 300k bars, one thread: the job timed side by side
//!   with `benches/backtesting_py.py` for the ratio in README.md.
//! - `backtest/10m_single`: 10M bars, one symbol, one thread.
//! - `backtest/10m_all_cores`: the same 10M bars as 100 symbols of 100k,
//!   one independent backtest each, spread over every core with rayon (as
//!   `candlewick backtest` runs several symbols).
//!
//! The bars are generated once, outside the timing; each iteration streams
//! them through `run` as a reader would (copied out, one at a time).

use std::path::PathBuf;
use std::time::Duration;

use candlewick_backtest::{run, CrossSource, RunOptions, Signal, SignalSource, StrategyError};
use candlewick_benches::synthetic_bars;
use candlewick_market::Candle;
use candlewick_plugins::{BarBatch, HostConfig, Limits, LoadedModule, Plugin, PluginHost};
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

/// The host as `candlewick backtest` sets it up: a per-call deadline that
/// guards against a plugin that never returns, not the live latency budget
/// (1 ms), which 16 instantiations at once can miss on an idle machine.
fn host() -> PluginHost {
    PluginHost::new(HostConfig {
        limits: Limits {
            deadline: Duration::from_secs(10),
            ..Limits::default()
        },
        ..HostConfig::default()
    })
    .expect("host")
}

fn wasm_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm")));
    let path = dir.join(format!("wasm32-unknown-unknown/release/{name}.wasm"));
    assert!(
        path.is_file(),
        "{} missing: run scripts/build-plugins first",
        path.display()
    );
    path
}

/// The wasm plugin as a signal source, as `src/commands/backtest.rs` wires
/// it: bars and their indicator values packed into ABI records, one call
/// per batch.
struct Wasm {
    plugin: Plugin,
    spec: String,
    batch: BarBatch,
}

impl Wasm {
    fn new(host: &PluginHost, module: &LoadedModule) -> Wasm {
        let params = module
            .manifest()
            .resolve_params::<&str, &str>(&[])
            .expect("defaults");
        let spec = module.manifest().indicator_spec(&params).expect("spec");
        let plugin = host.instantiate(module, &params, 2).expect("instance");
        Wasm {
            plugin,
            spec,
            batch: BarBatch::new(2),
        }
    }
}

impl SignalSource for Wasm {
    fn indicator_spec(&self) -> String {
        self.spec.clone()
    }

    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        self.batch.clear();
        for (bar, row) in bars.iter().zip(values.chunks_exact(2)) {
            self.batch.push(bar, row);
        }
        let now = bars.last().map_or(0, |b| b.open_time);
        let signals = self
            .plugin
            .run_batch(&self.batch, now)
            .map_err(|f| StrategyError(f.to_string()))?;
        out.extend(signals.iter().map(|s| {
            (
                s.bar,
                Signal {
                    action: s.action,
                    strength: s.strength,
                    stop_loss: s.stop_loss,
                    take_profit: s.take_profit,
                },
            )
        }));
        Ok(())
    }
}

/// One full backtest over `bars`; returns the trade count (kept alive so
/// the work cannot be optimised away).
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
    group.bench_function("wasm_sma_cross_10_20_300k_1m_bars", |b| {
        b.iter(|| one(Wasm::new(&host, &module), &bars, &options));
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
    group.bench_function("wasm", |b| {
        b.iter(|| one(Wasm::new(&host, &module), &bars, &options));
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
    group.bench_function(format!("wasm_{SYMBOLS}_symbols_{threads}_threads"), |b| {
        b.iter(|| {
            symbols
                .par_iter()
                .map(|s| one(Wasm::new(&host, &module), s, &options))
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, full_run, ten_million);
criterion_main!(benches);
