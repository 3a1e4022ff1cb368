//! A tiny model trained on the bundled data in seconds, and its candles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candlewick_market::{Candle, CsvReader};
use candlewick_models::{train, ArchKind, FeatureSpec, LabelRule, TrainConfig};

/// Features with a 14-bar warm-up, so the first windows hold NaN.
pub const SPEC: &str = "logret range rsi(14)";
pub const WINDOW: usize = 12;

pub fn candles(n: usize) -> Vec<Candle> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/EURUSD-1h.csv");
    CsvReader::open(&path)
        .unwrap()
        .take(n)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Trains a tiny model (2 epochs, hidden 8) and writes it to `root/NAME`.
pub fn write_tiny(root: &Path, name: &str, arch: ArchKind) -> PathBuf {
    let dir = root.join(name);
    let spec = FeatureSpec::parse(SPEC).unwrap();
    let cfg = TrainConfig {
        arch,
        hidden: 8,
        layers: 1,
        heads: 2,
        ff: 16,
        window: WINDOW,
        labels: LabelRule {
            horizon: 1,
            up: 0.0005,
            down: 0.0005,
        },
        epochs: 2,
        batch_size: 64,
        patience: 2,
        ..TrainConfig::default()
    };
    let trained = train::train(
        &candles(400),
        "EURUSD-1h.csv",
        name,
        &spec,
        &cfg,
        &mut |_| {},
    )
    .unwrap();
    trained.save(&dir).unwrap();
    dir
}
