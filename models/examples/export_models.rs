//! Writes the bench networks (LSTM, GRU, Transformer) for cross-runtime
//! comparison, and times candle's forward and the CPU path on them.
//!
//! ```text
//! cargo run --release -p candlewick-models --example export_models -- OUT_DIR [ITERS]
//! python3 benches/onnx_models.py OUT_DIR
//! ```
//!
//! For each architecture (window 60, 16 features, hidden/width 64, 2
//! layers, 4 heads, ff 128, seed 7) OUT_DIR/KIND receives:
//! - `weights.safetensors`: the network's tensors;
//! - `candle_B.f32` for B in 1, 32, 256: candle's logits `(B, 3)`, raw
//!   little-endian f32, for the input `(B, 60, 16)` whose element `i`
//!   (row-major) is `(i * 2654435761 % 4096) / 1024 - 2`;
//! - `timings.json`: median milliseconds per batch of `candle`
//!   (`Network::forward`) and `cpu` (`CpuNet::forward`), and the load
//!   average when timing started.
//!
//! It fails when the CPU path's logits differ from candle's by 1e-4 or more.

use std::path::PathBuf;
use std::time::Instant;

use candlewick_models::arch::{init_params, CpuNet, CpuScratch, Network};
use candlewick_models::candle_core::{Device, Tensor};
use candlewick_models::{ArchConfig, ArchKind};

const BATCHES: [usize; 3] = [1, 32, 256];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: export_models OUT_DIR [ITERS]")?);
    let iters: usize = args.next().map_or(Ok(50), |s| s.parse())?;
    for kind in [ArchKind::Lstm, ArchKind::Gru, ArchKind::Transformer] {
        let dir = out.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        let cfg = ArchConfig::new(kind, 16, 60);
        let weights = init_params(&Network::param_specs(&cfg), 7, &Device::Cpu)?;
        let net = Network::from_weights(&cfg, &weights)?;
        let cpu = CpuNet::new(&net)?;
        candlewick_models::candle_core::safetensors::save(
            &weights,
            dir.join("weights.safetensors"),
        )?;
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let (mut candle_ms, mut cpu_ms) = (Vec::new(), Vec::new());
        let mut scratch = CpuScratch::default();
        for b in BATCHES {
            let xs: Vec<f32> = (0..b * cfg.window * cfg.features)
                .map(|i| ((i.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0) - 2.0)
                .collect();
            let x = Tensor::from_slice(&xs, (b, cfg.window, cfg.features), &Device::Cpu)?;
            let want = net.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let mut got = vec![0f32; b * 3];
            cpu.forward(&xs, b, cfg.window, &mut scratch, &mut got)?;
            let diff = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            if diff >= 1e-4 {
                return Err(format!("{kind} batch {b}: cpu path differs by {diff}").into());
            }
            let bytes: Vec<u8> = want.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("candle_{b}.f32")), bytes)?;
            let c = median_ms(iters, || net.forward(&x).map(drop))?;
            let p = median_ms(iters, || {
                cpu.forward(&xs, b, cfg.window, &mut scratch, &mut got)
            })?;
            println!(
                "{kind:>11} batch {b:>4}: candle {c:8.3} ms  cpu {p:8.3} ms  (|diff| {diff:.1e})"
            );
            candle_ms.push(format!("\"{b}\": {c}"));
            cpu_ms.push(format!("\"{b}\": {p}"));
        }
        std::fs::write(
            dir.join("timings.json"),
            format!(
                "{{\"candle\": {{{}}}, \"cpu\": {{{}}}, \"load\": {:?}}}\n",
                candle_ms.join(", "),
                cpu_ms.join(", "),
                load.trim()
            ),
        )?;
    }
    Ok(())
}

/// Median wall time of `iters` runs after 3 warm-ups.
fn median_ms<E>(iters: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<f64, E> {
    for _ in 0..3 {
        f()?;
    }
    let mut ms = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms[ms.len() / 2])
}
