//! What the recurrent layers (LSTM, GRU) share: their input sizes and the
//! input projection hoisted out of the time loop.

use candle_core::Tensor;

use crate::ArchConfig;

/// Input width of recurrent layer `l`: the features for the first, the
/// hidden state of the layer below for the others.
pub(crate) fn layer_input(cfg: &ArchConfig, l: usize) -> usize {
    if l == 0 {
        cfg.features
    } else {
        cfg.hidden
    }
}

/// Every time step's input projection in one matmul: a time-major window
/// `x: (T, B, I)` times `w_ih: (G, I)` plus `bias: (G)` gives `(T, B, G)`,
/// where the cell stack of candle would redo the product at every step.
pub(crate) fn project_inputs(
    x: &Tensor,
    w_ih: &Tensor,
    bias: &Tensor,
) -> candle_core::Result<Tensor> {
    let (t, b, i) = x.dims3()?;
    let g = w_ih.dim(0)?;
    x.reshape((t * b, i))?
        .matmul(&w_ih.t()?.contiguous()?)?
        .broadcast_add(bias)?
        .reshape((t, b, g))
}
