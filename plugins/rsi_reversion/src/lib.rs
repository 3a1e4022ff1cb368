//! `rsi_reversion`: buy when RSI climbs back above the oversold line, sell
//! when it falls back below the overbought line.
//!
//! Needs `rsi(period)`. A signal fires on the bar where RSI crosses back
//! into the middle band, not while it stays extreme ("wait for the turn").
//! Strength grows with how deep the extreme went, capped at 1. The state
//! (previous RSI and the extreme seen since) is snapshotted.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec::Vec;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, RestoreError, Signal, Strategy};

#[derive(Debug)]
pub struct RsiReversion {
    lower: f64,
    upper: f64,
    prev: Option<f64>,
    /// Most extreme RSI since it left the middle band (0..100), or NaN.
    extreme: f64,
}

impl Strategy for RsiReversion {
    fn init(p: &Params<'_>) -> Result<Self, InitError> {
        let (lower, upper) = (p.float("lower")?, p.float("upper")?);
        if lower >= upper {
            return Err(InitError::new("lower must be below upper"));
        }
        Ok(RsiReversion {
            lower,
            upper,
            prev: None,
            extreme: f64::NAN,
        })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let rsi = bar.indicator(0)?;
        let prev = self.prev.replace(rsi);
        // The extreme is that of the excursion before this bar; `max(0.0)`
        // also turns a NaN (no excursion seen, e.g. a foreign snapshot)
        // into no extra strength rather than an invalid signal.
        let signal = match prev {
            Some(p) if p < self.lower && rsi >= self.lower => {
                let depth = ((self.lower - self.extreme) / self.lower.max(1.0)).max(0.0);
                self.extreme = f64::NAN;
                Some(Signal::buy((0.5 + depth).clamp(0.0, 1.0)))
            }
            Some(p) if p > self.upper && rsi <= self.upper => {
                let depth = ((self.extreme - self.upper) / (100.0 - self.upper).max(1.0)).max(0.0);
                self.extreme = f64::NAN;
                Some(Signal::sell((0.5 + depth).clamp(0.0, 1.0)))
            }
            _ => None,
        };
        // Then this bar joins the current excursion, after the signal: a
        // jump from one extreme straight to the other starts a new one
        // (`plugin check` found the old order gave a NaN strength then).
        if rsi < self.lower {
            self.extreme = if self.extreme.is_nan() {
                rsi
            } else {
                self.extreme.min(rsi)
            };
        } else if rsi > self.upper {
            self.extreme = if self.extreme.is_nan() {
                rsi
            } else {
                self.extreme.max(rsi)
            };
        }
        signal
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.prev.unwrap_or(f64::NAN).to_le_bytes());
        out.extend_from_slice(&self.extreme.to_le_bytes());
        Some(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        let (a, b) = match bytes {
            [a @ .., _, _, _, _, _, _, _, _] if a.len() == 8 => (a, &bytes[8..]),
            _ => return Err(RestoreError::Incompatible),
        };
        let f = |s: &[u8]| {
            s.try_into()
                .map(f64::from_le_bytes)
                .map_err(|_| RestoreError::Incompatible)
        };
        let prev = f(a)?;
        self.prev = (!prev.is_nan()).then_some(prev);
        self.extreme = f(b)?;
        Ok(())
    }
}

export_strategy! {
    strategy: RsiReversion,
    name: "rsi_reversion",
    version: "0.1.0",
    description: "Buy when RSI leaves oversold, sell when it leaves overbought.",
    params: {
        period: int = 14 in 2..=500, "RSI period (bars)";
        lower: float = 30.0 in 0.0..=100.0, "Oversold line";
        upper: float = 70.0 in 0.0..=100.0, "Overbought line";
    },
    indicators: ["rsi({period})"],
    models: [],
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_sdk::testing::{Harness, TestBar};
    use candlewick_sdk::Action;

    #[test]
    fn buys_on_the_turn_up_from_oversold_and_sells_on_the_turn_down() {
        let mut h = Harness::<RsiReversion>::new(&CW_MANIFEST, &[], 1).unwrap();
        let mut at = |t, rsi| h.bar(&TestBar::close(t, 1.0), &[rsi]).map(|s| s.action);
        assert_eq!(at(0, f64::NAN), None);
        assert_eq!(at(1, 25.0), None);
        assert_eq!(at(2, 20.0), None, "still falling: wait for the turn");
        assert_eq!(at(3, 35.0), Some(Action::Buy));
        assert_eq!(at(4, 75.0), None);
        assert_eq!(at(5, 65.0), Some(Action::Sell));
    }

    #[test]
    fn a_jump_from_one_extreme_to_the_other_gives_valid_strengths() {
        let mut h = Harness::<RsiReversion>::new(&CW_MANIFEST, &[], 1).unwrap();
        let mut at = |t, rsi| h.bar(&TestBar::close(t, 1.0), &[rsi]);
        assert_eq!(at(0, 10.0), None);
        let buy = at(1, 90.0).expect("left oversold");
        assert_eq!((buy.action, buy.strength), (Action::Buy, 1.0));
        let sell = at(2, 50.0).expect("left overbought");
        assert_eq!(sell.action, Action::Sell);
        assert!(sell.strength.is_finite() && sell.strength > 0.5, "{sell:?}");
    }

    #[test]
    fn snapshot_round_trips() {
        let mut h = Harness::<RsiReversion>::new(&CW_MANIFEST, &[], 1).unwrap();
        h.bar(&TestBar::close(0, 1.0), &[20.0]);
        let snap = h.snapshot().unwrap();
        let mut g = Harness::<RsiReversion>::new(&CW_MANIFEST, &[], 1).unwrap();
        g.restore(&snap).unwrap();
        assert_eq!(
            g.bar(&TestBar::close(1, 1.0), &[40.0]).map(|s| s.action),
            Some(Action::Buy)
        );
        assert_eq!(g.restore(&[1, 2]), Err(RestoreError::Incompatible));
    }
}
