//! Model forward passes: the cost of the inference stage of a shard worker.
//!
//! Run: `cargo bench -p candlewick-benches --bench models`
//! Compare: `benches/onnx_models.py` (the same networks in ONNX Runtime, CPU).
//!
//! The `forward` cases are the bench configuration of issue 5: window 60,
//! 16 features, hidden 64, 2 layers (Transformer: width 64, 4 heads, ff
//! 128), seeded random weights, batch 1, 32, 256: `models/forward_KIND`
//! is candle's `Network::forward` (the reference), `models/cpu_KIND` the
//! CPU path (`CpuNet::forward`, what the predictor runs on the CPU).
//! Throughput is in windows (symbols) per second.
//!
//! `inference/stage` is what a shard worker pays per drained batch for the
//! shipped artifact (`models/artifacts/eurusd-1h-lstm`: LSTM hidden 32,
//! window 32, 16 features): one closed candle per stream pushed through
//! every stream's feature window, then one batched forward over all of
//! them, for 1 and 256 streams.

use std::path::Path;

use candlewick_inference::{InferenceStage, Kernel, NamedModel};
use candlewick_market::{Candle, CsvReader};
use candlewick_models::arch::{init_params, CpuNet, CpuScratch, Network};
use candlewick_models::candle_core::{Device, Tensor};
use candlewick_models::{ArchConfig, ArchKind};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const WINDOW: usize = 60;
const FEATURES: usize = 16;
const BATCHES: [usize; 3] = [1, 32, 256];

fn values(b: usize) -> Vec<f32> {
    (0..b * WINDOW * FEATURES)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0) - 2.0)
        .collect()
}

fn input(b: usize) -> Tensor {
    Tensor::from_vec(values(b), (b, WINDOW, FEATURES), &Device::Cpu).expect("input tensor")
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
        let cpu = CpuNet::new(&net).expect("pack");
        let mut scratch = CpuScratch::default();
        let mut group = c.benchmark_group(format!("models/cpu_{kind}"));
        for b in BATCHES {
            let x = values(b);
            let mut logits = vec![0f32; b * cfg.classes];
            group.throughput(Throughput::Elements(b as u64));
            group.bench_with_input(BenchmarkId::from_parameter(b), &x, |bench, x| {
                bench.iter(|| {
                    cpu.forward(
                        std::hint::black_box(x),
                        b,
                        WINDOW,
                        &mut scratch,
                        &mut logits,
                    )
                    .expect("forward")
                })
            });
        }
        group.finish();
    }
}

/// The inference stage of one worker: push one candle per stream, run the
/// batch, for the shipped artifact.
fn stage(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = NamedModel::load(None, &root.join("models/artifacts/eurusd-1h-lstm"))
        .expect("the shipped artifact verifies");
    let data: Vec<Candle> = CsvReader::open(&root.join("data/EURUSD-1h.csv"))
        .expect("bundled data")
        .collect::<Result<_, _>>()
        .expect("valid data");
    // `inference/stage`: the CPU path (the default); `inference/stage_candle`:
    // the same stage on candle's forward, the reference.
    for (name, kernel) in [("stage", Kernel::Cpu), ("stage_candle", Kernel::Candle)] {
        let mut group = c.benchmark_group(format!("inference/{name}"));
        group.sample_size(20);
        for streams in [1usize, 256] {
            let mut stage =
                InferenceStage::with_kernel(std::slice::from_ref(&model), streams, kernel)
                    .expect("stage");
            // Stream s starts 7 * s bars in; 200 bars fill every window.
            let warm = 200;
            for s in 0..streams {
                stage.warm(0, s, &data[7 * s..7 * s + warm]).expect("warm");
            }
            let mut next = warm;
            group.throughput(Throughput::Elements(streams as u64));
            group.bench_function(BenchmarkId::from_parameter(streams), |b| {
                b.iter(|| {
                    for s in 0..streams {
                        let bar = &data[(7 * s + next) % data.len()];
                        stage.push(s, bar).expect("push");
                    }
                    next += 1;
                    stage.run_batch().expect("forward");
                })
            });
            assert_eq!(stage.stats().failed_forwards, 0);
        }
        group.finish();
    }
}

criterion_group!(benches, forward, stage);
criterion_main!(benches);
