//! Fused recurrent cells for inference on the CPU.
//!
//! After the gate matmul, an LSTM step is nine small elementwise ops in
//! candle (two activations, three narrows, products, sums), each a pass
//! over memory and an allocation. These kernels do the whole cell in one
//! pass. They have no backward: training uses the composed ops
//! ([`super::lstm::composed_cell`], [`super::gru::composed_cell`]), which
//! compute the same function (tests compare them). On a device other than
//! the CPU, or a dtype other than f32, the composed ops run instead.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};

/// Cephes' `expf`: the reduction `x = n ln2 + r` (ln 2 in two parts, for
/// precision) and its degree-6 polynomial; shared by the scalar
/// [`exp_approx`] and the vector `cpu::vmath::exp`, which must agree.
pub(crate) mod cephes {
    /// The domain: `x` is clamped to `[MIN_X, MAX_X]`.
    pub(crate) const MIN_X: f32 = -87.0;
    pub(crate) const MAX_X: f32 = 88.0;
    pub(crate) const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub(crate) const LN2_HI: f32 = 0.693_359_4;
    pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5 * 2^23: adding and subtracting rounds to the nearest integer.
    pub(crate) const ROUND: f32 = 12_582_912.0;
    /// The polynomial's coefficients, highest degree first (Horner).
    pub(crate) const POLY: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
}

/// `e^x` to within about 2 ulp for `x` in `[-87, 88]` (clamped outside):
/// Cephes' `expf` reduction `x = n ln2 + r` and degree-6 polynomial, written
/// without branches or libm calls so the cell loops vectorise. libm's
/// `expf`/`tanhf` are scalar calls and were most of the cell's time.
#[inline(always)]
pub(crate) fn exp_approx(x: f32) -> f32 {
    use cephes::{LN2_HI, LN2_LO, LOG2E, MAX_X, MIN_X, POLY, ROUND};
    let x = x.clamp(MIN_X, MAX_X);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = POLY[1..].iter().fold(POLY[0], |p, &k| p * r + k);
    let e = p * r * r + r + 1.0;
    // 2^n from the integer sitting in `shifted`'s low mantissa bits: an
    // integer subtraction, where `n as i32` (a saturating cast) kept the
    // loops from vectorising well. Same value for every clamped `x`.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    e * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp_approx(2.0 * x) + 1.0)
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("fused cell: input not contiguous".into()))?;
    Ok(&s.as_slice::<f32>()?[start..end])
}

fn fusable(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// LSTM cell: the step's input projection `xw (B, 4H)` and hidden
/// projection `hw (B, 4H)`, both in i,f,o,g order, and `c (B, H)`; returns
/// the new `(h, c)`, each `(B, H)`. The two projections are summed inside.
pub(crate) fn lstm_cell(
    xw: &Tensor,
    hw: &Tensor,
    c: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (_, h) = c.dims2()?;
    if !fusable(&[xw, hw, c]) {
        return super::lstm::composed_cell(&(xw + hw)?, c, h);
    }
    let both = xw
        .contiguous()?
        .apply_op3_no_bwd(&hw.contiguous()?, &c.contiguous()?, &LstmCell)?;
    Ok((both.get(0)?, both.get(1)?))
}

/// GRU cell: `xw (B, 3H)` (input projection with `b_ih`), `hw (B, 3H)`
/// (hidden projection with `b_hh`), both in r,z,n order, and `h (B, H)`;
/// returns the new `h (B, H)`.
pub(crate) fn gru_cell(xw: &Tensor, hw: &Tensor, h: &Tensor) -> candle_core::Result<Tensor> {
    if !fusable(&[xw, hw, h]) {
        return super::gru::composed_cell(xw, hw, h);
    }
    xw.contiguous()?
        .apply_op3_no_bwd(&hw.contiguous()?, &h.contiguous()?, &GruCell)
}

/// A fused cell's three inputs: the input and hidden projections, both
/// `(B, gates * H)`, and the state `(B, H)` whose shape gives `B` and `H`.
struct CellInputs<'a> {
    xw: &'a [f32],
    hw: &'a [f32],
    state: &'a [f32],
    b: usize,
    h: usize,
}

