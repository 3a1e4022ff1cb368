//! Weights packed once at load, and the one small matrix product the CPU
//! path is built on.
//!
//! A weight `W (N, K)` as PyTorch and candle store it (out, in) is packed
//! as `W^T` in panels of [`NR`] output columns, each panel `K x NR`
//! contiguous, `N` padded with zero columns to a multiple of `NR`. The
//! micro-kernels then read each panel front to back, broadcast one input
//! value per step and multiply-add into accumulators that stay in
//! registers: 6 (or 2) rows x 1 panel when there are rows to share a panel,
//! 1 row x 4 panels when there is only one (batch 1, the latency case), so the
//! fused multiply-adds are independent either way. With AVX-512 a panel row
//! is one vector, and the kernels take 6 rows x 2 panels, 2 x 4 or 1 x 8.
//! Each kernel adds the layer's bias as it stores its sums, so an output
//! is written once, never filled first.

use pulp::Simd;

/// Output columns per panel: one AVX-512 vector, two AVX2 vectors, four
/// SSE vectors.
pub(crate) const NR: usize = 16;

/// `n` rounded up to whole panels.
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(NR) * NR
}

/// `W^T` in panels (see the module docs), and the layer's bias.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    /// Inputs (`K`).
    k: usize,
    /// Outputs before padding (`N`).
    n: usize,
    data: Vec<f32>,
    /// `N` bias values, zero where the layer has none, padded like the
    /// panels: [`gemm_bias`] starts each output row from it.
    bias: Vec<f32>,
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
        let bias = vec![0.0; padded(n)];
        Packed { k, n, data, bias }
    }

    /// The same, with `bias` (at most `n` values; zero beyond them).
    pub(crate) fn with_bias(mut self, bias: &[f32]) -> Self {
        let n = bias.len().min(self.n);
        self.bias[..n].copy_from_slice(&bias[..n]);
        self
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

/// `out[r, j] = bias[j] + sum_k a[r, k] * W[k, j]` for `r < m`,
/// `j < w.np()` (`bias` is `w`'s, zero in the padding): `a` row-major with
/// stride `lda` (reads `w.k()` values a row), `out` with stride
/// `ldo >= w.np()`. A layer's output, whatever `out` held: one pass over
/// it, where filling it with the bias first was a second (a tenth of an
/// LSTM's forward at batch 256). Every kernel sums a row's products from
/// zero and adds the bias last, so a row rounds the same whichever kernel
/// ran it.
///
/// It runs as its own function under the CPU's instruction set
/// (`Simd::vectorize`), so every layer's product runs the same compiled
/// kernels whatever surrounds its call: inlined at several sites of one
/// forward, the 6 x 2 kernel's loop lost registers and the Transformer ran
/// 30% slower.
#[inline(always)]
pub(crate) fn gemm_bias<S: Simd>(
    s: S,
    a: &[f32],
    lda: usize,
    m: usize,
    w: &Packed,
    out: &mut [f32],
    ldo: usize,
) {
    s.vectorize(Product {
        a,
        lda,
        m,
        w,
        out,
        ldo,
    });
}

/// The arguments of [`gemm_bias`].
struct Product<'a> {
    a: &'a [f32],
    lda: usize,
    m: usize,
    w: &'a Packed,
    out: &'a mut [f32],
    ldo: usize,
}

impl pulp::WithSimd for Product<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Product {
            a,
            lda,
            m,
            w,
            out,
            ldo,
        } = self;
        let panels = w.panels();
        let k = w.k();
        let bias = &w.bias[..];
        let mut r = 0;
        if S::F32_LANES == NR {
            // AVX-512: a panel row is one vector; 8 to 12 accumulators (12
            // rows x 2 panels, or 4 x 4, measured no faster).
            while r + 6 <= m {
                let rows: [&[f32]; 6] = std::array::from_fn(|i| &a[(r + i) * lda..][..k]);
                rows_by_panels::<S, 6, 2>(s, rows, w, &mut out[r * ldo..], ldo, bias);
                r += 6;
            }
            while r + 2 <= m {
                let rows: [&[f32]; 2] = [&a[r * lda..][..k], &a[(r + 1) * lda..][..k]];
                rows_by_panels::<S, 2, 4>(s, rows, w, &mut out[r * ldo..], ldo, bias);
                r += 2;
            }
            if r < m {
                rows_by_panels::<S, 1, 8>(
                    s,
                    [&a[r * lda..][..k]],
                    w,
                    &mut out[r * ldo..],
                    ldo,
                    bias,
                );
                r += 1;
            }
        }
        if S::F32_LANES == 8 {
            // AVX2: a panel row is two vectors; 8 accumulators in registers.
            while r + 6 <= m {
                let rows: [&[f32]; 6] = std::array::from_fn(|i| &a[(r + i) * lda..][..k]);
                for p in 0..panels {
                    rows_x8::<S, 6>(s, rows, w.panel(p), &mut out[r * ldo..], ldo, p * NR, bias);
                }
                r += 6;
            }
            while r + 2 <= m {
                let rows: [&[f32]; 2] = [&a[r * lda..][..k], &a[(r + 1) * lda..][..k]];
                for p in 0..panels {
                    rows_x8::<S, 2>(s, rows, w.panel(p), &mut out[r * ldo..], ldo, p * NR, bias);
                }
                r += 2;
            }
            while r < m {
                let row = &a[r * lda..][..k];
                let mut p = 0;
                while p + 4 <= panels {
                    let ps = [w.panel(p), w.panel(p + 1), w.panel(p + 2), w.panel(p + 3)];
                    panels4x8(s, row, ps, &mut out[r * ldo..], p * NR, bias);
                    p += 4;
                }
                while p < panels {
                    generic(s, row, w.panel(p), &mut out[r * ldo..], p * NR, bias);
                    p += 1;
                }
                r += 1;
            }
        }
        while r < m {
            for p in 0..panels {
                generic(
                    s,
                    &a[r * lda..][..k],
                    w.panel(p),
                    &mut out[r * ldo..],
                    p * NR,
                    bias,
                );
            }
            r += 1;
        }
    }
}

