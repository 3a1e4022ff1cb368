//! Where signals come from: the [`SignalSource`] trait, and [`CrossSource`],
//! a native strategy that is the `sma_cross` plugin's twin.
//!
//! A source sees bars in batches, each bar with the indicator values it
//! declared (computed by the engine, NaN while warming up), and says which
//! bars it signals on. It never sees the broker: in ABI v1 a strategy's
//! signals depend on the market only, so a whole batch can be decided
//! before the broker fills any of it, and the result is the same as one
//! bar at a time. This is what the wasm plugin host implements; the
//! backtest engine needs nothing more.

use candlewick_market::Candle;

use crate::signal::Signal;

/// A strategy failed; the message says how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StrategyError(pub String);

/// A strategy as the backtest engine drives it.
pub trait SignalSource {
    /// The indicators this source needs, as an indicator spec
    /// (`"sma(10) sma(20)"`); its columns are the values each bar carries,
    /// in order. Empty for none.
    fn indicator_spec(&self) -> String;

    /// Decides on `bars` (consecutive, oldest first, each closed).
    /// `values` holds `bars.len()` rows of the spec's columns, row-major.
    /// Pushes `(index into bars, signal)`, indices strictly increasing.
    ///
    /// # Errors
    /// The strategy failed (a trap, an invalid output); the run stops.
    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError>;
}

impl<S: SignalSource + ?Sized> SignalSource for Box<S> {
    fn indicator_spec(&self) -> String {
        (**self).indicator_spec()
    }

    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        (**self).on_batch(bars, values, out)
    }
}

/// Which side the fast line is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Below,
    Above,
}

/// Buys when `sma(fast)` crosses above `sma(slow)`, sells on the cross
/// below: the logic of `plugins/sma_cross`, natively, for tests, benches
/// and comparisons with the plugin.
///
/// Silent until both averages have a value and one side has been seen; a
/// tie keeps the previous side, so a touch is not a cross.
#[derive(Debug, Clone)]
pub struct CrossSource {
    fast: u32,
    slow: u32,
    side: Option<Side>,
}

impl CrossSource {
    /// # Errors
    /// `fast` is not shorter than `slow`, or either is zero.
    pub fn new(fast: u32, slow: u32) -> Result<Self, StrategyError> {
        if fast == 0 || fast >= slow {
            return Err(StrategyError(format!(
                "fast ({fast}) must be at least 1 and shorter than slow ({slow})"
            )));
        }
        Ok(CrossSource {
            fast,
            slow,
            side: None,
        })
    }

    fn decide(&mut self, fast: f64, slow: f64) -> Option<Signal> {
        if fast.is_nan() || slow.is_nan() {
            return None;
        }
        let side = if fast > slow {
            Side::Above
        } else if fast < slow {
            Side::Below
        } else {
            return None;
        };
        match self.side.replace(side) {
            Some(Side::Below) if side == Side::Above => Some(Signal::buy()),
            Some(Side::Above) if side == Side::Below => Some(Signal::sell()),
            _ => None,
        }
    }
}

impl SignalSource for CrossSource {
    fn indicator_spec(&self) -> String {
        format!("sma({}) sma({})", self.fast, self.slow)
    }

    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        for (i, row) in values.chunks_exact(2).take(bars.len()).enumerate() {
            if let Some(s) = self.decide(row[0], row[1]) {
                out.push((i, s));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_each_cross_once_ignoring_warm_up_and_ties() {
        let mut s = CrossSource::new(1, 2).unwrap();
        let seq = [
            (f64::NAN, f64::NAN),
            (1.0, 2.0),
            (2.0, 2.0),
            (3.0, 2.0),
            (4.0, 2.0),
            (1.0, 2.0),
        ];
        let got: Vec<_> = seq
            .iter()
            .map(|&(f, s2)| s.decide(f, s2).map(|x| x.action))
            .collect();
        use candlewick_sdk::abi::Action::{Buy, Sell};
        assert_eq!(got, [None, None, None, Some(Buy), None, Some(Sell)]);
    }

    #[test]
    fn refuses_fast_not_shorter_than_slow() {
        assert!(CrossSource::new(20, 10).is_err());
        assert!(CrossSource::new(0, 10).is_err());
    }
}
