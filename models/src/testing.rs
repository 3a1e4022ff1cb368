//! Test support: the smallest useful training run, so tests in any crate
//! of the workspace can train a real model on the bundled data in seconds.

use candlewick_market::{Candle, CsvReader};

use crate::{ArchKind, LabelRule, TrainConfig};

/// The first `n` bars of the repository's bundled hourly EURUSD
/// (`data/EURUSD-1h.csv`).
///
/// # Panics
/// When the file is missing or malformed (a broken checkout).
pub fn eurusd(n: usize) -> Vec<Candle> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/EURUSD-1h.csv");
    let read = CsvReader::open(&path).and_then(|r| r.take(n).collect::<Result<Vec<_>, _>>());
    match read {
        Ok(candles) => candles,
        Err(e) => panic!("the bundled data: {e}"),
    }
}

/// Two epochs of a one-layer network with 8 hidden units (Transformer:
/// 2 heads, feed-forward 16) over windows of `window` bars, labels split at
/// +/-0.05%.
pub fn tiny_config(arch: ArchKind, window: usize) -> TrainConfig {
    TrainConfig {
        arch,
        hidden: 8,
        layers: 1,
        heads: 2,
        ff: 16,
        window,
        labels: LabelRule {
            horizon: 1,
            up: 0.0005,
            down: 0.0005,
        },
        epochs: 2,
        batch_size: 64,
        patience: 2,
        ..TrainConfig::default()
    }
}
