//! The pre-norm Transformer encoder on packed weights: the chunk's rows of
//! every position go through each projection as one product; attention
//! runs per (row, head) on the window's keys transposed, four queries at a
//! time; the last block projects and attends the last query only, as the
//! candle path does (its keys and values still come from every position).

use pulp::Simd;

use super::gemm::{gemm_bias, grow, padded, Packed};
use super::vmath::exp;

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
    /// (stride `ld`) into `out` (same stride). The mean and the variance
    /// are summed on vectors: as scalar folds they were chains of
    /// dependent adds, a tenth of the Transformer's forward.
    #[inline(always)]
    fn apply<S: Simd>(&self, s: S, x: &[f32], m: usize, ld: usize, out: &mut [f32]) {
        let d = self.w.len();
        for r in 0..m {
            let row = &x[r * ld..r * ld + d];
            let mean = sum_of(s, row, |v| v) / d as f32;
            let var = sum_of(s, row, |v| {
                let dv = s.sub_f32s(v, s.splat_f32s(mean));
                s.mul_f32s(dv, dv)
            }) / d as f32;
            let inv = 1.0 / (var + LN_EPS).sqrt();
            let o = &mut out[r * ld..r * ld + d];
            let (ov, ot) = S::as_mut_simd_f32s(o);
            let (xv, xt) = S::as_simd_f32s(row);
            let (wv, wt) = S::as_simd_f32s(&self.w);
            let (bv, bt) = S::as_simd_f32s(&self.b);
            let (mv, iv) = (s.splat_f32s(mean), s.splat_f32s(inv));
            for (((o, x), w), b) in ov.iter_mut().zip(xv).zip(wv).zip(bv) {
                *o = s.mul_add_e_f32s(s.mul_f32s(s.sub_f32s(*x, mv), iv), *w, *b);
            }
            for (((o, x), w), b) in ot.iter_mut().zip(xt).zip(wt).zip(bt) {
                *o = (x - mean) * inv * w + b;
            }
        }
    }
}

/// `sum_k f(v)[k]` over `xs`, on vectors; `f` maps a vector elementwise.
#[inline(always)]
fn sum_of<S: Simd>(s: S, xs: &[f32], f: impl Fn(S::f32s) -> S::f32s) -> f32 {
    let (head, tail) = S::as_simd_f32s(xs);
    let acc = head
        .iter()
        .fold(s.splat_f32s(0.0), |a, v| s.add_f32s(a, f(*v)));
    let mut rest = [0f32; 64];
    let rest = &mut rest[..S::F32_LANES];
    if !tail.is_empty() {
        s.partial_store_f32s(rest, f(s.partial_load_f32s(tail)));
    }
    s.reduce_sum_f32s(acc) + rest[..tail.len()].iter().sum::<f32>()
}

