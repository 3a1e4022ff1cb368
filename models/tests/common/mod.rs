//! Shared fixtures: a tiny model trained on the bundled data in seconds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candlewick_market::Candle;
use candlewick_models::{train, ArchKind, FeatureSpec, TrainConfig};

pub const SPEC: &str = "logret range rsi(14)";

pub fn candles(n: usize) -> Vec<Candle> {
    candlewick_models::testing::eurusd(n)
}

pub fn tiny_config(arch: ArchKind) -> TrainConfig {
    candlewick_models::testing::tiny_config(arch, 12)
}

/// Trains a tiny LSTM on 400 bars and writes it under `root/NAME`.
pub fn write_tiny(root: &Path, arch: ArchKind) -> PathBuf {
    let dir = root.join(format!("tiny-{arch}"));
    let spec = FeatureSpec::parse(SPEC).unwrap();
    let trained = train::train(
        &candles(400),
        "EURUSD-1h.csv",
        "tiny",
        &spec,
        &tiny_config(arch),
        &mut |_| {},
    )
    .unwrap();
    trained.save(&dir).unwrap();
    dir
}

/// Rewrites `manifest.json` through `edit`.
pub fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}
