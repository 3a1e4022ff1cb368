//! Why an artifact was refused.

use std::path::{Path, PathBuf};

/// A model artifact that failed verification: which directory, and which
/// check ([`Refusal`]). Nothing from a refused artifact is ever used.
#[derive(Debug, thiserror::Error)]
#[error("model artifact {} refused: {kind}", dir.display())]
pub struct ArtifactError {
    dir: PathBuf,
    kind: Box<Refusal>,
}

impl ArtifactError {
    pub(crate) fn new(dir: &Path, kind: Refusal) -> Self {
        ArtifactError {
            dir: dir.to_path_buf(),
            kind: Box::new(kind),
        }
    }

    /// The check that failed.
    pub fn kind(&self) -> &Refusal {
        &self.kind
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The checks of [`Artifact::load`](super::Artifact::load), one variant each,
/// in the order they run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
    #[error("manifest.json is not a candlewick model artifact (format {found:?}, expected {expected:?})")]
    NotAnArtifact {
        found: String,
        expected: &'static str,
    },
    #[error(
        "unknown artifact version {found} in manifest.json; this build reads version {supported}"
    )]
    UnknownVersion { found: String, supported: u32 },
    #[error("manifest.json is malformed: {0}")]
    ManifestMalformed(String),
    #[error("weights hash mismatch: model.safetensors has sha256 {actual} but manifest.json records {expected} (the weights were changed after training, or the manifest belongs to another model)")]
    HashMismatch { expected: String, actual: String },
    #[error("model.safetensors is not a valid safetensors file: {0}")]
    WeightsMalformed(String),
    #[error("model.safetensors lacks tensor {name}, which this {arch} needs")]
    MissingTensor { name: String, arch: String },
    #[error("model.safetensors holds tensor {name}, which this {arch} does not use")]
    UnexpectedTensor { name: String, arch: String },
    #[error("tensor {name} is {found}, expected {expected}")]
    TensorShape {
        name: String,
        found: String,
        expected: String,
    },
    #[error("scaler mismatch: {0}")]
    Scaler(String),
    #[error("feature spec mismatch: {0}")]
    FeatureMismatch(String),
    #[error("model does not run: {0}")]
    Unrunnable(String),
}