#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) ln1: Norm,
    /// The queries' projection, and the keys' and values' (PyTorch's
    /// `qkv` split): the last block needs every position's keys and values
    /// but only the last position's query.
    pub(crate) q: Lin,
    pub(crate) kv: Lin,
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
    /// One head's keys transposed, `(dh, tp)`.
    kt: Vec<f32>,
    /// [`QB`] queries' scores, `(QB, tp)`.
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
        // A row of `buf.qkv`: the query, then from `kv0` the key and value.
        let kv0 = padded(d);
        let qp = kv0 + padded(2 * d);
        let fp = padded(self.ff);
        let rows = m * t;
        grow(&mut buf.x, rows * dp);
        grow(&mut buf.y, rows * dp);
        grow(&mut buf.att, rows * dp);
        grow(&mut buf.qkv, rows * qp);
        grow(&mut buf.hid, rows * fp);
        let tp = keys_padded::<S>(t);
        grow(&mut buf.kt, (d / self.heads) * tp);
        grow(&mut buf.scores, QB * tp);
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
            blk.ln1.apply(s, &buf.x, live, dp, &mut buf.y);
            blk.kv.apply(s, &buf.y, dp, live, &mut buf.qkv[kv0..], qp);
            // Every query, or in the last block each window's last only
            // (rows t - 1, 2t - 1, ...).
            let (a, lda, n, o, ldo) = if last_only {
                ((t - 1) * dp, t * dp, m, (t - 1) * qp, t * qp)
            } else {
                (0, dp, live, 0, qp)
            };
            blk.q.apply(s, &buf.y[a..], lda, n, &mut buf.qkv[o..], ldo);
            self.attention(
                s,
                &buf.qkv,
                (qp, kv0),
                m,
                t,
                last_only,
                &mut buf.kt,
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
            blk.ln2.apply(s, &buf.x, live, dp, &mut buf.y);
            blk.ff1.apply(s, &buf.y, dp, live, &mut buf.hid, fp);
            for v in &mut buf.hid[..live * fp] {
                *v = v.max(0.0);
            }
            blk.ff2.apply(s, &buf.hid, fp, live, &mut buf.y, dp);
            add_rows(&mut buf.x, &buf.y, live, dp, d);
        }
        self.ln_f.apply(s, &buf.x, m, dp, &mut buf.y);
        for r in 0..m {
            top[r * d..(r + 1) * d].copy_from_slice(&buf.y[r * dp..r * dp + d]);
        }
    }

    /// Scaled dot-product attention per row and head: every query, or
    /// (`last_only`) each window's last, against all keys of its window.
    /// Output rows: `(r, i)` for every query `i`, or one per window.
    ///
    /// Per (row, head) the keys are transposed once (scaled), so a query's
    /// scores are vector multiply-adds over the keys, not a dot product
    /// and a horizontal sum per key; [`QB`] queries go together, so each
    /// key and value vector loaded serves several independent sums.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn attention<S: Simd>(
        &self,
        s: S,
        qkv: &[f32],
        (qp, kv0): (usize, usize),
        m: usize,
        t: usize,
        last_only: bool,
        kt: &mut [f32],
        scores: &mut [f32],
        out: &mut [f32],
        ldo: usize,
    ) {
        let d = self.width;
        let dh = d / self.heads;
        let tp = keys_padded::<S>(t);
        let scale = 1.0 / (dh as f32).sqrt();
        let first = if last_only { t - 1 } else { 0 };
        for r in 0..m {
            let win = &qkv[r * t * qp..(r + 1) * t * qp];
            for hh in 0..self.heads {
                let keys = Head {
                    win,
                    qp,
                    t,
                    col: kv0 + hh * dh,
                    dh,
                };
                keys.transposed(scale, tp, kt);
                let values = Head {
                    col: kv0 + d + hh * dh,
                    ..keys
                };
                let mut i = first;
                while i < t {
                    let n = (t - i).min(QB);
                    let mut inv = [0f32; QB];
                    for (u, inv) in inv.iter_mut().enumerate().take(n) {
                        let q = &win[(i + u) * qp + hh * dh..][..dh];
                        let row = &mut scores[u * tp..(u + 1) * tp];
                        key_scores(s, q, kt, tp, row);
                        *inv = softmax_numerators(s, row, t);
                    }
                    let o_row = if last_only { r } else { r * t + i };
                    let o = &mut out[o_row * ldo + hh * dh..];
                    values.weighted(s, scores, tp, &inv[..n], o, ldo);
                    i += n;
                }
            }
        }
    }
}

/// Queries of one window and head attended together.
const QB: usize = 4;

/// Key slots per query: the window rounded up to whole vectors.
fn keys_padded<S: Simd>(t: usize) -> usize {
    t.div_ceil(S::F32_LANES) * S::F32_LANES
}

/// One head's keys or values in a window's rows of `qkv`: columns
/// `col..col + dh` of `t` rows of stride `qp`.
#[derive(Clone, Copy)]
struct Head<'a> {
    win: &'a [f32],
    qp: usize,
    t: usize,
    col: usize,
    dh: usize,
}

