//! A small pre-norm Transformer encoder over the window.
//!
//! ```text
//! x (B, T, F) -> linear (F -> D) + learned position (T, D)
//!   -> N x [ x + MHA(LN(x)) ; x + FFN(LN(x)) ]   (FFN: D -> ff -> ReLU -> D)
//!   -> LN -> last position (B, D)
//! ```
//!
//! No causal mask: every position in a window is already in the past. The
//! query, key and value projections are one fused `(D -> 3D)` matmul. At
//! inference the last layer computes attention and the FFN for the last
//! position only, the one the head reads.
//!
//! Stored tensors: `tf.proj.{weight (D, F), bias (D)}`, `tf.pos (T, D)`,
//! per layer `tf.{l}.{ln1,ln2}.{weight,bias} (D)`, `tf.{l}.qkv.{weight (3D, D),
//! bias (3D)}`, `tf.{l}.out.{weight (D, D), bias (D)}`, `tf.{l}.ff1.{weight
//! (ff, D), bias (ff)}`, `tf.{l}.ff2.{weight (D, ff), bias (D)}`,
//! `tf.ln_f.{weight,bias} (D)`.

use candle_core::{Tensor, D};

use super::params::{linear, Init, ParamSpec, Weights};
use crate::{ArchConfig, ModelError};

const LN_EPS: f32 = 1e-5;

#[derive(Debug, Clone)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
}

impl Norm {
    fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if train {
            candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, LN_EPS)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, LN_EPS)
        }
    }
}

#[derive(Debug, Clone)]
struct Lin {
    weight: Tensor,
    bias: Tensor,
}

impl Lin {
    /// `(..., in)` -> `(..., out)`.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let (lead, last) = dims.split_at(dims.len() - 1);
        let rows: usize = lead.iter().product();
        let y = linear(&x.reshape((rows, last[0]))?, &self.weight, &self.bias)?;
        let mut out_dims = lead.to_vec();
        out_dims.push(y.dim(1)?);
        y.reshape(out_dims)
    }
}

#[derive(Debug, Clone)]
struct Block {
    ln1: Norm,
    qkv: Lin,
    out: Lin,
    ln2: Norm,
    ff1: Lin,
    ff2: Lin,
}

/// The encoder: `(B, T, F)` in, `(B, D)` out (the last position).
#[derive(Debug, Clone)]
pub struct Transformer {
    proj: Lin,
    pos: Tensor,
    blocks: Vec<Block>,
    ln_f: Norm,
    heads: usize,
    window: usize,
}

impl Transformer {
    pub(crate) fn param_specs(cfg: &ArchConfig) -> Vec<ParamSpec> {
        let d = cfg.hidden;
        let ff = cfg.ff;
        let lin = |name: String, out: usize, inp: usize| {
            let u = Init::Uniform(1.0 / (inp as f64).sqrt());
            [
                ParamSpec::new(format!("{name}.weight"), &[out, inp], u),
                ParamSpec::new(format!("{name}.bias"), &[out], u),
            ]
        };
        let norm = |name: String| {
            [
                ParamSpec::new(format!("{name}.weight"), &[d], Init::Ones),
                ParamSpec::new(format!("{name}.bias"), &[d], Init::Zeros),
            ]
        };
        let mut specs = Vec::new();
        specs.extend(lin("tf.proj".into(), d, cfg.features));
        specs.push(ParamSpec::new(
            "tf.pos",
            &[cfg.window, d],
            Init::Uniform(0.02),
        ));
        for l in 0..cfg.layers {
            specs.extend(norm(format!("tf.{l}.ln1")));
            specs.extend(lin(format!("tf.{l}.qkv"), 3 * d, d));
            specs.extend(lin(format!("tf.{l}.out"), d, d));
            specs.extend(norm(format!("tf.{l}.ln2")));
            specs.extend(lin(format!("tf.{l}.ff1"), ff, d));
            specs.extend(lin(format!("tf.{l}.ff2"), d, ff));
        }
        specs.extend(norm("tf.ln_f".into()));
        specs
    }

