//! LSTM and GRU stacks on packed weights: per layer one product for every
//! step's input projection, then per step one product `h x W_hh` for all
//! gates and the fused cell, all in the chunk's preallocated buffers.

use pulp::Simd;

use super::gemm::{gemm_bias, grow, Packed};
use super::vmath::{for_each_vector, load, sigmoid, store, tanh};

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
                        Cell::Lstm => lstm_cell(s, xw, hw, &mut buf.c[r * h..(r + 1) * h], hr),
                        Cell::Gru => gru_cell(s, xw, hw, hr),
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
fn lstm_cell<S: Simd>(s: S, x: &[f32], y: &[f32], c: &mut [f32], h: &mut [f32]) {
    let n = h.len();
    for_each_vector::<S>(n, |k, w| {
        let gate = |g: usize| s.add_f32s(load(s, x, g * n + k, w), load(s, y, g * n + k, w));
        let i = sigmoid(s, gate(0));
        let f = sigmoid(s, gate(1));
        let o = sigmoid(s, gate(2));
        let g = tanh(s, gate(3));
        let cn = s.mul_add_e_f32s(f, load(s, c, k, w), s.mul_f32s(i, g));
        store(s, c, k, w, cn);
        store(s, h, k, w, s.mul_f32s(o, tanh(s, cn)));
    });
}

/// `x`, `y`: input and hidden projections with their biases, gates r, z,
/// n; `h` is updated in place.
#[inline(always)]
fn gru_cell<S: Simd>(s: S, x: &[f32], y: &[f32], h: &mut [f32]) {
    let n = h.len();
    for_each_vector::<S>(n, |k, w| {
        let (xg, yg) = (
            |g: usize| load(s, x, g * n + k, w),
            |g: usize| load(s, y, g * n + k, w),
        );
        let r = sigmoid(s, s.add_f32s(xg(0), yg(0)));
        let z = sigmoid(s, s.add_f32s(xg(1), yg(1)));
        let nn = tanh(s, s.mul_add_e_f32s(r, yg(2), xg(2)));
        let hk = load(s, h, k, w);
        store(s, h, k, w, s.mul_add_e_f32s(z, s.sub_f32s(hk, nn), nn));
    });
}
