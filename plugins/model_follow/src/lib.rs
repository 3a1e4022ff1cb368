//! `model_follow`: act on a model's probability that the price goes up.
//!
//! Needs one model output, `prediction`, in `[0, 1]` (the engine supplies
//! it; bars without a prediction are ignored). Goes long when it exceeds
//! `threshold`, short when it falls below `1 - threshold`, flat in between;
//! one signal per change. Strength is `2p - 1`, clamped to `[-1, 1]`.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, RestoreError, Signal, Strategy};

#[derive(Debug)]
pub struct ModelFollow {
    threshold: f64,
    /// -1 short, 0 flat, 1 long.
    side: i8,
}

impl Strategy for ModelFollow {
    fn init(p: &Params<'_>) -> Result<Self, InitError> {
        Ok(ModelFollow {
            threshold: p.float("threshold")?,
            side: 0,
        })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let p = bar.model(0)?;
        if !(0.0..=1.0).contains(&p) {
            return None;
        }
        let strength = (2.0 * p - 1.0).clamp(-1.0, 1.0);
        let side = if p > self.threshold {
            1
        } else if p < 1.0 - self.threshold {
            -1
        } else {
            0
        };
        if side == self.side {
            return None;
        }
        self.side = side;
        Some(match side {
            1 => Signal::buy(strength),
            -1 => Signal::sell(strength),
            _ => Signal::exit(),
        })
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(vec![self.side as u8])
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        match bytes {
            [b] if matches!(*b as i8, -1..=1) => {
                self.side = *b as i8;
                Ok(())
            }
            _ => Err(RestoreError::Incompatible),
        }
    }
}

export_strategy! {
    strategy: ModelFollow,
    name: "model_follow",
    version: "0.1.0",
    description: "Follow a model's up-probability: long above threshold, short below 1 - threshold.",
    params: {
        threshold: float = 0.55 in 0.5..=1.0, "Probability needed to go long";
    },
    indicators: [],
    models: ["prediction"],
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_sdk::testing::{Harness, TestBar};
    use candlewick_sdk::Action;

    #[test]
    fn follows_the_prediction_with_one_signal_per_change() {
        let mut h = Harness::<ModelFollow>::new(&CW_MANIFEST, &[], 1).unwrap();
        let mut at = |t, p| h.bar(&TestBar::close(t, 1.0), &[p]);
        assert_eq!(at(0, f64::NAN), None);
        let buy = at(1, 0.8).unwrap();
        assert_eq!(buy.action, Action::Buy);
        assert!((buy.strength - 0.6).abs() < 1e-12);
        assert_eq!(at(2, 0.9), None);
        assert_eq!(at(3, 0.5).map(|s| s.action), Some(Action::Exit));
        assert_eq!(at(4, 0.1).map(|s| s.action), Some(Action::Sell));
    }
}
