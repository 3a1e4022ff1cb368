//! Why a model could not be configured, resolved or run.

use candlewick_models::{ArtifactError, ModelError};

/// Everything the inference stage refuses or fails at.
///
/// Per-bar problems (a window not yet full, a NaN feature, a non-finite
/// output) are not errors: the bar's model outputs are NaN, the ABI's "not
/// available", and the reason is counted in [`crate::StageStats`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// The artifact failed verification (hash, version, features, ...).
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A model name strategies could not ask for.
    #[error("model name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    /// Two configured models share a name.
    #[error("model {0:?} is configured twice; give each model its own name")]
    Duplicate(String),
    /// A strategy asks for a model that is not configured.
    #[error(
        "needs model output {wanted:?}, but no model named {model:?} is configured ({configured})"
    )]
    MissingModel {
        wanted: String,
        model: String,
        configured: String,
    },
    /// A strategy asks for an output a model does not have.
    #[error(
        "model output {wanted:?}: model {model:?} has no output {field:?} (outputs: {outputs})"
    )]
    UnknownOutput {
        wanted: String,
        model: String,
        field: String,
        outputs: &'static str,
    },
    /// A stream index outside the stage.
    #[error("stream {stream} is not one of the stage's {streams} streams")]
    UnknownStream { stream: usize, streams: usize },
    /// The predictor could not be built or its forward failed.
    #[error("model {model}: {source}")]
    Model {
        model: String,
        /// Boxed: a tensor error is large, and errors travel by value.
        #[source]
        source: Box<ModelError>,
    },
    /// A saved window state that cannot be restored.
    #[error("model {model}: saved window state not restored: {reason}")]
    Snapshot { model: String, reason: String },
}
