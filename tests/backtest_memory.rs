//! Memory stays flat over 100 backtests in one process: the whole
//! `candlewick backtest` path (validated reader -> router -> shard worker:
//! stream state, the wasm `sma_cross` plugin in its sandbox, in-memory
//! checkpoint -> broker sink -> statistics -> fingerprint), run again and again as a sweep or a long-lived service
//! would.
//!
//! Two measures, no timings: heap bytes still live after each run (a
//! counting allocator in this test binary; a leak shows as growth) and the
//! process's resident set, which also sees wasm linear memories and code
//! (mapped outside the heap). The first 10 runs are the warm-up (caches,
//! thread-locals, allocator pools); the last 90 must not grow past it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use common::{repo, wasm};

use candlewick_backtest::fingerprint::{fingerprint, Inputs};
use candlewick_backtest::{backtest_limits, Replay, ReplaySeries, RunOptions};
use candlewick_history::CandleReader;
use candlewick_market::Symbol;
use candlewick_pipeline::Strategy;
use candlewick_plugins::{HostConfig, LoadedModule, PluginHost};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One backtest from file to fingerprint, as `candlewick backtest` runs
/// it (through a shard worker); everything it made is dropped.
fn one_run(host: &PluginHost, module: &LoadedModule, data: &Path) -> String {
    let mut options = RunOptions::default();
    options.broker.lot_size = Some(1.0);
    let replay = Replay {
        host,
        strategy: Strategy {
            limits: backtest_limits(),
            ..Strategy::new(module.clone())
        },
        options,
        workers: 1,
    };
    let series = ReplaySeries {
        symbol: Symbol::new("EURUSD").expect("symbol"),
        candles: Box::new(CandleReader::open(data).expect("data")),
    };
    let result = replay
        .run(vec![series], &|_| {})
        .expect("runs")
        .pop()
        .expect("one result")
        .expect("the series runs");
    let inputs = Inputs {
        data_sha256: String::new(),
        strategy: "sma_cross".into(),
        params: vec![("fast".into(), 10.0), ("slow".into(), 20.0)],
    };
    fingerprint(&inputs, &result.options, &result.trades)
}

/// Resident set size in bytes (Linux), or 0 where unknown.
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[test]
fn memory_is_flat_over_100_backtests_in_one_process() {
    let config = HostConfig {
        limits: backtest_limits(),
        ..HostConfig::default()
    };
    let host = PluginHost::new(config).expect("host");
    let module = host
        .load_file(Path::new(&wasm("sma_cross")))
        .expect("module");
    let data = repo().join("data/EURUSD-1h.csv");
    let first = one_run(&host, &module, &data);

    let mut heap = Vec::new();
    let mut resident = Vec::new();
    for _ in 0..100 {
        assert_eq!(one_run(&host, &module, &data), first, "identical reruns");
        heap.push(LIVE.load(Relaxed));
        resident.push(rss());
    }
    let warm_heap = heap[..10].iter().copied().max().unwrap_or(0);
    let late_heap = heap[10..].iter().copied().max().unwrap_or(0);
    eprintln!("live heap after runs 1-10: max {warm_heap} B; after runs 11-100: max {late_heap} B");
    // No run leaves anything behind: 90 more runs add at most 64 KiB
    // (allocator noise), where a leak of one bar's worth per bar would be
    // tens of megabytes.
    assert!(
        late_heap <= warm_heap + (64 << 10),
        "heap grew from {warm_heap} to {late_heap} bytes over 90 runs"
    );
    if resident[9] > 0 {
        let ratio = resident[99] as f64 / resident[9] as f64;
        eprintln!(
            "rss after run 10: {} KiB, after run 100: {} KiB (ratio {ratio:.3})",
            resident[9] >> 10,
            resident[99] >> 10
        );
        assert!(
            ratio < 1.10,
            "resident set grew by {ratio:.3}x over 90 runs"
        );
    }
}
