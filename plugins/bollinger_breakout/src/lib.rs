//! `bollinger_breakout`: buy a close above the upper Bollinger band, sell a
//! close below the lower one, exit when the close returns to the middle.
//!
//! Needs `bbands(period,k)` (columns upper, middle, lower). One signal per
//! change of position; the position (flat, long, short) is snapshotted.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, RestoreError, Signal, Strategy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Flat,
    Long,
    Short,
}

#[derive(Debug)]
pub struct BollingerBreakout {
    position: Position,
}

const UPPER: usize = 0;
const MIDDLE: usize = 1;
const LOWER: usize = 2;

impl Strategy for BollingerBreakout {
    fn init(_: &Params<'_>) -> Result<Self, InitError> {
        Ok(BollingerBreakout {
            position: Position::Flat,
        })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let (upper, middle, lower) = (
            bar.indicator(UPPER)?,
            bar.indicator(MIDDLE)?,
            bar.indicator(LOWER)?,
        );
        let close = bar.close();
        let width = (upper - lower).max(f64::MIN_POSITIVE);
        let (next, signal) = match self.position {
            Position::Flat if close > upper => (
                Position::Long,
                Signal::buy((0.5 + (close - upper) / width).min(1.0)).with_stop_loss(middle),
            ),
            Position::Flat if close < lower => (
                Position::Short,
                Signal::sell((0.5 + (lower - close) / width).min(1.0)).with_stop_loss(middle),
            ),
            Position::Long if close <= middle => (Position::Flat, Signal::exit()),
            Position::Short if close >= middle => (Position::Flat, Signal::exit()),
            _ => return None,
        };
        self.position = next;
        Some(signal)
    }

    fn snapshot(&self) -> Option<Vec<u8>> {
        Some(vec![self.position as u8])
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.position = match bytes {
            [0] => Position::Flat,
            [1] => Position::Long,
            [2] => Position::Short,
            _ => return Err(RestoreError::Incompatible),
        };
        Ok(())
    }
}

export_strategy! {
    strategy: BollingerBreakout,
    name: "bollinger_breakout",
    version: "0.1.0",
    description: "Trade closes outside the Bollinger bands; exit at the middle band.",
    params: {
        period: int = 20 in 2..=1000, "Band period (bars)";
        k: float = 2.0 in 0.1..=10.0, "Band width in standard deviations";
    },
    indicators: ["bbands({period},{k})"],
    models: [],
}

#[cfg(test)]
mod tests {
    use super::*;
    use candlewick_sdk::testing::{Harness, TestBar};
    use candlewick_sdk::Action;

    #[test]
    fn breaks_out_then_exits_at_the_middle() {
        let mut h = Harness::<BollingerBreakout>::new(&CW_MANIFEST, &[], 3).unwrap();
        let bands = [110.0, 100.0, 90.0];
        let mut at = |t, close| h.bar(&TestBar::close(t, close), &bands);
        assert_eq!(at(0, 105.0), None);
        let buy = at(1, 112.0).unwrap();
        assert_eq!((buy.action, buy.stop_loss), (Action::Buy, Some(100.0)));
        assert_eq!(at(2, 111.0), None, "already long");
        assert_eq!(at(3, 99.0).map(|s| s.action), Some(Action::Exit));
        assert_eq!(at(4, 80.0).map(|s| s.action), Some(Action::Sell));
    }
}
