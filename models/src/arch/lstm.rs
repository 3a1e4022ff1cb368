//! Stacked LSTM with the input projection hoisted out of the time loop.
//!
//! candle-nn's `LSTM::seq` calls `step` once per time step, and each step
//! multiplies the input by `W_ih` again. Here the input projection of a
//! whole layer is one `(B*T, I) x (I, 4H)` matmul, and each step does one
//! `(B, H) x (H, 4H)` matmul for all four gates together.
//!
//! Gate order inside the `4H` axis is **i, f, o, g** (input, forget,
//! output, cell candidate), so one sigmoid covers the first `3H` columns
//! and one tanh the last `H`. PyTorch stores i, f, g, o and ONNX i, o, f, c:
//! exporters permute (see `benches/onnx_lstm.py`).
//!
//! Stored tensors for layer `l` (input size `I` = features for layer 0,
//! `H` above it): `lstm.{l}.w_ih (4H, I)`, `lstm.{l}.w_hh (4H, H)`,
//! `lstm.{l}.bias (4H)` (PyTorch's `b_ih + b_hh`, one vector).

use candle_core::{Tensor, D};

use super::cell;
use super::params::{Init, ParamSpec, Weights};
use super::recurrent::{layer_input, project_inputs};
use crate::{ArchConfig, ModelError};

#[derive(Debug, Clone)]
struct Layer {
    /// `(4H, I)`.
    w_ih: Tensor,
    /// `(4H, H)`.
    w_hh: Tensor,
    /// `(4H)`.
    bias: Tensor,
}

/// A stack of LSTM layers: `(B, T, F)` in, `(B, H)` out (the top layer's
/// hidden state after the last step). State starts at zero for every window.
#[derive(Debug, Clone)]
pub struct Lstm {
    layers: Vec<Layer>,
    hidden: usize,
}

impl Lstm {
    pub(crate) fn param_specs(cfg: &ArchConfig) -> Vec<ParamSpec> {
        let h = cfg.hidden;
        let bound = 1.0 / (h as f64).sqrt();
        let mut specs = Vec::new();
        for l in 0..cfg.layers {
            let input = layer_input(cfg, l);
            specs.push(ParamSpec::new(
                format!("lstm.{l}.w_ih"),
                &[4 * h, input],
                Init::Uniform(bound),
            ));
            specs.push(ParamSpec::new(
                format!("lstm.{l}.w_hh"),
                &[4 * h, h],
                Init::Uniform(bound),
            ));
            specs.push(ParamSpec::new(
                format!("lstm.{l}.bias"),
                &[4 * h],
                Init::Uniform(bound),
            ));
        }
        specs
    }

    pub(crate) fn new(cfg: &ArchConfig, w: &Weights<'_>) -> Result<Self, ModelError> {
        let h = cfg.hidden;
        let layers = (0..cfg.layers)
            .map(|l| {
                let input = layer_input(cfg, l);
                Ok(Layer {
                    w_ih: w.get(&format!("lstm.{l}.w_ih"), &[4 * h, input])?,
                    w_hh: w.get(&format!("lstm.{l}.w_hh"), &[4 * h, h])?,
                    bias: w.get(&format!("lstm.{l}.bias"), &[4 * h])?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Lstm { layers, hidden: h })
    }

    /// `x: (B, T, F)` -> `(B, H)`. `train` selects differentiable ops;
    /// otherwise the fused CPU cell kernel is used where the device has it.
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (top, below) = self
            .layers
            .split_last()
            .ok_or_else(|| candle_core::Error::Msg("lstm has no layers".into()))?;
        // Time-major from here on: each step's slice is then contiguous.
        let mut input = x.transpose(0, 1)?.contiguous()?;
        for layer in below {
            let (_, seq) = self.run_layer(layer, &input, true, train)?;
            input = Tensor::stack(&seq, 0)?;
        }
        Ok(self.run_layer(top, &input, false, train)?.0)
    }

    /// Runs one layer over a time-major window `x: (T, B, I)`; returns the
    /// last hidden state `(B, H)` and, when `keep_seq`, every step's
    /// `(B, H)` in order.
    fn run_layer(
        &self,
        layer: &Layer,
        x: &Tensor,
        keep_seq: bool,
        train: bool,
    ) -> candle_core::Result<(Tensor, Vec<Tensor>)> {
        let (t, b, _) = x.dims3()?;
        let h = self.hidden;
        let xw = project_inputs(x, &layer.w_ih, &layer.bias)?;
        let w_hh_t = layer.w_hh.t()?.contiguous()?;
        let mut hs = Tensor::zeros((b, h), x.dtype(), x.device())?;
        let mut cs = hs.clone();
        let mut seq = Vec::with_capacity(if keep_seq { t } else { 0 });
        for s in 0..t {
            let xw_s = xw.get(s)?;
            let hw = hs.matmul(&w_hh_t)?;
            (hs, cs) = if train {
                composed_cell(&(xw_s + hw)?, &cs, h)?
            } else {
                cell::lstm_cell(&xw_s, &hw, &cs)?
            };
            if keep_seq {
                seq.push(hs.clone());
            }
        }
        Ok((hs, seq))
    }
}

/// The LSTM cell from differentiable ops: `gates: (B, 4H)` in i,f,o,g
/// order, `c: (B, H)`; returns `(h, c)`.
pub(crate) fn composed_cell(
    gates: &Tensor,
    c: &Tensor,
    h: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let ifo = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 0, 3 * h)?)?;
    let g = gates.narrow(D::Minus1, 3 * h, h)?.tanh()?;
    let i = ifo.narrow(D::Minus1, 0, h)?;
    let f = ifo.narrow(D::Minus1, h, h)?;
    let o = ifo.narrow(D::Minus1, 2 * h, h)?;
    let c = (f.mul(c)? + i.mul(&g)?)?;
    let h = o.mul(&c.tanh()?)?;
    Ok((h, c))
}
