//! Stacked GRU with the input projection hoisted out of the time loop.
//!
//! Same plan as [`super::lstm`]: one `(B*T, I) x (I, 3H)` matmul per layer
//! for the inputs, one `(B, H) x (H, 3H)` matmul per step for all gates.
//! Gate order **r, z, n** (PyTorch's), with PyTorch's definition:
//!
//! ```text
//! r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(... same for z ...)
//! n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))
//! h' = (1 - z) ⊙ n + z ⊙ h
//! ```
//!
//! Stored tensors for layer `l`: `gru.{l}.w_ih (3H, I)`, `gru.{l}.w_hh (3H, H)`,
//! `gru.{l}.b_ih (3H)`, `gru.{l}.b_hh (3H)` (two biases: `b_hn` sits inside
//! the reset product, so they cannot be summed).

use candle_core::{Tensor, D};

use super::cell;
use super::params::{Init, ParamSpec, Weights};
use super::recurrent::{layer_input, project_inputs};
use crate::{ArchConfig, ModelError};

#[derive(Debug, Clone)]
struct Layer {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
}

/// A stack of GRU layers: `(B, T, F)` in, `(B, H)` out.
#[derive(Debug, Clone)]
pub struct Gru {
    layers: Vec<Layer>,
    hidden: usize,
}

impl Gru {
    pub(crate) fn param_specs(cfg: &ArchConfig) -> Vec<ParamSpec> {
        let h = cfg.hidden;
        let u = Init::Uniform(1.0 / (h as f64).sqrt());
        let mut specs = Vec::new();
        for l in 0..cfg.layers {
            let input = layer_input(cfg, l);
            specs.push(ParamSpec::new(format!("gru.{l}.w_ih"), &[3 * h, input], u));
            specs.push(ParamSpec::new(format!("gru.{l}.w_hh"), &[3 * h, h], u));
            specs.push(ParamSpec::new(format!("gru.{l}.b_ih"), &[3 * h], u));
            specs.push(ParamSpec::new(format!("gru.{l}.b_hh"), &[3 * h], u));
        }
        specs
    }

    pub(crate) fn new(cfg: &ArchConfig, w: &Weights<'_>) -> Result<Self, ModelError> {
        let h = cfg.hidden;
        let layers = (0..cfg.layers)
            .map(|l| {
                let input = layer_input(cfg, l);
                Ok(Layer {
                    w_ih: w.get(&format!("gru.{l}.w_ih"), &[3 * h, input])?,
                    w_hh: w.get(&format!("gru.{l}.w_hh"), &[3 * h, h])?,
                    b_ih: w.get(&format!("gru.{l}.b_ih"), &[3 * h])?,
                    b_hh: w.get(&format!("gru.{l}.b_hh"), &[3 * h])?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Gru { layers, hidden: h })
    }

    /// `x: (B, T, F)` -> `(B, H)`.
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let h = self.hidden;
        // Time-major: each step's slice of the projection is contiguous.
        let mut input = x.transpose(0, 1)?.contiguous()?;
        let top = self.layers.len() - 1;
        let mut hs = Tensor::zeros((b, h), x.dtype(), x.device())?;
        for (l, layer) in self.layers.iter().enumerate() {
            let xw = project_inputs(&input, &layer.w_ih, &layer.b_ih)?;
            let w_hh_t = layer.w_hh.t()?.contiguous()?;
            hs = Tensor::zeros((b, h), x.dtype(), x.device())?;
            let mut seq = Vec::with_capacity(if l < top { t } else { 0 });
            for s in 0..t {
                let x_s = xw.get(s)?;
                let h_s = hs.matmul(&w_hh_t)?.broadcast_add(&layer.b_hh)?;
                hs = if train {
                    composed_cell(&x_s, &h_s, &hs)?
                } else {
                    cell::gru_cell(&x_s, &h_s, &hs)?
                };
                if l < top {
                    seq.push(hs.clone());
                }
            }
            if l < top {
                input = Tensor::stack(&seq, 0)?;
            }
        }
        Ok(hs)
    }
}

/// The GRU cell from differentiable ops (see the module docs).
pub(crate) fn composed_cell(xw: &Tensor, hw: &Tensor, h: &Tensor) -> candle_core::Result<Tensor> {
    let n_h = h.dim(D::Minus1)?;
    let rz = candle_nn::ops::sigmoid(
        &(xw.narrow(D::Minus1, 0, 2 * n_h)? + hw.narrow(D::Minus1, 0, 2 * n_h)?)?,
    )?;
    let r = rz.narrow(D::Minus1, 0, n_h)?;
    let z = rz.narrow(D::Minus1, n_h, n_h)?;
    let n = (xw.narrow(D::Minus1, 2 * n_h, n_h)?
        + r.mul(&hw.narrow(D::Minus1, 2 * n_h, n_h)?)?)?
    .tanh()?;
    n.add(&z.mul(&h.sub(&n)?)?)
}