    pub(crate) fn new(cfg: &ArchConfig, w: &Weights<'_>) -> Result<Self, ModelError> {
        let d = cfg.hidden;
        let lin = |name: &str, out: usize, inp: usize| -> Result<Lin, ModelError> {
            Ok(Lin {
                weight: w.get(&format!("{name}.weight"), &[out, inp])?,
                bias: w.get(&format!("{name}.bias"), &[out])?,
            })
        };
        let norm = |name: &str| -> Result<Norm, ModelError> {
            Ok(Norm {
                weight: w.get(&format!("{name}.weight"), &[d])?,
                bias: w.get(&format!("{name}.bias"), &[d])?,
            })
        };
        let blocks = (0..cfg.layers)
            .map(|l| {
                Ok(Block {
                    ln1: norm(&format!("tf.{l}.ln1"))?,
                    qkv: lin(&format!("tf.{l}.qkv"), 3 * d, d)?,
                    out: lin(&format!("tf.{l}.out"), d, d)?,
                    ln2: norm(&format!("tf.{l}.ln2"))?,
                    ff1: lin(&format!("tf.{l}.ff1"), cfg.ff, d)?,
                    ff2: lin(&format!("tf.{l}.ff2"), d, cfg.ff)?,
                })
            })
            .collect::<Result<_, ModelError>>()?;
        Ok(Transformer {
            proj: lin("tf.proj", d, cfg.features)?,
            pos: w.get("tf.pos", &[cfg.window, d])?,
            blocks,
            ln_f: norm("tf.ln_f")?,
            heads: cfg.heads,
            window: cfg.window,
        })
    }

    /// `x: (B, T, F)` with `T` equal to the configured window -> `(B, D)`.
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, t, _) = x.dims3()?;
        if t != self.window {
            return Err(candle_core::Error::Msg(format!(
                "transformer window is {}, input has {t} steps",
                self.window
            )));
        }
        let mut x = self.proj.forward(x)?.broadcast_add(&self.pos)?;
        let last = self.blocks.len() - 1;
        for (l, block) in self.blocks.iter().enumerate() {
            // At inference only the last position of the last block matters.
            let last_only = !train && l == last;
            x = self.block(block, &x, last_only, train)?;
        }
        let x = x.narrow(1, x.dim(1)? - 1, 1)?.squeeze(1)?;
        self.ln_f.forward(&x, train)
    }

    /// One block; `x: (B, T, D)` -> `(B, T, D)`, or `(B, 1, D)` when `last_only`.
    fn block(
        &self,
        blk: &Block,
        x: &Tensor,
        last_only: bool,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let nh = self.heads;
        let dh = d / nh;
        let y = blk.ln1.forward(x, train)?;
        // (B, T, 3, nh, dh) -> (3, B, nh, T, dh)
        let qkv = blk
            .qkv
            .forward(&y)?
            .reshape((b, t, 3, nh, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let (mut q, k, v) = (
            qkv.get(0)?,
            qkv.get(1)?.contiguous()?,
            qkv.get(2)?.contiguous()?,
        );
        let (x, tq) = if last_only {
            q = q.narrow(2, t - 1, 1)?;
            (x.narrow(1, t - 1, 1)?, 1)
        } else {
            (x.clone(), t)
        };
        let q = q.contiguous()?;
        let scale = 1.0 / (dh as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?;
        let p = if train {
            candle_nn::ops::softmax(&scores, D::Minus1)?
        } else {
            candle_nn::ops::softmax_last_dim(&scores)?
        };
        let att = p
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, tq, d))?;
        let x = (x + blk.out.forward(&att)?)?;
        let y = blk.ln2.forward(&x, train)?;
        let y = blk.ff2.forward(&blk.ff1.forward(&y)?.relu()?)?;
        x + y
    }
}
