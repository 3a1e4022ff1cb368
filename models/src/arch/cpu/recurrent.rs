//! LSTM and GRU stacks on packed weights: per layer one product for every
//! step's input projection, then per step one product `h x W_hh` for all
//! gates and the fused cell, all in the chunk's preallocated buffers.

use pulp::Simd;

use super::gemm::{gemm_bias, grow, Packed};
use crate::arch::cell::{sigmoid, tanh};

/// Which cell, and the gate count of its projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Gates i, f, o, g; one bias (on the input side).
    Lstm,
    /// Gates r, z, n; `b_hh` stays on the hidden side (inside `r * (...)`).
    Gru,
}

/// A layer's weights, each with its bias: `b_ih` on the input side, `b_hh`
/// (the GRU's; none for the LSTM) on the hidden side.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) w_ih: Packed,
    pub(crate) w_hh: Packed,
}

#[derive(Debug, Clone)]
pub(crate) struct Stack {
    pub(crate) cell: Cell,
    pub(crate) hidden: usize,
    pub(crate) layers: Vec<Layer>,
}

/// One chunk's working memory, grown to the largest chunk seen.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    xw: Vec<f32>,
    hw: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
    seq: Vec<f32>,
}

impl Stack {
    /// `x: (m, t, f)` row-major -> the top layer's last hidden state into
    /// `top: (m, H)`.
    #[inline(always)]
    pub(crate) fn forward<S: Simd>(
        &self,
        s: S,
        x: &[f32],
        m: usize,
        t: usize,
        buf: &mut Buffers,
        top: &mut [f32],
    ) {
        let h = self.hidden;
        let np = self.layers.first().map_or(0, |l| l.w_ih.np());
        grow(&mut buf.xw, m * t * np);
        grow(&mut buf.hw, m * np);
        grow(&mut buf.h, m * h);
        grow(&mut buf.c, m * h);
        grow(&mut buf.seq, m * t * h);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            // Every step's input projection at once: rows (r, s) in order.
            let rows = m * t;
            if l == 0 {
                gemm_bias(s, x, layer.w_ih.k(), rows, &layer.w_ih, &mut buf.xw, np);
            } else {
                gemm_bias(s, &buf.seq, h, rows, &layer.w_ih, &mut buf.xw, np);
            }
            buf.h[..m * h].fill(0.0);
            buf.c[..m * h].fill(0.0);
            let keep = l < last;
            for step in 0..t {
                gemm_bias(s, &buf.h, h, m, &layer.w_hh, &mut buf.hw, np);
                for r in 0..m {
                    let xw = &buf.xw[(r * t + step) * np..][..np];
                    let hw = &buf.hw[r * np..][..np];
                    let hr = &mut buf.h[r * h..(r + 1) * h];
                    match self.cell {
                        Cell::Lstm => lstm_cell(xw, hw, &mut buf.c[r * h..(r + 1) * h], hr),
                        Cell::Gru => gru_cell(xw, hw, hr),
                    }
                    if keep {
                        buf.seq[(r * t + step) * h..][..h].copy_from_slice(hr);
                    }
                }
            }
        }
        top[..m * h].copy_from_slice(&buf.h[..m * h]);
    }
}

/// `x`, `y`: the step's input and hidden projections, gates i, f, o, g.
#[inline(always)]
fn lstm_cell(x: &[f32], y: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = h.len();
    let (xi, xf, xo, xg) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n], &x[3 * n..4 * n]);
    let (yi, yf, yo, yg) = (&y[..n], &y[n..2 * n], &y[2 * n..3 * n], &y[3 * n..4 * n]);
    for k in 0..n {
        let i = sigmoid(xi[k] + yi[k]);
        let f = sigmoid(xf[k] + yf[k]);
        let o = sigmoid(xo[k] + yo[k]);
        let g = tanh(xg[k] + yg[k]);
        let cn = f * c[k] + i * g;
        c[k] = cn;
        h[k] = o * tanh(cn);
    }
}

/// `x`, `y`: input and hidden projections with their biases, gates r, z,
/// n; `h` is updated in place.
#[inline(always)]
fn gru_cell(x: &[f32], y: &[f32], h: &mut [f32]) {
    let n = h.len();
    let (xr, xz, xn) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n]);
    let (yr, yz, yn) = (&y[..n], &y[n..2 * n], &y[2 * n..3 * n]);
    for k in 0..n {
        let r = sigmoid(xr[k] + yr[k]);
        let z = sigmoid(xz[k] + yz[k]);
        let nn = tanh(xn[k] + r * yn[k]);
        h[k] = nn + z * (h[k] - nn);
    }
}
