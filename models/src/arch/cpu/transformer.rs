//! The pre-norm Transformer encoder on packed weights: the chunk's rows of
//! every position go through each projection as one product; attention is
//! one pass per (row, head, query) over the window; the last block works
//! on the last position only, as the candle path does.

use pulp::Simd;

use super::gemm::{gemm_bias, grow, padded, Packed};
use crate::arch::cell::exp_approx;

const LN_EPS: f32 = 1e-5;

/// A linear layer: its weight packed with its bias.
#[derive(Debug, Clone)]
pub(crate) struct Lin {
    pub(crate) w: Packed,
}

impl Lin {
    /// `out = a x W^T + b` for `m` rows.
    #[inline(always)]
    fn apply<S: Simd>(&self, s: S, a: &[f32], lda: usize, m: usize, out: &mut [f32], ldo: usize) {
        gemm_bias(s, a, lda, m, &self.w, out, ldo);
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Norm {
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
}

impl Norm {
    /// Normalises the first `w.len()` values of each of `m` rows of `x`
    /// (stride `ld`) into `out` (same stride).
    #[inline(always)]
    fn apply(&self, x: &[f32], m: usize, ld: usize, out: &mut [f32]) {
        let d = self.w.len();
        for r in 0..m {
            let row = &x[r * ld..r * ld + d];
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + LN_EPS).sqrt();
            let o = &mut out[r * ld..r * ld + d];
            for k in 0..d {
                o[k] = (row[k] - mean) * inv * self.w[k] + self.b[k];
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) ln1: Norm,
    pub(crate) qkv: Lin,
    pub(crate) out: Lin,
    pub(crate) ln2: Norm,
    pub(crate) ff1: Lin,
    pub(crate) ff2: Lin,
}

#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    pub(crate) proj: Lin,
    /// `(T, D)`.
    pub(crate) pos: Vec<f32>,
    pub(crate) blocks: Vec<Block>,
    pub(crate) ln_f: Norm,
    pub(crate) heads: usize,
    pub(crate) width: usize,
    pub(crate) ff: usize,
}

/// One chunk's working memory, grown to the largest chunk seen.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    x: Vec<f32>,
    y: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    hid: Vec<f32>,
    scores: Vec<f32>,
}

impl Encoder {
    /// `x: (m, t, f)` -> the final norm of each row's last position into
    /// `top: (m, D)`.
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
        let d = self.width;
        let dp = padded(d);
        let qp = padded(3 * d);
        let fp = padded(self.ff);
        let rows = m * t;
        grow(&mut buf.x, rows * dp);
        grow(&mut buf.y, rows * dp);
        grow(&mut buf.att, rows * dp);
        grow(&mut buf.qkv, rows * qp);
        grow(&mut buf.hid, rows * fp);
        grow(&mut buf.scores, t);
        self.proj.apply(s, x, self.proj.w.k(), rows, &mut buf.x, dp);
        for r in 0..rows {
            let pos = &self.pos[(r % t) * d..][..d];
            for (v, p) in buf.x[r * dp..r * dp + d].iter_mut().zip(pos) {
                *v += p;
            }
        }
        let last = self.blocks.len() - 1;
        // Rows of `buf.x` live after each block: every position, then (after
        // the last block) one per window.
        let mut live = rows;
        for (l, blk) in self.blocks.iter().enumerate() {
            let last_only = l == last;
            blk.ln1.apply(&buf.x, live, dp, &mut buf.y);
            blk.qkv.apply(s, &buf.y, dp, live, &mut buf.qkv, qp);
            self.attention(
                s,
                &buf.qkv,
                qp,
                m,
                t,
                last_only,
                &mut buf.scores,
                &mut buf.att,
                dp,
            );
            if last_only {
                // Keep each window's last position, in row order.
                for r in 0..m {
                    let src = (r * t + t - 1) * dp;
                    buf.x.copy_within(src..src + dp, r * dp);
                }
                live = m;
            }
            // x += att W_out + b; then x += W2 relu(W1 LN2(x)).
            blk.out.apply(s, &buf.att, dp, live, &mut buf.y, dp);
            add_rows(&mut buf.x, &buf.y, live, dp, d);
            blk.ln2.apply(&buf.x, live, dp, &mut buf.y);
            blk.ff1.apply(s, &buf.y, dp, live, &mut buf.hid, fp);
            for v in &mut buf.hid[..live * fp] {
                *v = v.max(0.0);
            }
            blk.ff2.apply(s, &buf.hid, fp, live, &mut buf.y, dp);
            add_rows(&mut buf.x, &buf.y, live, dp, d);
        }
        self.ln_f.apply(&buf.x, m, dp, &mut buf.y);
        for r in 0..m {
            top[r * d..(r + 1) * d].copy_from_slice(&buf.y[r * dp..r * dp + d]);
        }
    }

    /// Scaled dot-product attention per row and head: every query, or
    /// (`last_only`) each window's last, against all keys of its window.
    /// Output rows: `(r, i)` for every query `i`, or one per window.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn attention<S: Simd>(
        &self,
        s: S,
        qkv: &[f32],
        qp: usize,
        m: usize,
        t: usize,
        last_only: bool,
        scores: &mut [f32],
        out: &mut [f32],
        ldo: usize,
    ) {
        let d = self.width;
        let dh = d / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let first = if last_only { t - 1 } else { 0 };
        for r in 0..m {
            let win = &qkv[r * t * qp..(r + 1) * t * qp];
            for i in first..t {
                let o_row = if last_only { r } else { r * t + i };
                let o = &mut out[o_row * ldo..o_row * ldo + d];
                for hh in 0..self.heads {
                    let q = &win[i * qp + hh * dh..][..dh];
                    let mut max = f32::NEG_INFINITY;
                    for (j, sc) in scores[..t].iter_mut().enumerate() {
                        let k = &win[j * qp + d + hh * dh..][..dh];
                        *sc = dot(s, q, k) * scale;
                        max = max.max(*sc);
                    }
                    // Two passes: the map vectorises, the sum does not.
                    for sc in &mut scores[..t] {
                        *sc = exp_approx(*sc - max);
                    }
                    let inv = 1.0 / scores[..t].iter().sum::<f32>();
                    let oh = &mut o[hh * dh..(hh + 1) * dh];
                    oh.fill(0.0);
                    for (j, p) in scores[..t].iter().enumerate() {
                        let v = &win[j * qp + 2 * d + hh * dh..][..dh];
                        let p = p * inv;
                        for (a, b) in oh.iter_mut().zip(v) {
                            *a += p * b;
                        }
                    }
                }
            }
        }
    }
}

/// `x[r, ..d] += y[r, ..d]` for `m` rows of stride `ld`.
#[inline(always)]
fn add_rows(x: &mut [f32], y: &[f32], m: usize, ld: usize, d: usize) {
    for r in 0..m {
        for (a, b) in x[r * ld..r * ld + d].iter_mut().zip(&y[r * ld..r * ld + d]) {
            *a += b;
        }
    }
}

/// `a . b` with vector multiply-adds (the head width is a few vectors).
#[inline(always)]
fn dot<S: Simd>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let (av, at) = S::as_simd_f32s(a);
    let (bv, bt) = S::as_simd_f32s(b);
    let mut acc = s.splat_f32s(0.0);
    for (x, y) in av.iter().zip(bv) {
        acc = s.mul_add_e_f32s(*x, *y, acc);
    }
    s.reduce_sum_f32s(acc) + at.iter().zip(bt).map(|(x, y)| x * y).sum::<f32>()
}
