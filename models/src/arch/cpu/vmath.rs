//! `exp`, the logistic sigmoid and `tanh` on whole SIMD vectors, for the
//! recurrent cells and the softmax.
//!
//! The same Cephes reduction and polynomial as the scalar
//! [`exp_approx`](crate::arch::cell::exp_approx) (about 2 ulp), written
//! with the vector type's own operations: the scalar functions relied on
//! the compiler to vectorise a loop over slices, which it did with 256-bit
//! registers, NaN-preserving clamps and a division per call, a third of
//! an LSTM's forward. Every function is elementwise with the same
//! operations on every instruction set, so a value does not depend on the
//! vector width or on where a slice's tail falls.

use pulp::Simd;

use crate::arch::cell::cephes::{LN2_HI, LN2_LO, LOG2E, MAX_X, MIN_X, POLY, ROUND};

/// `e^x`, `x` clamped to `[-87, 88]`.
#[inline(always)]
pub(crate) fn exp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let c = |v: f32| s.splat_f32s(v);
    let x = s.min_f32s(s.max_f32s(x, c(MIN_X)), c(MAX_X));
    let shifted = s.mul_add_e_f32s(x, c(LOG2E), c(ROUND));
    let n = s.sub_f32s(shifted, c(ROUND));
    let r = s.mul_add_e_f32s(n, c(-LN2_HI), x);
    let r = s.mul_add_e_f32s(n, c(-LN2_LO), r);
    // A loop, not `fold`: a closure taking vectors is not always inlined
    // into this target-feature context, and vectors passed across that
    // boundary lost lanes (`agrees_with_the_scalar_functions...` caught it).
    let mut p = c(POLY[0]);
    for k in &POLY[1..] {
        p = s.mul_add_e_f32s(p, r, c(*k));
    }
    let e = s.mul_add_e_f32s(s.mul_f32s(p, r), r, s.add_f32s(r, c(1.0)));
    // 2^n from the integer in `shifted`'s low mantissa bits.
    let n_bits = s.sub_u32s(
        s.transmute_u32s_f32s(shifted),
        s.splat_u32s(ROUND.to_bits()),
    );
    let pow = s.wrapping_dyn_shl_u32s(s.add_u32s(n_bits, s.splat_u32s(127)), s.splat_u32s(23));
    s.mul_f32s(e, s.transmute_f32s_u32s(pow))
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let one = s.splat_f32s(1.0);
    s.div_f32s(one, s.add_f32s(one, exp(s, s.neg_f32s(x))))
}

/// `1 - 2 / (e^2x + 1)`.
#[inline(always)]
pub(crate) fn tanh<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let one = s.splat_f32s(1.0);
    let e = exp(s, s.add_f32s(x, x));
    s.sub_f32s(one, s.div_f32s(s.splat_f32s(2.0), s.add_f32s(e, one)))
}

/// Calls `f(k, width)` for each vector of a slice of `n` values: whole
/// vectors, then the tail (`width < S::F32_LANES`), which `load` and
/// `store` handle as partial vectors.
#[inline(always)]
pub(crate) fn for_each_vector<S: Simd>(n: usize, mut f: impl FnMut(usize, usize)) {
    let lanes = S::F32_LANES;
    let mut k = 0;
    while k < n {
        let w = (n - k).min(lanes);
        f(k, w);
        k += w;
    }
}

/// The `w` values of `v` from `k` as a vector (zero beyond them).
#[inline(always)]
pub(crate) fn load<S: Simd>(s: S, v: &[f32], k: usize, w: usize) -> S::f32s {
    if w == S::F32_LANES {
        S::as_simd_f32s(&v[k..k + w]).0[0]
    } else {
        s.partial_load_f32s(&v[k..k + w])
    }
}

/// Stores the first `w` lanes of `x` into `v` from `k`.
#[inline(always)]
pub(crate) fn store<S: Simd>(s: S, v: &mut [f32], k: usize, w: usize, x: S::f32s) {
    if w == S::F32_LANES {
        S::as_mut_simd_f32s(&mut v[k..k + w]).0[0] = x;
    } else {
        s.partial_store_f32s(&mut v[k..k + w], x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::cell;
    use pulp::WithSimd;

    struct Check;

    impl pulp::WithSimd for Check {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.05).collect();
            let mut got = vec![0f32; xs.len()];
            for (name, f, want) in [
                (
                    "exp",
                    exp::<S> as fn(S, S::f32s) -> S::f32s,
                    cell::exp_approx as fn(f32) -> f32,
                ),
                ("sigmoid", sigmoid::<S>, cell::sigmoid),
                ("tanh", tanh::<S>, cell::tanh),
            ] {
                for_each_vector::<S>(xs.len(), |k, w| {
                    store(s, &mut got, k, w, f(s, load(s, &xs, k, w)));
                });
                for (x, g) in xs.iter().zip(&got) {
                    let w = want(*x);
                    // Relative above 1, absolute below (tanh's cancellation
                    // near 0 magnifies an ulp of its exp).
                    let tol = 8.0 * f32::EPSILON * w.abs().max(1.0);
                    assert!((g - w).abs() <= tol, "{name}({x}): {g} against {w}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_the_scalar_functions_on_every_instruction_set() {
        Check.with_simd(pulp::Scalar::new());
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                Simd::vectorize(v3, Check);
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                Simd::vectorize(v4, Check);
            }
        }
    }
}
