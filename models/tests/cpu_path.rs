//! The CPU path ([`CpuNet`], the predictor's default kernel) computes what
//! candle's forward computes: on random weights for every architecture and
//! shapes that exercise every kernel (padding, remainders, parallel
//! chunks), and on the shipped artifact over real EURUSD windows.
//!
//! Tolerance: 1e-4 absolute on logits, 1e-5 on probabilities. Both paths
//! run f32; they differ in summation order and in candle's libm `exp`
//! against the CPU path's polynomial (2 ulp), so they agree to about 1e-6
//! on these sizes. 1e-4 leaves room for other CPUs' instruction sets.

mod common;

use std::path::Path;

use candle_core::{Device, Tensor};
use candlewick_models::arch::{init_params, CpuNet, CpuScratch, Network};
use candlewick_models::{ArchConfig, ArchKind, Artifact, FeatureWindow, Kernel, Predictor};
use common::candles;

const LOGIT_TOL: f32 = 1e-4;

fn net(kind: ArchKind, f: usize, t: usize, h: usize, layers: usize, heads: usize) -> Network {
    let mut cfg = ArchConfig::new(kind, f, t);
    cfg.hidden = h;
    cfg.layers = layers;
    cfg.heads = heads;
    cfg.ff = 2 * h - 4;
    let w = init_params(&Network::param_specs(&cfg), 11, &Device::Cpu).unwrap();
    Network::from_weights(&cfg, &w).unwrap()
}

fn input(b: usize, t: usize, f: usize) -> Vec<f32> {
    (0..b * t * f)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0) - 2.0)
        .collect()
}

fn candle_logits(n: &Network, x: &[f32], b: usize, t: usize) -> Vec<f32> {
    let f = n.config().features;
    let x = Tensor::from_slice(x, (b, t, f), &Device::Cpu).unwrap();
    n.forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn cpu_logits(cpu: &CpuNet, x: &[f32], b: usize, t: usize) -> Vec<f32> {
    let mut out = vec![f32::NAN; b * cpu.config().classes];
    cpu.forward(x, b, t, &mut CpuScratch::default(), &mut out)
        .unwrap();
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn equals_candle_on_random_weights() {
    // (features, window, hidden, layers, heads): the bench configuration,
    // and sizes that are not whole SIMD panels.
    let shapes = [(16, 60, 64, 2, 4), (5, 9, 12, 3, 3), (3, 7, 20, 1, 5)];
    for kind in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        for (f, t, h, layers, heads) in shapes {
            let n = net(kind, f, t, h, layers, heads);
            let cpu = CpuNet::new(&n).unwrap();
            for b in [1, 3, 4, 37] {
                let x = input(b, t, f);
                let want = candle_logits(&n, &x, b, t);
                let got = cpu_logits(&cpu, &x, b, t);
                let d = max_diff(&want, &got);
                assert!(d < LOGIT_TOL, "{kind} f{f} t{t} h{h} b{b}: max |diff| {d}");
                assert!(want.iter().any(|v| v.abs() > 1e-3), "logits not all ~0");
            }
        }
    }
}

#[test]
fn a_rows_answer_does_not_depend_on_its_batch() {
    for kind in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let (f, t) = (16, 60);
        let n = net(kind, f, t, 64, 2, 4);
        let cpu = CpuNet::new(&n).unwrap();
        let b = 70;
        let x = input(b, t, f);
        let all = cpu_logits(&cpu, &x, b, t);
        // All chunks on the calling thread (as a shard worker runs them):
        // the same bits as on rayon's pool.
        let mut alone = cpu.clone();
        alone.set_parallel(false);
        assert_eq!(cpu_logits(&alone, &x, b, t), all, "{kind} sequential");
        let mut scratch = CpuScratch::default();
        for r in [0, 33, 69] {
            let mut one = [0f32; 3];
            cpu.forward(&x[r * t * f..(r + 1) * t * f], 1, t, &mut scratch, &mut one)
                .unwrap();
            assert_eq!(one, all[r * 3..r * 3 + 3], "{kind} row {r}");
        }
    }
}

#[test]
fn refuses_a_misshapen_input() {
    let n = net(ArchKind::Transformer, 4, 8, 8, 1, 2);
    let cpu = CpuNet::new(&n).unwrap();
    let mut out = [0f32; 3];
    let mut s = CpuScratch::default();
    assert!(
        cpu.forward(&input(1, 7, 4), 1, 7, &mut s, &mut out)
            .is_err(),
        "window"
    );
    assert!(
        cpu.forward(&input(1, 8, 4)[1..], 1, 8, &mut s, &mut out)
            .is_err(),
        "length"
    );
    assert!(
        cpu.forward(&input(2, 8, 4), 2, 8, &mut s, &mut out)
            .is_err(),
        "logits"
    );
    assert!(cpu.forward(&input(1, 8, 4), 1, 8, &mut s, &mut out).is_ok());
}

#[test]
fn shipped_artifact_agrees_on_real_windows() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/eurusd-1h-lstm");
    let a = Artifact::load(&dir, &Device::Cpu).unwrap();
    let mut fast = Predictor::new(&a, Device::Cpu).unwrap();
    assert_eq!(fast.kernel(), Kernel::Cpu);
    let mut reference = Predictor::with_kernel(&a, Device::Cpu, Kernel::Candle).unwrap();
    let data = candles(3000);
    let mut w = FeatureWindow::new(a.features(), a.window()).unwrap();
    // Every bar's window from bar 100 on, in batches of 64 and alone.
    let mut windows: Vec<Vec<f64>> = Vec::new();
    for (i, c) in data.iter().enumerate() {
        w.push(c);
        if i >= 100 {
            windows.push(w.rows().to_vec());
        }
    }
    let (mut worst, mut compared, mut same_class) = (0f32, 0, 0);
    for batch in windows.chunks(64) {
        let inputs: Vec<&[f64]> = batch.iter().map(Vec::as_slice).collect();
        let want = reference.predict(&inputs).unwrap();
        let got = fast.predict(&inputs).unwrap();
        for (w, g) in want.iter().zip(&got) {
            let (w, g) = (w.unwrap(), g.unwrap());
            for k in 0..3 {
                worst = worst.max((w.probs[k] - g.probs[k]).abs());
            }
            compared += 1;
            same_class += usize::from(w.class() == g.class());
        }
    }
    assert_eq!(compared, windows.len());
    assert!(worst < 1e-5, "max |p diff| {worst}");
    assert_eq!(same_class, compared, "every bar gets the same class");
    // Alone, a bar gets what it got in its batch.
    let alone = fast.predict(&[&windows[500]]).unwrap()[0].unwrap();
    let batched = fast
        .predict(
            &windows[480..544]
                .iter()
                .map(Vec::as_slice)
                .collect::<Vec<_>>(),
        )
        .unwrap()[20]
        .unwrap();
    assert_eq!(alone, batched);
}
