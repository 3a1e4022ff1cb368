//! Test support: the smallest useful training run, so tests in any crate
//! of the workspace can train a real model on the bundled data in seconds.

use crate::{ArchKind, LabelRule, TrainConfig};

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
