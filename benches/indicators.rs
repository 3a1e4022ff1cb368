//! Streaming indicator updates: the per-candle cost of the compute stage.
//!
//! Run: `cargo bench -p candlewick-benches --bench indicators`
//! Compare: `python3 benches/talib_batch.py` (TA-Lib batch, same bars).

use candlewick_benches::{synthetic_bars, SET_10};
use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;
use criterion::{criterion_group, criterion_main, BatchSize, Bencher, Criterion, Throughput};

const BARS: usize = 1_000_000;

/// Streams every bar through a fresh set built from `spec`.
fn stream_spec(b: &mut Bencher<'_>, spec: &str, bars: &[Candle]) {
    b.iter_batched(
        || {
            let set = IndicatorSet::parse(spec).expect("valid spec");
            let width = set.width();
            (set, vec![0.0; width])
        },
        |(mut set, mut out)| {
            for bar in bars {
                set.update(bar, &mut out);
            }
            std::hint::black_box(out)
        },
        BatchSize::LargeInput,
    )
}

/// The 10-indicator set over 1M bars: what a shard worker pays per closed
/// candle of one stream (the whole set, all outputs written).
fn set_10(c: &mut Criterion) {
    let bars = synthetic_bars(BARS);
    let mut group = c.benchmark_group("indicators");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(10);
    group.bench_function("update_set_10", |b| stream_spec(b, SET_10, &bars));
    group.finish();
}

/// Each indicator of the set alone, to see where the time goes.
fn each(c: &mut Criterion) {
    let bars = synthetic_bars(BARS);
    let mut group = c.benchmark_group("indicators/each");
    group.throughput(Throughput::Elements(BARS as u64));
    group.sample_size(10);
    for item in SET_10.split(' ') {
        group.bench_function(item, |b| stream_spec(b, item, &bars));
    }
    group.finish();
}

criterion_group!(benches, set_10, each);
criterion_main!(benches);
