//! Trains the shipped artifact without building the whole CLI (which pulls
//! in wasmtime and RocksDB). Same library call, same settings as
//!
//! ```text
//! candlewick train --data data/EURUSD-1h.csv --arch lstm --window 32 --horizon 1 \
//!   --up 0.0005 --down 0.0005 --hidden 32 --layers 1 --epochs 8 --patience 3 \
//!   --out models/artifacts/eurusd-1h-lstm
//! ```
//!
//! Run: `cargo run --release -p candlewick-models --example train_shipped -- DATA OUT_DIR`

use std::path::PathBuf;

use candlewick_market::CsvReader;
use candlewick_models::features::DEFAULT_SPEC;
use candlewick_models::{train, ArchKind, FeatureSpec, LabelRule, Progress, TrainConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or("usage: train_shipped DATA OUT_DIR")?);
    let out = PathBuf::from(args.next().ok_or("usage: train_shipped DATA OUT_DIR")?);
    let candles = CsvReader::open(&data)?.collect::<Result<Vec<_>, _>>()?;
    let spec = FeatureSpec::parse(DEFAULT_SPEC)?;
    let cfg = TrainConfig {
        arch: ArchKind::Lstm,
        window: 32,
        hidden: 32,
        layers: 1,
        ff: 64,
        epochs: 8,
        patience: 3,
        labels: LabelRule {
            horizon: 1,
            up: 0.0005,
            down: 0.0005,
        },
        ..TrainConfig::default()
    };
    let name = out
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let source = data
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().into_owned());
    let trained = train::train(&candles, &source, &name, &spec, &cfg, &mut |p| {
        if let Progress::Epoch {
            epoch,
            train_loss,
            val_loss,
            val_accuracy,
            improved,
        } = p
        {
            eprintln!(
                "epoch {epoch:>3} train {train_loss:.4} val {val_loss:.4} acc {:.2}%{}",
                100.0 * val_accuracy,
                if improved { " *" } else { "" }
            );
        } else if let Progress::Start {
            train_counts,
            val_counts,
            ..
        } = p
        {
            eprintln!(
                "train labels {train_counts:?}, validation labels {val_counts:?} [down, flat, up]"
            );
        }
    })?;
    let m = trained.save(&out)?;
    println!("{}", serde_json::to_string_pretty(&m.metrics)?);
    println!("sha256 {}", m.weights.sha256);
    Ok(())
}
