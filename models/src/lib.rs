//! Signal models for Candlewick: LSTM, GRU and a small Transformer in
//! candle, the features they read, how they are trained, the verified
//! artifact they live in, and batched inference across symbols.
//!
//! # Life of a model
//!
//! 1. **Features** ([`FeatureSpec`]): an indicator spec plus derived series,
//!    computed by the engine's own incremental indicators, so training and
//!    inference see the same numbers.
//! 2. **Training** ([`train::train`]): labels from the future return with
//!    configurable thresholds, a time-ordered split with the horizon purged,
//!    a scaler fitted on the training split only, AdamW with early stopping,
//!    all from one seed. The metrics sit beside the majority-class baseline.
//! 3. **Artifact** ([`Artifact`]): `model.safetensors` (weights and scaler)
//!    and `manifest.json`. Every load verifies the hash, version, tensors,
//!    scaler and that this engine computes the same features; any mismatch
//!    is a refusal ([`Refusal`]) that says which.
//! 4. **Inference** ([`Predictor`]): per-symbol [`FeatureWindow`]s in, one
//!    batched forward, per-symbol [`Prediction`] or [`NoPrediction`] out.
//!
//! Shapes: a window is `(T, F)` (bars, features), a batch `(B, T, F)` f32,
//! the network's output `(B, 3)` logits over down, flat, up.
//!
//! ```
//! use candle_core::Device;
//! use candlewick_models::{arch::{init_params, Network}, ArchConfig, ArchKind};
//! let cfg = ArchConfig::new(ArchKind::Gru, 4, 8);
//! let weights = init_params(&Network::param_specs(&cfg), 1, &Device::Cpu).unwrap();
//! let net = Network::from_weights(&cfg, &weights).unwrap();
//! let x = candle_core::Tensor::zeros((2, 8, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
//! assert_eq!(net.forward(&x).unwrap().dims(), [2, 3]);
//! ```
#![forbid(unsafe_code)]

pub mod arch;
pub mod artifact;
mod config;
pub mod dataset;
mod error;
pub mod features;
mod predictor;
mod rng;
mod scaler;
pub mod testing;
pub mod train;
mod window;

pub use artifact::{Artifact, ArtifactError, Refusal};
pub use candle_core::{self, Device};
pub use config::{ArchConfig, ArchKind};
pub use dataset::LabelRule;
pub use error::ModelError;
pub use features::{FeatureSpec, FeatureSpecError};
pub use predictor::{Kernel, NoPrediction, Outcome, Prediction, Predictor, PredictorStats};
pub use scaler::Scaler;
pub use train::{Progress, TrainConfig, Trained};
pub use window::FeatureWindow;
