//! Model forward passes: the cost of the inference stage of a shard worker.
//!
//! Run: `cargo bench -p candlewick-benches --bench models`
//! Compare: `benches/onnx_lstm.py` (the same LSTM in ONNX Runtime, CPU).
//!
//! Every case is the bench configuration of issue 5: window 60, 16
//! features, hidden 64, 2 layers (Transformer: width 64, 4 heads, ff 128),
//! seeded random weights, batch 1, 32, 256, 1024. Throughput is in windows
//! (symbols) per second.

use candlewick_models::arch::{init_params, Network};
use candlewick_models::candle_core::{Device, Tensor};
use candlewick_models::{ArchConfig, ArchKind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const WINDOW: usize = 60;
const FEATURES: usize = 16;
const BATCHES: [usize; 4] = [1, 32, 256, 1024];

fn input(b: usize) -> Tensor {
    let xs: Vec<f32> = (0..b * WINDOW * FEATURES)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0) - 2.0)
        .collect();
    Tensor::from_vec(xs, (b, WINDOW, FEATURES), &Device::Cpu).expect("input tensor")
}

/// `Network::forward` alone: what one drained batch pays for the model once
/// its windows are packed, per architecture and batch size.
fn forward(c: &mut Criterion) {
    for kind in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let cfg = ArchConfig::new(kind, FEATURES, WINDOW);
        let w = init_params(&Network::param_specs(&cfg), 7, &Device::Cpu).expect("init");
        let net = Network::from_weights(&cfg, &w).expect("network");
        let mut group = c.benchmark_group(format!("models/forward_{kind}"));
        group.sample_size(10);
        for b in BATCHES {
            let x = input(b);
            group.throughput(Throughput::Elements(b as u64));
            group.bench_with_input(BenchmarkId::from_parameter(b), &x, |bench, x| {
                bench.iter(|| net.forward(std::hint::black_box(x)).expect("forward"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