impl Head<'_> {
    #[inline(always)]
    fn at(&self, j: usize) -> &[f32] {
        &self.win[j * self.qp + self.col..][..self.dh]
    }

    /// `kt[k, j] = scale * key_j[k]`, `dh` rows of `tp` slots, zero past
    /// the window.
    #[inline(always)]
    fn transposed(&self, scale: f32, tp: usize, kt: &mut [f32]) {
        for j in 0..self.t {
            for (k, v) in self.at(j).iter().enumerate() {
                kt[k * tp + j] = v * scale;
            }
        }
        for k in 0..self.dh {
            kt[k * tp + self.t..(k + 1) * tp].fill(0.0);
        }
    }

    /// `out[u] = inv[u] * sum_j p[u, j] value_j` for each query `u` of a
    /// block (`p` its row of `scores`, stride `tp`; `out[u]` at `u * ldo`).
    #[inline(always)]
    fn weighted<S: Simd>(
        &self,
        s: S,
        scores: &[f32],
        tp: usize,
        inv: &[f32],
        out: &mut [f32],
        ldo: usize,
    ) {
        let lanes = S::F32_LANES;
        let vecs = self.dh / lanes;
        for c in 0..vecs {
            let z = s.splat_f32s(0.0);
            let mut acc = [z; QB];
            for j in 0..self.t {
                let v = S::as_simd_f32s(&self.at(j)[c * lanes..][..lanes]).0[0];
                for (u, a) in acc.iter_mut().enumerate().take(inv.len()) {
                    *a = s.mul_add_e_f32s(s.splat_f32s(scores[u * tp + j]), v, *a);
                }
            }
            for (u, a) in acc.iter().enumerate().take(inv.len()) {
                let o = S::as_mut_simd_f32s(&mut out[u * ldo + c * lanes..][..lanes]).0;
                o[0] = s.mul_f32s(*a, s.splat_f32s(inv[u]));
            }
        }
        for col in vecs * lanes..self.dh {
            for (u, inv) in inv.iter().enumerate() {
                let sum: f32 = (0..self.t)
                    .map(|j| scores[u * tp + j] * self.at(j)[col])
                    .sum();
                out[u * ldo + col] = sum * inv;
            }
        }
    }
}

/// `row[j] = q . kt[.., j]` for every key slot: four vectors of keys at a
/// time, each a chain of `dh` multiply-adds, the four independent.
#[inline(always)]
fn key_scores<S: Simd>(s: S, q: &[f32], kt: &[f32], tp: usize, row: &mut [f32]) {
    let lanes = S::F32_LANES;
    let vecs = tp / lanes;
    let mut v = 0;
    while v < vecs {
        let n = (vecs - v).min(4);
        let z = s.splat_f32s(0.0);
        let mut acc = [z; 4];
        for (k, &qk) in q.iter().enumerate() {
            let x = s.splat_f32s(qk);
            let keys = &kt[k * tp + v * lanes..][..n * lanes];
            for (a, kv) in acc.iter_mut().zip(S::as_simd_f32s(keys).0) {
                *a = s.mul_add_e_f32s(x, *kv, *a);
            }
        }
        let dst = S::as_mut_simd_f32s(&mut row[v * lanes..][..n * lanes]).0;
        dst.copy_from_slice(&acc[..n]);
        v += n;
    }
}

/// `row[j] = e^(row[j] - max)` over the window's `t` scores of a row of
/// `tp` slots (whole vectors); returns `1 / sum`, the normaliser the
/// weighted sum of values applies once at its end. The maximum and the sum
/// run on vectors: a scalar fold of either is a chain of dependent
/// operations per key, and was a fifth of the forward.
#[inline(always)]
fn softmax_numerators<S: Simd>(s: S, row: &mut [f32], t: usize) -> f32 {
    // Padding slots take a score of the window, so they cannot raise the
    // maximum, and weigh nothing in the sum.
    let first = row[0];
    row[t..].fill(first);
    let (v, _) = S::as_simd_f32s(row);
    let max = s.reduce_max_f32s(v[1..].iter().fold(v[0], |a, b| s.max_f32s(a, *b)));
    let max = s.splat_f32s(max);
    for sc in S::as_mut_simd_f32s(row).0 {
        *sc = exp(s, s.sub_f32s(*sc, max));
    }
    row[t..].fill(0.0);
    let (v, _) = S::as_simd_f32s(row);
    let sum = v.iter().fold(s.splat_f32s(0.0), |a, b| s.add_f32s(a, *b));
    1.0 / s.reduce_sum_f32s(sum)
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
