//! A tiny model trained on the bundled data in seconds, and its candles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candlewick_market::Candle;
use candlewick_models::{train, ArchKind, FeatureSpec};

/// Features with a 14-bar warm-up, so the first windows hold NaN.
pub const SPEC: &str = "logret range rsi(14)";
pub const WINDOW: usize = 12;

pub fn candles(n: usize) -> Vec<Candle> {
    candlewick_models::testing::eurusd(n)
}

/// Trains a tiny model (2 epochs, hidden 8) and writes it to `root/NAME`.
pub fn write_tiny(root: &Path, name: &str, arch: ArchKind) -> PathBuf {
    let dir = root.join(name);
    let spec = FeatureSpec::parse(SPEC).unwrap();
    let cfg = candlewick_models::testing::tiny_config(arch, WINDOW);
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
