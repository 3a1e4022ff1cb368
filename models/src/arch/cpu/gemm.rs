//! Weights packed once at load, and the one small matrix product the CPU
//! path is built on.
//!
//! A weight `W (N, K)` as PyTorch and candle store it (out, in) is packed
//! as `W^T` in panels of [`NR`] output columns, each panel `K x NR`
//! contiguous, `N` padded with zero columns to a multiple of `NR`. The
//! micro-kernels then read each panel front to back, broadcast one input
//! value per step and multiply-add into accumulators that stay in
//! registers: 4 rows x 1 panel when there are rows to share a panel, 1 row
//! x 4 panels when there is only one (batch 1, the latency case), so the
//! fused multiply-adds are independent either way.

use pulp::Simd;

/// Output columns per panel: two AVX2 vectors, four SSE vectors.
pub(crate) const NR: usize = 16;

/// `n` rounded up to whole panels.
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(NR) * NR
}

/// `W^T` in panels (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    /// Inputs (`K`).
    k: usize,
    /// Outputs before padding (`N`).
    n: usize,
    data: Vec<f32>,
}

impl Packed {
    /// Packs a row-major `(n, k)` matrix (out, in).
    pub(crate) fn from_out_in(w: &[f32], n: usize, k: usize) -> Self {
        debug_assert_eq!(w.len(), n * k);
        let mut data = vec![0.0; padded(n) * k];
        for j in 0..n {
            let panel = &mut data[(j / NR) * k * NR..];
            for kk in 0..k {
                panel[kk * NR + j % NR] = w[j * k + kk];
            }
        }
        Packed { k, n, data }
    }

    pub(crate) fn k(&self) -> usize {
        self.k
    }

    /// Output width with padding: the least row stride of an output.
    pub(crate) fn np(&self) -> usize {
        padded(self.n)
    }

    fn panels(&self) -> usize {
        self.np() / NR
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.k * NR..(p + 1) * self.k * NR]
    }
}

/// Sets each of the `m` rows of `out` (stride `ldo`) to `bias` (or zero
/// where `bias` is shorter than the row).
#[inline(always)]
pub(crate) fn fill_rows(out: &mut [f32], m: usize, ldo: usize, width: usize, bias: &[f32]) {
    for r in 0..m {
        let row = &mut out[r * ldo..r * ldo + width];
        row.fill(0.0);
        let n = bias.len().min(width);
        row[..n].copy_from_slice(&bias[..n]);
    }
}

/// `out[r, j] += sum_k a[r, k] * W[k, j]` for `r < m`, `j < w.np()`: `a`
/// row-major with stride `lda` (reads `w.k()` values a row), `out` with
/// stride `ldo >= w.np()`.
#[inline(always)]
pub(crate) fn gemm_acc<S: Simd>(
    s: S,
    a: &[f32],
    lda: usize,
    m: usize,
    w: &Packed,
    out: &mut [f32],
    ldo: usize,
) {
    let panels = w.panels();
    let mut r = 0;
    while r + 4 <= m {
        for p in 0..panels {
            micro::<S, 4, 1>(s, &a[r * lda..], lda, w, p, &mut out[r * ldo..], ldo);
        }
        r += 4;
    }
    while r < m {
        let mut p = 0;
        while p + 4 <= panels {
            micro::<S, 1, 4>(s, &a[r * lda..], lda, w, p, &mut out[r * ldo..], ldo);
            p += 4;
        }
        while p < panels {
            micro::<S, 1, 1>(s, &a[r * lda..], lda, w, p, &mut out[r * ldo..], ldo);
            p += 1;
        }
        r += 1;
    }
}

/// `MR` rows times `NP` panels starting at panel `p0`.
#[inline(always)]
fn micro<S: Simd, const MR: usize, const NP: usize>(
    s: S,
    a: &[f32],
    lda: usize,
    w: &Packed,
    p0: usize,
    out: &mut [f32],
    ldo: usize,
) {
    // Vectors per panel row; at most NR (the scalar fallback).
    let v = NR / S::F32_LANES;
    let k = w.k();
    let zero = s.splat_f32s(0.0);
    let mut acc = [[[zero; NR]; NP]; MR];
    let panels: [&[f32]; NP] = std::array::from_fn(|q| w.panel(p0 + q));
    for kk in 0..k {
        let xs: [S::f32s; MR] = std::array::from_fn(|r| s.splat_f32s(a[r * lda + kk]));
        for q in 0..NP {
            let row = S::as_simd_f32s(&panels[q][kk * NR..kk * NR + NR]).0;
            for (r, x) in xs.iter().enumerate() {
                for (u, wv) in row.iter().enumerate().take(v) {
                    acc[r][q][u] = s.mul_add_e_f32s(*x, *wv, acc[r][q][u]);
                }
            }
        }
    }
    for (r, accs) in acc.iter().enumerate() {
        for (q, acc) in accs.iter().enumerate() {
            let col = (p0 + q) * NR;
            let dst = S::as_mut_simd_f32s(&mut out[r * ldo + col..r * ldo + col + NR]).0;
            for (d, a) in dst.iter_mut().zip(acc.iter()).take(v) {
                *d = s.add_f32s(*d, *a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run<'a> {
        a: &'a [f32],
        m: usize,
        w: &'a Packed,
        out: &'a mut [f32],
    }

    impl pulp::WithSimd for Run<'_> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let k = self.w.k();
            let ldo = self.w.np() + 3;
            gemm_acc(s, self.a, k, self.m, self.w, self.out, ldo);
        }
    }

    #[test]
    fn equals_the_naive_product_for_every_shape_and_kernel() {
        for (m, n, k) in [(1, 5, 3), (1, 70, 9), (4, 16, 1), (7, 33, 20), (9, 64, 64)] {
            let w: Vec<f32> = (0..n * k).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 11 % 17) as f32 - 8.0) / 5.0).collect();
            let p = Packed::from_out_in(&w, n, k);
            let ldo = p.np() + 3;
            let mut out = vec![1.0f32; m * ldo];
            pulp::Arch::new().dispatch(Run {
                a: &a,
                m,
                w: &p,
                out: &mut out,
            });
            for r in 0..m {
                for j in 0..n {
                    let want: f32 = 1.0 + (0..k).map(|kk| a[r * k + kk] * w[j * k + kk]).sum::<f32>();
                    let got = out[r * ldo + j];
                    assert!((got - want).abs() < 1e-4, "m{m} n{n} k{k} r{r} j{j}: {got} vs {want}");
                }
                for j in n..p.np() {
                    assert_eq!(out[r * ldo + j], 1.0, "padding stays untouched");
                }
            }
        }
    }
}
