//! Named parameters: what each architecture stores, how training seeds it,
//! and how a network is built from a name -> tensor map.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::rng::SplitMix64;
use crate::ModelError;

/// How a parameter starts before training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Uniform in `[-bound, bound)` (PyTorch's default for RNNs and linear
    /// layers uses `bound = 1/sqrt(fan)`).
    Uniform(f64),
    Zeros,
    Ones,
}

/// One stored tensor: its name in `model.safetensors`, its shape, its init.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl ParamSpec {
    pub(crate) fn new(name: impl Into<String>, shape: &[usize], init: Init) -> Self {
        ParamSpec {
            name: name.into(),
            shape: shape.to_vec(),
            init,
        }
    }
}

/// Draws every parameter from `seed`, in spec order, as f32.
///
/// # Errors
/// A tensor allocation failure.
pub fn init_params(
    specs: &[ParamSpec],
    seed: u64,
    device: &Device,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut rng = SplitMix64::new(seed);
    let mut out = HashMap::with_capacity(specs.len());
    for spec in specs {
        let n: usize = spec.shape.iter().product();
        let values: Vec<f32> = match spec.init {
            Init::Uniform(bound) => (0..n).map(|_| rng.uniform(bound) as f32).collect(),
            Init::Zeros => vec![0.0; n],
            Init::Ones => vec![1.0; n],
        };
        let t = Tensor::from_vec(values, spec.shape.as_slice(), device)?;
        out.insert(spec.name.clone(), t);
    }
    Ok(out)
}

/// Read access to a name -> tensor map while building a network.
pub(crate) struct Weights<'a> {
    map: &'a HashMap<String, Tensor>,
}

impl<'a> Weights<'a> {
    pub(crate) fn new(map: &'a HashMap<String, Tensor>) -> Self {
        Weights { map }
    }

    /// The tensor called `name`, as f32, with exactly `shape`.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let t = self
            .map
            .get(name)
            .ok_or_else(|| ModelError::config("weights", format!("missing tensor {name}")))?;
        if t.dims() != shape {
            return Err(ModelError::config(
                "weights",
                format!("{name} has shape {:?}, expected {shape:?}", t.dims()),
            ));
        }
        Ok(if t.dtype() == DType::F32 {
            t.clone()
        } else {
            t.to_dtype(DType::F32)?
        })
    }
}

/// `x @ w^T + b` for `x: (N, in)`, `w: (out, in)`, `b: (out)`; returns `(N, out)`.
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.matmul(&w.t()?)?.broadcast_add(b)
}
