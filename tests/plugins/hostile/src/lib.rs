//! A plugin that misbehaves on purpose, in the way its `mode` parameter
//! picks, on the bars whose time is in `[from_time, until_time)`; on other
//! bars it is quiet and healthy. The host's tests run it beside a healthy
//! plugin and check that only this one is quarantined.
//!
//! | mode | misbehaviour | expected host verdict |
//! |---|---|---|
//! | 1 | infinite loop | deadline |
//! | 2 | allocates until memory runs out | memory limit |
//! | 3 | panics | trap |
//! | 4 | signal strength 2.0 | invalid output |
//! | 5 | unbounded recursion | trap (stack overflow) |
//! | 6 | signal strength NaN | invalid output |
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

use alloc::vec::Vec;
use core::hint::black_box;

use candlewick_sdk::{export_strategy, Bar, InitError, Params, Signal, Strategy};

pub struct Hostile {
    mode: i64,
    from: i64,
    until: i64,
    hoard: Vec<Vec<u8>>,
}

fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(black_box(1))
}

impl Strategy for Hostile {
    fn init(p: &Params<'_>) -> Result<Self, InitError> {
        Ok(Hostile {
            mode: p.int("mode")?,
            from: p.int("from_time")?,
            until: p.int("until_time")?,
            hoard: Vec::new(),
        })
    }

    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
        if bar.time() < self.from || bar.time() >= self.until {
            return None;
        }
        match self.mode {
            1 => loop {
                black_box(());
            },
            // Reserved, never written: the cap is met within a few cheap
            // `memory.grow`s rather than after page-faulting megabytes,
            // so the test sees the memory fault, not the deadline.
            2 => loop {
                self.hoard.push(Vec::with_capacity(4 << 20));
            },
            3 => panic!("hostile plugin panics on purpose"),
            4 => Some(Signal::buy(2.0)),
            5 => {
                black_box(recurse(0));
                None
            }
            6 => Some(Signal::buy(f64::NAN)),
            _ => None,
        }
    }
}

export_strategy! {
    strategy: Hostile,
    name: "hostile",
    version: "0.1.0",
    description: "Misbehaves on purpose (test only)",
    params: {
        mode: int = 0 in 0..=6;
        from_time: int = 0;
        until_time: int = 4_000_000_000_000;
    },
    indicators: [],
    models: [],
}