/// `out[col..col + NR] = bias + row x panel` for any vector width (SSE,
/// scalar, the leftover panels). Like the kernels above it sums the
/// products from zero and adds the bias last, so a row rounds the same
/// whichever kernel ran it.
#[inline(always)]
fn generic<S: Simd>(s: S, row: &[f32], panel: &[f32], out: &mut [f32], col: usize, bias: &[f32]) {
    let mut acc = [0f32; NR];
    let (av, tail) = S::as_mut_simd_f32s(&mut acc);
    debug_assert!(tail.is_empty());
    for (x, wk) in row.iter().zip(panel.chunks_exact(NR)) {
        let xv = s.splat_f32s(*x);
        for (d, wv) in av.iter_mut().zip(S::as_simd_f32s(wk).0) {
            *d = s.mul_add_e_f32s(xv, *wv, *d);
        }
    }
    for ((o, b), a) in out[col..][..NR].iter_mut().zip(&bias[col..][..NR]).zip(acc) {
        *o = b + a;
    }
}

/// `MR` rows times one panel, two vectors a panel row (AVX2): `2 MR`
/// accumulators in registers.
#[inline(always)]
fn rows_x8<S: Simd, const MR: usize>(
    s: S,
    rows: [&[f32]; MR],
    panel: &[f32],
    out: &mut [f32],
    ldo: usize,
    col: usize,
    bias: &[f32],
) {
    let z = s.splat_f32s(0.0);
    let mut c = [[z; 2]; MR];
    for (kk, wk) in panel.chunks_exact(NR).enumerate() {
        let w = S::as_simd_f32s(wk).0;
        let (w0, w1) = (w[0], w[1]);
        for (acc, row) in c.iter_mut().zip(rows) {
            let xv = s.splat_f32s(row[kk]);
            acc[0] = s.mul_add_e_f32s(xv, w0, acc[0]);
            acc[1] = s.mul_add_e_f32s(xv, w1, acc[1]);
        }
    }
    for (r, acc) in c.iter().enumerate() {
        let row = &mut out[r * ldo..];
        let b = S::as_simd_f32s(&bias[col..][..NR]).0;
        let (b0, b1) = (b[0], b[1]);
        let d = S::as_mut_simd_f32s(&mut row[col..][..NR]).0;
        d[0] = s.add_f32s(b0, acc[0]);
        d[1] = s.add_f32s(b1, acc[1]);
    }
}

/// One row times four panels, two vectors a panel row (AVX2).
#[inline(always)]
fn panels4x8<S: Simd>(
    s: S,
    row: &[f32],
    panels: [&[f32]; 4],
    out: &mut [f32],
    col: usize,
    bias: &[f32],
) {
    let z = s.splat_f32s(0.0);
    let mut c = [[z; 2]; 4];
    let [p0, p1, p2, p3] = panels;
    let ws = p0
        .chunks_exact(NR)
        .zip(p1.chunks_exact(NR))
        .zip(p2.chunks_exact(NR))
        .zip(p3.chunks_exact(NR));
    for (x, (((w0, w1), w2), w3)) in row.iter().zip(ws) {
        let xv = s.splat_f32s(*x);
        for (acc, wk) in c.iter_mut().zip([w0, w1, w2, w3]) {
            let w = S::as_simd_f32s(wk).0;
            acc[0] = s.mul_add_e_f32s(xv, w[0], acc[0]);
            acc[1] = s.mul_add_e_f32s(xv, w[1], acc[1]);
        }
    }
    for (q, acc) in c.iter().enumerate() {
        let at = col + q * NR;
        let b = S::as_simd_f32s(&bias[at..][..NR]).0;
        let (b0, b1) = (b[0], b[1]);
        let d = S::as_mut_simd_f32s(&mut out[at..][..NR]).0;
        d[0] = s.add_f32s(b0, acc[0]);
        d[1] = s.add_f32s(b1, acc[1]);
    }
}

