//! [`NamedModel`]: a verified artifact under the name strategies ask for,
//! and [`OutputRef`]: which number of which model a strategy reads.

use std::path::Path;
use std::sync::Arc;

use candlewick_models::{Artifact, Device, Prediction};

use crate::InferenceError;

/// The outputs a model offers, for error messages.
pub const OUTPUTS: &str = "p_up (also the bare model name), p_flat, p_down, score";

/// A verified model artifact and the name strategies ask for it by (the
/// `models` of a plugin manifest).
///
/// Cheap to clone: the artifact is shared.
#[derive(Debug, Clone)]
pub struct NamedModel {
    name: Arc<str>,
    artifact: Arc<Artifact>,
}

impl NamedModel {
    /// Loads and verifies the artifact in `dir` (every check of
    /// [`Artifact::load`], including that this engine computes the
    /// features it was trained on), named `name` or, when `None`, by its
    /// manifest.
    ///
    /// # Errors
    /// [`InferenceError::Artifact`] for a refused artifact,
    /// [`InferenceError::BadName`] for an unusable name.
    pub fn load(name: Option<&str>, dir: &Path) -> Result<Self, InferenceError> {
        let artifact = Artifact::load(dir, &Device::Cpu)?;
        let name = name.unwrap_or(&artifact.manifest().name).to_owned();
        Self::new(&name, artifact)
    }

    /// Names an artifact already loaded (on the CPU).
    ///
    /// # Errors
    /// [`InferenceError::BadName`]: a name is 1-64 characters of
    /// `[A-Za-z0-9_-]` (the `.` separates a model from its output).
    pub fn new(name: &str, artifact: Artifact) -> Result<Self, InferenceError> {
        check_name(name)?;
        Ok(NamedModel {
            name: name.into(),
            artifact: Arc::new(artifact),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    /// Lower-case hex sha256 of the weights: identifies the model.
    pub fn sha256(&self) -> &str {
        &self.artifact.manifest().weights.sha256
    }
}

/// Two configured models are the same when name, directory and weights are.
impl PartialEq for NamedModel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.sha256() == other.sha256()
            && self.artifact.dir() == other.artifact.dir()
    }
}

impl Eq for NamedModel {}

fn check_name(name: &str) -> Result<(), InferenceError> {
    let bad = |reason| InferenceError::BadName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > 64 {
        return Err(bad("must be 1-64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad("only letters, digits, '_' and '-' are allowed"));
    }
    Ok(())
}

/// One number of a model's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Probability that the price goes up over the label horizon.
    PUp,
    PFlat,
    PDown,
    /// `p_up - p_down`, in `[-1, 1]`.
    Score,
}

impl Field {
    fn parse(s: &str) -> Option<Field> {
        match s {
            "p_up" => Some(Field::PUp),
            "p_flat" => Some(Field::PFlat),
            "p_down" => Some(Field::PDown),
            "score" => Some(Field::Score),
            _ => None,
        }
    }

    /// The field's value in a prediction.
    pub fn of(self, p: &Prediction) -> f64 {
        let [down, flat, up] = p.probs.map(f64::from);
        match self {
            Field::PUp => up,
            Field::PFlat => flat,
            Field::PDown => down,
            Field::Score => up - down,
        }
    }
}

/// A resolved model output: index of the model in the list it was
/// resolved against, and the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRef {
    pub model: usize,
    pub field: Field,
}

impl OutputRef {
    /// Resolves a plugin manifest's model output name: `NAME` (the
    /// probability of "up", what a follow-the-model strategy reads) or
    /// `NAME.FIELD` with FIELD one of `p_up`, `p_flat`, `p_down`, `score`.
    ///
    /// # Errors
    /// [`InferenceError::MissingModel`] naming the model and the configured
    /// ones; [`InferenceError::UnknownOutput`] for an unknown field.
    pub fn resolve(wanted: &str, models: &[NamedModel]) -> Result<OutputRef, InferenceError> {
        let (model, field) = wanted.split_once('.').unwrap_or((wanted, "p_up"));
        let Some(index) = models.iter().position(|m| m.name() == model) else {
            let configured = if models.is_empty() {
                "no models are configured".to_owned()
            } else {
                let names: Vec<&str> = models.iter().map(NamedModel::name).collect();
                format!("configured: {}", names.join(", "))
            };
            return Err(InferenceError::MissingModel {
                wanted: wanted.to_owned(),
                model: model.to_owned(),
                configured,
            });
        };
        let field = Field::parse(field).ok_or_else(|| InferenceError::UnknownOutput {
            wanted: wanted.to_owned(),
            model: model.to_owned(),
            field: field.to_owned(),
            outputs: OUTPUTS,
        })?;
        Ok(OutputRef {
            model: index,
            field,
        })
    }

    /// Resolves every name of `wanted`, in order.
    ///
    /// # Errors
    /// The first name that does not resolve.
    pub fn resolve_all(
        wanted: &[String],
        models: &[NamedModel],
    ) -> Result<Vec<OutputRef>, InferenceError> {
        wanted.iter().map(|w| Self::resolve(w, models)).collect()
    }
}

/// The models of `models` that some output of `needs` reads, in their
/// configured order: a model no strategy reads is not run.
pub fn used_models<'a>(
    models: &[NamedModel],
    needs: impl IntoIterator<Item = &'a String>,
) -> Vec<NamedModel> {
    let wanted: Vec<&str> = needs
        .into_iter()
        .map(|w| w.split_once('.').map_or(w.as_str(), |(m, _)| m))
        .collect();
    models
        .iter()
        .filter(|m| wanted.contains(&m.name()))
        .cloned()
        .collect()
}

/// Refuses two models of one name.
///
/// # Errors
/// [`InferenceError::Duplicate`] naming the first repeated name.
pub fn check_unique(models: &[NamedModel]) -> Result<(), InferenceError> {
    for (i, m) in models.iter().enumerate() {
        if models[..i].iter().any(|o| o.name() == m.name()) {
            return Err(InferenceError::Duplicate(m.name().to_owned()));
        }
    }
    Ok(())
}
