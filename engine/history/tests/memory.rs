//! Streaming in constant memory: the peak of live heap bytes while writing
//! and reading a file does not grow with the number of rows.
//!
//! A counting allocator (this test binary only) tracks live bytes and
//! their high-water mark; each case resets the mark and compares a file
//! ten times longer against a short one. Timings play no part.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use candlewick_history::{CandleReader, CandleWriter, Format, WriteOptions};
use candlewick_market::Candle;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Cases run one at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
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

/// One-second candles, a random walk, generated on the fly.
fn seconds(n: u64) -> impl Iterator<Item = Candle> {
    let mut price = 100.0_f64;
    (0..n).map(move |i| {
        let step = ((i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64 / (1u64 << 24) as f64
            - 0.5)
            * 0.01;
        let open = price;
        price *= 1.0 + step;
        Candle {
            open_time: 1_704_067_200_000 + i as i64 * 1000,
            open,
            high: open.max(price) * 1.0001,
            low: open.min(price) * 0.9999,
            close: price,
            volume: 1.0 + (i % 7) as f64,
        }
    })
}

/// Peak live bytes above the starting point while writing then reading `n` rows.
fn peak_bytes(format: Format, n: u64) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("s.{}", format.as_str()));
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let mut w = CandleWriter::create(&path, format, None, WriteOptions::default()).unwrap();
    for c in seconds(n) {
        w.push(&c).unwrap();
    }
    assert_eq!(w.finish().unwrap(), n);
    let mut count = 0u64;
    let mut last = 0.0;
    for c in CandleReader::open(&path).unwrap() {
        last = c.unwrap().close;
        count += 1;
    }
    assert_eq!(count, n);
    assert!(last > 0.0);
    PEAK.load(Relaxed) - base
}

#[test]
fn peak_memory_does_not_grow_with_rows() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for format in [Format::Arrow, Format::Parquet] {
        let short = peak_bytes(format, 200_000);
        let long = peak_bytes(format, 2_000_000);
        eprintln!("{format:?}: peak {short} B for 200k rows, {long} B for 2M rows");
        // 2M rows of 48 bytes are 96 MB; a streaming path stays near its
        // chunk and row-group buffers whatever the length.
        assert!(long < 64 << 20, "{format:?}: {long} bytes");
        assert!(
            (long as f64) < short as f64 * 1.5 + (1 << 20) as f64,
            "{format:?}: peak grew from {short} to {long} bytes"
        );
    }
}

/// A year of one-second candles (31.5M rows) through both formats: minutes
/// and a 1.5 GB Arrow file (48 bytes a row), so not in the CI run; the heavy job
/// runs it (`scripts/test --heavy`, documented in the README).
#[test]
#[ignore = "heavy: run by `scripts/test --heavy`"]
fn a_year_of_one_second_candles() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let year = 365 * 24 * 3600;
    for format in [Format::Arrow, Format::Parquet] {
        let peak = peak_bytes(format, year);
        eprintln!("{format:?}: a year of 1s candles, peak {} MiB", peak >> 20);
        assert!(peak < 64 << 20, "{format:?}: {peak} bytes");
    }
}
