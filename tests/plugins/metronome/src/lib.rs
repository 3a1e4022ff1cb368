//! A strategy whose signals depend on the clock alone, never on a price:
//! it buys on the bars whose time, counted in `step_ms` units, is a
//! multiple of `period`, and sells half a period later. The backtest's
//! tests change prices under it and check that no fill moves but the
//! ones the prices should move (no look-ahead), knowing the signals
//! cannot have changed.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

use candlewick_sdk::{export_strategy, Bar, InitError, Params, Signal, Strategy};

pub struct Metronome {
    step_ms: i64,
    period: i64,
}

impl Strategy for Metronome {
    fn init(p: &Params<'_>) -> Result<Self, InitError> {
        Ok(Metronome {
            step_ms: p.int("step_ms")?,
            period: p.int("period")?,
        })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        let beat = bar.time().div_euclid(self.step_ms).rem_euclid(self.period);
        if beat == 0 {
            Some(Signal::buy(1.0))
        } else if beat == self.period / 2 {
            Some(Signal::sell(1.0))
        } else {
            None
        }
    }
}

export_strategy! {
    strategy: Metronome,
    name: "metronome",
    version: "0.1.0",
    description: "Buys and sells by the clock alone (test only)",
    params: {
        step_ms: int = 3_600_000 in 1..=86_400_000;
        period: int = 10 in 2..=10_000;
    },
    indicators: [],
    models: [],
}