/// `MR` rows times every panel of `w`, `PP` panels at a time (then one at
/// a time), when a panel row is one vector (AVX-512).
#[inline(always)]
fn rows_by_panels<S: Simd, const MR: usize, const PP: usize>(
    s: S,
    rows: [&[f32]; MR],
    w: &Packed,
    out: &mut [f32],
    ldo: usize,
    bias: &[f32],
) {
    let panels = w.panels();
    let mut p = 0;
    while p + PP <= panels {
        let ps: [&[f32]; PP] = std::array::from_fn(|q| w.panel(p + q));
        rows_x16::<S, MR, PP>(s, rows, ps, out, ldo, p * NR, bias);
        p += PP;
    }
    while p < panels {
        rows_x16::<S, MR, 1>(s, rows, [w.panel(p)], out, ldo, p * NR, bias);
        p += 1;
    }
}

/// `MR` rows times `PP` panels, one vector a panel row (AVX-512): `MR PP`
/// accumulators in registers, each summed from zero as in the kernels
/// above.
#[inline(always)]
fn rows_x16<S: Simd, const MR: usize, const PP: usize>(
    s: S,
    rows: [&[f32]; MR],
    panels: [&[f32]; PP],
    out: &mut [f32],
    ldo: usize,
    col: usize,
    bias: &[f32],
) {
    let z = s.splat_f32s(0.0);
    let mut c = [[z; PP]; MR];
    let k = rows[0].len();
    let panels: [&[f32]; PP] = panels.map(|p| &p[..k * NR]);
    for kk in 0..k {
        let w: [S::f32s; PP] =
            std::array::from_fn(|q| S::as_simd_f32s(&panels[q][kk * NR..][..NR]).0[0]);
        for (acc, row) in c.iter_mut().zip(rows) {
            let xv = s.splat_f32s(row[kk]);
            for (a, wq) in acc.iter_mut().zip(w) {
                *a = s.mul_add_e_f32s(xv, wq, *a);
            }
        }
    }
    for (r, acc) in c.iter().enumerate() {
        let row = &mut out[r * ldo..];
        for (q, a) in acc.iter().enumerate() {
            let at = col + q * NR;
            let b = S::as_simd_f32s(&bias[at..][..NR]).0[0];
            let d = S::as_mut_simd_f32s(&mut row[at..][..NR]).0;
            d[0] = s.add_f32s(b, *a);
        }
    }
}

/// Grows a working buffer to at least `n` values (never shrinks it, so a
/// forward allocates only when it meets a larger chunk than before).
pub(crate) fn grow(v: &mut Vec<f32>, n: usize) {
    if v.len() < n {
        v.resize(n, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulp::WithSimd;

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
            gemm_bias(s, self.a, k, self.m, self.w, self.out, ldo);
        }
    }

    #[test]
    fn equals_the_naive_product_for_every_shape_and_kernel() {
        for (m, n, k) in [(1, 5, 3), (1, 70, 9), (4, 16, 1), (7, 33, 20), (9, 64, 64)] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                .collect();
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 11 % 17) as f32 - 8.0) / 5.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 8.0 - 1.0).collect();
            let p = Packed::from_out_in(&w, n, k).with_bias(&bias);
            let ldo = p.np() + 3;
            // Every instruction set this CPU has: each has its kernels.
            for isa in 0..3 {
                let mut out = vec![f32::NAN; m * ldo];
                let run = Run {
                    a: &a,
                    m,
                    w: &p,
                    out: &mut out,
                };
                let ran = match isa {
                    #[cfg(target_arch = "x86_64")]
                    0 => pulp::x86::V4::try_new().map(|simd| Simd::vectorize(simd, run)),
                    #[cfg(target_arch = "x86_64")]
                    1 => pulp::x86::V3::try_new().map(|simd| Simd::vectorize(simd, run)),
                    _ => {
                        run.with_simd(pulp::Scalar::new());
                        Some(())
                    }
                };
                if ran.is_none() {
                    continue;
                }
                check(&a, &w, &bias, &out, (m, n, k), ldo, p.np());
            }
        }
    }

    /// `out` against the bias plus the naive product: every value written
    /// (it held NaN before), the padding zero.
    fn check(
        a: &[f32],
        w: &[f32],
        bias: &[f32],
        out: &[f32],
        (m, n, k): (usize, usize, usize),
        ldo: usize,
        np: usize,
    ) {
        for r in 0..m {
            for j in 0..n {
                let want: f32 =
                    bias[j] + (0..k).map(|kk| a[r * k + kk] * w[j * k + kk]).sum::<f32>();
                let got = out[r * ldo + j];
                assert!(
                    (got - want).abs() < 1e-4,
                    "m{m} n{n} k{k} r{r} j{j}: {got} vs {want}"
                );
            }
            for j in n..np {
                assert_eq!(out[r * ldo + j], 0.0, "padding is zero");
            }
            for j in np..ldo {
                assert!(out[r * ldo + j].is_nan(), "beyond the padding is untouched");
            }
        }
    }
}
