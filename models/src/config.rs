//! Architecture configuration: what a model is, independent of its weights.

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which network reads the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchKind {
    /// Stacked LSTM; the head reads the top layer's last hidden state.
    Lstm,
    /// Stacked GRU; the head reads the top layer's last hidden state.
    Gru,
    /// Pre-norm Transformer encoder with learned positions; the head reads
    /// the last position.
    Transformer,
}

impl ArchKind {
    pub fn name(self) -> &'static str {
        match self {
            ArchKind::Lstm => "lstm",
            ArchKind::Gru => "gru",
            ArchKind::Transformer => "transformer",
        }
    }
}

impl std::fmt::Display for ArchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The shape of a network. Stored in the manifest; the weights must match
/// it tensor for tensor.
///
/// Input is `(batch, window, features)`, output `(batch, classes)` logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchConfig {
    pub kind: ArchKind,
    /// Features per time step (`F`).
    pub features: usize,
    /// Time steps per window (`T`). The recurrent nets accept any length;
    /// the Transformer's position table is exactly this long.
    pub window: usize,
    /// Hidden size of the recurrent layers, model width of the Transformer.
    pub hidden: usize,
    /// Stacked layers.
    pub layers: usize,
    /// Attention heads (Transformer only; must divide `hidden`).
    pub heads: usize,
    /// Feed-forward width (Transformer only).
    pub ff: usize,
    /// Output classes: 3 = down, flat, up.
    pub classes: usize,
}

impl ArchConfig {
    /// The defaults for `kind`: hidden 64, 2 layers, 4 heads, ff 128, 3 classes.
    pub fn new(kind: ArchKind, features: usize, window: usize) -> Self {
        ArchConfig {
            kind,
            features,
            window,
            hidden: 64,
            layers: 2,
            heads: 4,
            ff: 128,
            classes: 3,
        }
    }

    /// Checks every size is usable.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (field, v) in [
            ("features", self.features),
            ("window", self.window),
            ("hidden", self.hidden),
            ("layers", self.layers),
            ("classes", self.classes),
        ] {
            if v == 0 || v > 1 << 16 {
                return Err(ModelError::config(
                    field,
                    format!("must be 1..=65536, got {v}"),
                ));
            }
        }
        if self.kind == ArchKind::Transformer {
            if self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
                return Err(ModelError::config(
                    "heads",
                    format!("must divide hidden {}, got {}", self.hidden, self.heads),
                ));
            }
            if self.ff == 0 {
                return Err(ModelError::config("ff", "must be at least 1"));
            }
        }
        Ok(())
    }
}
