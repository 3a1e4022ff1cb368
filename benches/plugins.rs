//! Per-bar cost of running a strategy plugin, against the bare floor.
//!
//! Run `scripts/build-plugins` first (the bench reads
//! `target/wasm/wasm32-unknown-unknown/release/sma_cross.wasm`, or
//! `$WASM_TARGET_DIR/...`).
//!
//! - `plugins/floor/N`: the least any host can do: copy N 64-byte bar
//!   records into guest memory, one typed call, a guest loop that reads one
//!   field per bar (a hand-written module). Same engine settings as the host
//!   (epoch interruption on, a deadline armed per call).
//! - `plugins/sma_cross/N`: the real path a worker takes per batch,
//!   `Plugin::run_batch`: copy, deadline, call, output validation, with
//!   `sma_cross`'s own work (bars carry `sma(10)`, `sma(20)`: 64-byte records
//!   like the floor's).
//! - `plugins/instantiate`: a fresh instance of a cached module, as after a
//!   quarantine or a reload (store, instantiation, `cw_init`, layout check).
//! - `plugins/sma_cross_lang/LANG/N`: the same `run_batch` path for the
//!   `sma_cross` of each SDK (Rust, C, Zig, AssemblyScript) at 1 and 64
//!   bars per batch. Run `scripts/build-sdk-plugins` first (it reads
//!   `target/wasm/sdk/LANG/sma_cross.wasm`); a language not built is
//!   skipped with a message.
//! - `plugins/sma_cross_memories/{default,compact}/N`: Rust's `sma_cross`
//!   with wasmtime's default memory reservation and with compact memories
//!   (explicit bounds checks), side by side.
//!
//! Throughput is in bars, so criterion reports time per bar.

use candlewick_benches::wasm_path;
use candlewick_market::Candle;
use candlewick_plugins::{BarBatch, HostConfig, PluginHost};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use wasmtime::{Config, Engine, Instance, Module, Store};

const BATCHES: [usize; 4] = [1, 8, 64, 512];

/// Bars with two values each (so 64-byte records), warm indicator values.
fn batch(n: usize) -> BarBatch {
    let mut b = BarBatch::new(2);
    for i in 0..n {
        let close = 100.0 + (i as f64 / 5.0).sin();
        let c = Candle {
            open_time: i as i64 * 60_000,
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 1.0,
        };
        b.push(&c, &[close + (i as f64 / 3.0).cos(), close]);
    }
    b
}

const FLOOR_WAT: &str = r#"(module
  (memory (export "memory") 2)
  (func (export "on_batch") (param $n i32) (result i32)
    (local $i i32) (local $acc f64)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (f64.add (local.get $acc)
        (f64.load offset=32 (i32.mul (local.get $i) (i32.const 64)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.trunc_sat_f64_s (f64.min (local.get $acc) (f64.const 0)))))"#;

fn floor(c: &mut Criterion) {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config).expect("engine");
    let module = Module::new(&engine, FLOOR_WAT).expect("floor module");
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(1_000);
    let instance = Instance::new(&mut store, &module, &[]).expect("instance");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    let on_batch = instance
        .get_typed_func::<u32, i32>(&mut store, "on_batch")
        .expect("export");
    let mut group = c.benchmark_group("plugins/floor");
    for n in BATCHES {
        let bars = batch(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                memory.data_mut(&mut store)[..bars.as_bytes().len()]
                    .copy_from_slice(bars.as_bytes());
                store.set_epoch_deadline(1_000);
                on_batch.call(&mut store, n as u32).expect("call")
            })
        });
    }
    group.finish();
}

fn sma_cross(c: &mut Criterion) {
    let host = PluginHost::new(HostConfig::default()).expect("host");
    let module = host.load_file(&wasm_path("sma_cross")).expect("sma_cross");
    let params = module.manifest().defaults().to_vec();
    let mut group = c.benchmark_group("plugins/sma_cross");
    for n in BATCHES {
        let bars = batch(n);
        let mut plugin = host
            .instantiate_with(&module, &params, 2, &bench_limits())
            .expect("instance");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| plugin.run_batch(&bars, 0).expect("healthy").len())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("plugins");
    group.bench_function("instantiate", |b| {
        b.iter_batched(
            || (),
            |()| host.instantiate(&module, &params, 2).expect("instance"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The `sma_cross` module of `lang`, if built.
fn lang_module(lang: &str) -> Option<std::path::PathBuf> {
    if lang == "rust" {
        return Some(wasm_path("sma_cross"));
    }
    let dir = std::env::var_os("WASM_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm"))
        });
    let path = dir.join(format!("sdk/{lang}/sma_cross.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "{} missing: run scripts/build-sdk-plugins; skipping {lang}",
            path.display()
        );
        None
    }
}

/// A deadline the bench cannot trip on a busy machine: it measures the
/// path's cost, not the limit.
fn bench_limits() -> candlewick_plugins::Limits {
    candlewick_plugins::Limits {
        deadline: std::time::Duration::from_secs(1),
        ..Default::default()
    }
}

/// `module`'s `run_batch` at 1 and 64 bars per batch, as `name/N` in `group`.
fn bench_batches(
    group: &mut BenchmarkGroup<'_, WallTime>,
    host: &PluginHost,
    path: &std::path::Path,
    name: &str,
) {
    let module = host.load_file(path).expect("module loads");
    let params = module.manifest().defaults().to_vec();
    for n in [1usize, 64] {
        let bars = batch(n);
        let mut plugin = host
            .instantiate_with(&module, &params, 2, &bench_limits())
            .expect("instance");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
            b.iter(|| plugin.run_batch(&bars, 0).expect("healthy").len())
        });
    }
}

fn sma_cross_by_language(c: &mut Criterion) {
    let host = PluginHost::new(HostConfig::default()).expect("host");
    let mut group = c.benchmark_group("plugins/sma_cross_lang");
    for lang in ["rust", "c", "zig", "assemblyscript"] {
        if let Some(path) = lang_module(lang) {
            bench_batches(&mut group, &host, &path, lang);
        }
    }
    group.finish();
}

/// `sma_cross` (Rust) with the host's default memories and with compact
/// ones (`HostConfig::compact_memories`: each memory reserves only its cap,
/// so wasm code checks its bounds), side by side in one run.
fn sma_cross_compact(c: &mut Criterion) {
    let mut group = c.benchmark_group("plugins/sma_cross_memories");
    for (name, compact) in [("default", false), ("compact", true)] {
        let host = PluginHost::new(HostConfig {
            compact_memories: compact,
            ..HostConfig::default()
        })
        .expect("host");
        bench_batches(&mut group, &host, &wasm_path("sma_cross"), name);
    }
    group.finish();
}

criterion_group!(
    benches,
    floor,
    sma_cross,
    sma_cross_by_language,
    sma_cross_compact
);
criterion_main!(benches);
