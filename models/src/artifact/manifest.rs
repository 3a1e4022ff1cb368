//! `manifest.json`: everything about a model except its weights.

use serde::{Deserialize, Serialize};

use crate::dataset::LabelRule;
use crate::{ArchConfig, Scaler};

/// Value of the `format` field.
pub const FORMAT: &str = "candlewick-model";
/// The artifact version this build writes and reads.
pub const VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Names of the scaler tensors inside `model.safetensors` (f64, `(F)`).
pub const SCALER_MEAN: &str = "scaler.mean";
pub const SCALER_STD: &str = "scaler.std";

/// The manifest, version 1. Unknown fields are refused, so a manifest from
/// a newer writer cannot be half-understood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for what this build reads.
    pub version: u32,
    pub name: String,
    pub arch: ArchConfig,
    pub features: FeaturesEntry,
    /// Bars per input window (`T`); equals `arch.window`.
    pub window: usize,
    pub labels: LabelsEntry,
    /// Copy of the scaler stored in the weights file (must be equal).
    pub scaler: Scaler,
    pub data: DataRange,
    pub metrics: Metrics,
    pub training: TrainingEntry,
    pub weights: WeightsEntry,
    /// Writer, e.g. `candlewick-models 0.1.0`.
    pub created_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesEntry {
    /// Canonical feature spec.
    pub spec: String,
    /// Ordered output columns (`F` of them).
    pub columns: Vec<String>,
    /// [`FeatureSpec::probe`](crate::FeatureSpec::probe) at training time
    /// (`null` for a NaN).
    pub probe: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsEntry {
    pub rule: LabelRule,
    /// Output class names in index order: down, flat, up.
    pub classes: Vec<String>,
}

/// What the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRange {
    /// File name of the training data (no directory).
    pub source: String,
    pub bars: usize,
    /// Open times, epoch ms UTC.
    pub first_time: i64,
    pub last_time: i64,
    pub train: Span,
    pub validation: Span,
}

/// A run of samples, by the open time of their last bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub from: i64,
    pub to: i64,
    pub samples: usize,
}

/// Validation results beside the baselines a useless model would reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Mean cross-entropy on the validation split, best epoch.
    pub val_loss: f64,
    pub val_accuracy: f64,
    /// Accuracy of always answering the training split's majority class.
    pub baseline_accuracy: f64,
    pub baseline_class: String,
    /// Cross-entropy of always answering the training class frequencies.
    pub baseline_loss: f64,
    pub train_loss: f64,
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// Label counts, `[down, flat, up]`.
    pub train_counts: [usize; 3],
    pub val_counts: [usize; 3],
    /// What the model answered on validation, `[down, flat, up]`.
    pub val_predicted: [usize; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingEntry {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub val_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsEntry {
    /// Always [`WEIGHTS_FILE`].
    pub file: String,
    /// Lower-case hex sha256 of the whole weights file.
    pub sha256: String,
}
