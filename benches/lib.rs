//! Fixtures shared by the benchmarks.
//!
//! [`synthetic_bars`] is the generator `benches/talib_batch.py` also
//! implements, bit for bit, so Candlewick and TA-Lib are timed on the same
//! series.

use std::path::PathBuf;

use candlewick_market::Candle;

/// The allocator the `candlewick` binary runs with, so the benchmarks time
/// what the commands do (the system allocator returns large buffers to the
/// kernel after each run and pays page faults for them on the next).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An example plugin built by `scripts/build-plugins` (or into
/// `$WASM_TARGET_DIR`); panics with what to run when it is missing.
pub fn wasm_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm")));
    let path = dir.join(format!("wasm32-unknown-unknown/release/{name}.wasm"));
    assert!(
        path.is_file(),
        "{} missing: run scripts/build-plugins first",
        path.display()
    );
    path
}

/// splitmix64, the generator both sides use.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// `n` one-minute bars of a random walk from 100.0 (seed 0x5EED).
pub fn synthetic_bars(n: usize) -> Vec<Candle> {
    synthetic_iter(n).collect()
}

/// [`synthetic_bars`] as a stream, for runs too long to hold in memory.
pub fn synthetic_iter(n: usize) -> impl Iterator<Item = Candle> {
    let mut rng = SplitMix64(0x5EED);
    let mut prev_close = 100.0;
    (0..n).map(move |i| {
        let (u1, u2, u3, u4) = (rng.unit(), rng.unit(), rng.unit(), rng.unit());
        let open = prev_close;
        let close = prev_close * (1.0 + (u1 - 0.5) * 0.002);
        prev_close = close;
        Candle {
            open_time: 1_600_000_000_000 + i as i64 * 60_000,
            open,
            high: open.max(close) * (1.0 + u2 * 0.001),
            low: open.min(close) * (1.0 - u3 * 0.001),
            close,
            volume: 100.0 + u4 * 1000.0,
        }
    })
}

/// The 10-indicator set the foundation issue benchmarks against TA-Lib.
pub const SET_10: &str =
    "sma(20) ema(20) rsi(14) macd(12,26,9) bbands(20,2) atr(14) stoch(14,3,3) obv adx(14) cci(20)";

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by `benches/talib_batch.py`: the two generators agree.
    #[test]
    fn matches_the_python_generator() {
        let bars = synthetic_bars(1_000_000);
        let first = bars[0];
        assert_eq!(first.open, 100.0);
        assert_eq!(first.high, 100.03328011087393);
        assert_eq!(first.low, 99.87133519600152);
        assert_eq!(first.close, 99.90776974693944);
        assert_eq!(first.volume, 540.7136096825834);
        assert_eq!(bars[999_999].close, 222.04138824780745);
    }
}
