//! Writes a reference LSTM for cross-runtime comparison, and times it.
//!
//! ```text
//! cargo run --release -p candlewick-models --example export_lstm -- OUT_DIR [ITERS]
//! ```
//!
//! OUT_DIR receives, for the bench configuration (window 60, 16 features,
//! hidden 64, 2 layers, seed 7):
//! - `weights.safetensors`: the network's tensors (gate order i,f,o,g);
//! - `candle_B.f32` for B in 1, 32, 256, 1024: candle's logits `(B, 3)`,
//!   raw little-endian f32, for the input `(B, 60, 16)` whose element `i`
//!   (row-major) is `(i * 2654435761 % 4096) / 1024 - 2` (the readers
//!   regenerate it, so no input files are needed);
//! - `candle_timings.json`: median forward milliseconds per batch size.
//!
//! `benches/onnx_lstm.py` and `models/gpu/torch_lstm.py` read these.

use std::path::PathBuf;
use std::time::Instant;

use candlewick_models::arch::{init_params, Network};
use candlewick_models::candle_core::{Device, Tensor};
use candlewick_models::{ArchConfig, ArchKind};

const BATCHES: [usize; 4] = [1, 32, 256, 1024];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: export_lstm OUT_DIR [ITERS]")?);
    let iters: usize = args.next().map_or(Ok(30), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;
    let cfg = ArchConfig::new(ArchKind::Lstm, 16, 60);
    let weights = init_params(&Network::param_specs(&cfg), 7, &Device::Cpu)?;
    let net = Network::from_weights(&cfg, &weights)?;
    candlewick_models::candle_core::safetensors::save(&weights, out.join("weights.safetensors"))?;
    let mut timings = Vec::new();
    for b in BATCHES {
        let n = b * cfg.window * cfg.features;
        // Deterministic inputs in [-2, 2).
        let xs: Vec<f32> = (0..n)
            .map(|i| ((i.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0) - 2.0)
            .collect();
        let x = Tensor::from_vec(xs, (b, cfg.window, cfg.features), &Device::Cpu)?;
        let y = net.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
        write_f32(&out.join(format!("candle_{b}.f32")), &y)?;
        let reps = if b >= 1024 { iters.div_ceil(3) } else { iters };
        for _ in 0..3 {
            net.forward(&x)?;
        }
        let mut ms: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                net.forward(&x).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(f64::total_cmp);
        let median = ms[ms.len() / 2];
        println!("candle lstm batch {b:>4}: median {median:.3} ms over {reps} runs");
        timings.push(format!("\"{b}\": {median}"));
    }
    std::fs::write(
        out.join("candle_timings.json"),
        format!("{{{}}}\n", timings.join(", ")),
    )?;
    Ok(())
}

fn write_f32(path: &std::path::Path, v: &[f32]) -> std::io::Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes)
}