impl<'a> CellInputs<'a> {
    fn checked(
        cell: &str,
        gates: usize,
        x: (&'a CpuStorage, &Layout),
        hw: (&'a CpuStorage, &Layout),
        state: (&'a CpuStorage, &Layout),
    ) -> candle_core::Result<Self> {
        let (b, h) = state.1.shape().dims2()?;
        let inputs = CellInputs {
            xw: slice(x.0, x.1)?,
            hw: slice(hw.0, hw.1)?,
            state: slice(state.0, state.1)?,
            b,
            h,
        };
        if inputs.xw.len() != b * gates * h || inputs.hw.len() != b * gates * h {
            return Err(candle_core::Error::Msg(format!(
                "{cell} cell: projections must be (B, {gates}H)"
            )));
        }
        Ok(inputs)
    }
}

struct LstmCell;

impl CustomOp3 for LstmCell {
    fn name(&self) -> &'static str {
        "candlewick-lstm-cell"
    }

    /// Output `(2, B, H)`: `[0]` is h, `[1]` is c.
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CellInputs {
            xw,
            hw,
            state: c,
            b,
            h,
        } = CellInputs::checked("lstm", 4, (s1, l1), (s2, l2), (s3, l3))?;
        let mut out = vec![0f32; 2 * b * h];
        let (h_out, c_out) = out.split_at_mut(b * h);
        for r in 0..b {
            let x = &xw[r * 4 * h..(r + 1) * 4 * h];
            let y = &hw[r * 4 * h..(r + 1) * 4 * h];
            let c_prev = &c[r * h..(r + 1) * h];
            let hr = &mut h_out[r * h..(r + 1) * h];
            let cr = &mut c_out[r * h..(r + 1) * h];
            for k in 0..h {
                let i = sigmoid(x[k] + y[k]);
                let f = sigmoid(x[h + k] + y[h + k]);
                let o = sigmoid(x[2 * h + k] + y[2 * h + k]);
                let g = tanh(x[3 * h + k] + y[3 * h + k]);
                let cn = f * c_prev[k] + i * g;
                cr[k] = cn;
                hr[k] = o * tanh(cn);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((2, b, h))))
    }
}

struct GruCell;

impl CustomOp3 for GruCell {
    fn name(&self) -> &'static str {
        "candlewick-gru-cell"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CellInputs {
            xw,
            hw,
            state: hp,
            b,
            h,
        } = CellInputs::checked("gru", 3, (s1, l1), (s2, l2), (s3, l3))?;
        let mut out = vec![0f32; b * h];
        for r in 0..b {
            let x = &xw[r * 3 * h..(r + 1) * 3 * h];
            let y = &hw[r * 3 * h..(r + 1) * 3 * h];
            let prev = &hp[r * h..(r + 1) * h];
            let o = &mut out[r * h..(r + 1) * h];
            for k in 0..h {
                let rg = sigmoid(x[k] + y[k]);
                let z = sigmoid(x[h + k] + y[h + k]);
                let n = tanh(x[2 * h + k] + rg * y[2 * h + k]);
                o[k] = n + z * (prev[k] - n);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, h))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_libm() {
        let mut worst = (0f32, 0f32, 0f32);
        for i in -40_000..=40_000 {
            let x = i as f32 / 1000.0;
            let e = (exp_approx(x) - x.exp()).abs() / x.exp();
            let s = (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs();
            let t = (tanh(x) - x.tanh()).abs();
            worst = (worst.0.max(e), worst.1.max(s), worst.2.max(t));
        }
        assert!(worst.0 < 1e-6, "exp rel err {}", worst.0);
        assert!(worst.1 < 1e-6, "sigmoid abs err {}", worst.1);
        assert!(worst.2 < 1e-6, "tanh abs err {}", worst.2);
        assert_eq!(sigmoid(1e4), 1.0);
        assert!(sigmoid(-1e4) < 1e-30);
        assert_eq!(tanh(1e4), 1.0);
        assert_eq!(tanh(-1e4), -1.0);
    }
}
