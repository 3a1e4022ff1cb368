//! Errors of the models crate: one enum for building, training and running
//! models, and [`ArtifactError`](crate::artifact::ArtifactError) for the
//! refusals of a model artifact on load.

use std::path::PathBuf;

use crate::artifact::ArtifactError;

/// Anything that stops a model from being built, trained or run.
///
/// Per-input problems at inference (a NaN, a short history) are *not*
/// errors: they are [`NoPrediction`](crate::NoPrediction) values, one per
/// symbol, so one bad symbol never fails a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A tensor operation failed (out of memory, a device error, or a bug:
    /// shapes are checked before any forward).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A configuration value out of range, with the field named.
    #[error("invalid {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// The feature spec does not parse.
    #[error("feature spec: {0}")]
    Features(#[from] crate::features::FeatureSpecError),
    /// Too little data for the window, horizon and split asked for.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A model artifact was refused (see [`ArtifactError`]).
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

impl ModelError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        ModelError::Config {
            field,
            reason: reason.into(),
        }
    }
}
