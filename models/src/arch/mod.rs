//! The networks: a body (LSTM, GRU or Transformer) that turns a window
//! `(B, T, F)` into one vector per row `(B, H)`, and a linear head to
//! `(B, classes)` logits.
//!
//! A [`Network`] is built from a name -> tensor map, the same map that
//! `model.safetensors` stores ([`Network::param_specs`] lists the names and
//! shapes for a config), so training, saving and loading share one source
//! of truth about what a model holds.

mod cell;
pub mod cpu;
mod gru;
mod lstm;
mod params;
mod recurrent;
mod transformer;

use std::collections::HashMap;

use candle_core::Tensor;

pub use cpu::{CpuNet, CpuScratch};
pub use gru::Gru;
pub use lstm::Lstm;
pub use params::{init_params, Init, ParamSpec};
pub use transformer::Transformer;

use crate::{ArchConfig, ArchKind, ModelError};
use params::{linear, Weights};

#[derive(Debug, Clone)]
enum Body {
    Lstm(Lstm),
    Gru(Gru),
    Transformer(Transformer),
}

/// A network with its weights, ready to run.
#[derive(Debug, Clone)]
pub struct Network {
    config: ArchConfig,
    body: Body,
    /// `(classes, H)`.
    head_w: Tensor,
    /// `(classes)`.
    head_b: Tensor,
    /// Every tensor of [`Network::param_specs`], by name: what the CPU
    /// path ([`CpuNet`]) packs.
    params: HashMap<String, Tensor>,
}

impl Network {
    /// Every tensor a network of `config` stores, in a fixed order.
    pub fn param_specs(config: &ArchConfig) -> Vec<ParamSpec> {
        let mut specs = match config.kind {
            ArchKind::Lstm => Lstm::param_specs(config),
            ArchKind::Gru => Gru::param_specs(config),
            ArchKind::Transformer => Transformer::param_specs(config),
        };
        let u = Init::Uniform(1.0 / (config.hidden as f64).sqrt());
        specs.push(ParamSpec::new(
            "head.weight",
            &[config.classes, config.hidden],
            u,
        ));
        specs.push(ParamSpec::new("head.bias", &[config.classes], u));
        specs
    }

    /// Builds the network from `weights` (extra entries are ignored here;
    /// the artifact loader refuses them earlier).
    ///
    /// # Errors
    /// [`ModelError::Config`] for a bad config or a missing or misshapen
    /// tensor.
    pub fn from_weights(
        config: &ArchConfig,
        weights: &HashMap<String, Tensor>,
    ) -> Result<Self, ModelError> {
        config.validate()?;
        let w = Weights::new(weights);
        let body = match config.kind {
            ArchKind::Lstm => Body::Lstm(Lstm::new(config, &w)?),
            ArchKind::Gru => Body::Gru(Gru::new(config, &w)?),
            ArchKind::Transformer => Body::Transformer(Transformer::new(config, &w)?),
        };
        let params = Self::param_specs(config)
            .iter()
            .map(|spec| Ok((spec.name.clone(), w.get(&spec.name, &spec.shape)?)))
            .collect::<Result<_, ModelError>>()?;
        Ok(Network {
            config: config.clone(),
            params,
            body,
            head_w: w.get("head.weight", &[config.classes, config.hidden])?,
            head_b: w.get("head.bias", &[config.classes])?,
        })
    }

    pub fn config(&self) -> &ArchConfig {
        &self.config
    }

    /// The network's tensors by name (as f32), as `model.safetensors`
    /// stores them.
    pub fn params(&self) -> &HashMap<String, Tensor> {
        &self.params
    }

    /// Logits: `x: (B, T, F)` f32 -> `(B, classes)`. Inference path: fused
    /// kernels, no autograd graph needed.
    ///
    /// # Errors
    /// A shape that does not match the config, or a device failure.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_t(x, false)
    }

    /// Logits with `train` choosing differentiable ops throughout.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, _, f) = x.dims3()?;
        if f != self.config.features {
            return Err(candle_core::Error::Msg(format!(
                "network expects {} features, input has {f}",
                self.config.features
            )));
        }
        let h = match &self.body {
            Body::Lstm(m) => m.forward(x, train)?,
            Body::Gru(m) => m.forward(x, train)?,
            Body::Transformer(m) => m.forward(x, train)?,
        };
        linear(&h, &self.head_w, &self.head_b)
    }
}
