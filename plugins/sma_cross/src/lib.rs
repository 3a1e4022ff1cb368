//! `sma_cross`: buy when the fast SMA crosses above the slow one, sell when
//! it crosses below.
//!
//! Needs `sma(fast)` and `sma(slow)`; says nothing until both are warm and
//! one cross has been seen (the first bar only establishes which side the
//! fast average is on). A tie keeps the previous side, so a touch is not a
//! cross. The state is that side; it is snapshotted, so a restart does not
//! miss or repeat a cross.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, RestoreError, Signal, Strategy};

/// Which side the fast SMA is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Below,
    Above,
}

#[derive(Debug)]
pub struct SmaCross {
    side: Option<Side>,
}

impl Strategy for SmaCross {
    fn init(params: &Params<'_>) -> Result<Self, InitError> {
        if params.int("fast")? >= params.int("slow")? {
            return Err(InitError::new("fast must be shorter than slow"));
        }
        Ok(SmaCross { side: None })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let fast = bar.indicator(0)?;
        let slow = bar.indicator(1)?;
        let side = if fast > slow {
            Side::Above
        } else if fast < slow {
            Side::Below
        } else {
            return None;
        };
        match self.side.replace(side) {
            Some(Side::Below) if side == Side::Above => Some(Signal::buy(1.0)),
            Some(Side::Above) if side == Side::Below => Some(Signal::sell(1.0)),
            _ => None,
        }
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(vec![match self.side {
            None => 0,
            Some(Side::Below) => 1,
            Some(Side::Above) => 2,
        }])
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.side = match bytes {
            [0] => None,
            [1] => Some(Side::Below),
            [2] => Some(Side::Above),
            _ => return Err(RestoreError::Incompatible),
        };
        Ok(())
    }
}

export_strategy! {
    strategy: SmaCross,
    name: "sma_cross",
    version: "0.1.0",
    description: "Buy when the fast SMA crosses above the slow SMA, sell on the cross below.",
    params: {
        fast: int = 10 in 1..=1000, "Fast SMA period (bars)";
        slow: int = 20 in 2..=5000, "Slow SMA period (bars); must exceed fast";
    },
    indicators: ["sma({fast})", "sma({slow})"],
    models: [],
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_sdk::testing::{Harness, TestBar};
    use candlewick_sdk::Action;

    fn harness() -> Harness<SmaCross> {
        Harness::new(&CW_MANIFEST, &[], 2).expect("defaults are valid")
    }

    #[test]
    fn signals_each_cross_once_and_ignores_warm_up_and_ties() {
        let mut h = harness();
        let b = |t| TestBar::close(t, 100.0);
        assert_eq!(h.bar(&b(0), &[f64::NAN, f64::NAN]), None);
        assert_eq!(h.bar(&b(1), &[1.0, 2.0]), None, "first side is not a cross");
        assert_eq!(h.bar(&b(2), &[2.0, 2.0]), None, "a tie is not a cross");
        assert_eq!(
            h.bar(&b(3), &[3.0, 2.0]).map(|s| s.action),
            Some(Action::Buy)
        );
        assert_eq!(h.bar(&b(4), &[4.0, 2.0]), None);
        assert_eq!(
            h.bar(&b(5), &[1.0, 2.0]).map(|s| s.action),
            Some(Action::Sell)
        );
    }

    #[test]
    fn refuses_fast_not_shorter_than_slow() {
        let err = Harness::<SmaCross>::new(&CW_MANIFEST, &[("fast", 30.0)], 2).err();
        assert_eq!(
            err.map(|e| e.message().to_string()),
            Some("fast must be shorter than slow".into())
        );
    }

    #[test]
    fn snapshot_restores_the_side() {
        let mut h = harness();
        h.bar(&TestBar::close(0, 1.0), &[1.0, 2.0]);
        let snap = h.snapshot().expect("keeps state");
        let mut fresh = harness();
        fresh.restore(&snap).expect("own snapshot");
        assert_eq!(
            fresh
                .bar(&TestBar::close(1, 1.0), &[3.0, 2.0])
                .map(|s| s.action),
            Some(Action::Buy)
        );
        assert_eq!(fresh.restore(&[9]), Err(RestoreError::Incompatible));
    }
}
