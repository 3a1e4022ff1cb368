//! Test support: the plugin modules, built on demand, and synthetic candles.
//!
//! The first test that needs a module runs `cargo build` for wasm32 over the
//! `plugins/` and `tests/plugins/` workspaces into `target/wasm` of this
//! checkout (the directory `scripts/build-plugins` uses; override with
//! `WASM_TARGET_DIR`). That is never the target dir of the running `cargo
//! test`, so the two builds cannot wait on each other's lock. The wasm32
//! target must be installed (`rustup target add wasm32-unknown-unknown`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candlewick_market::Candle;

fn build() -> Result<PathBuf, String> {
    candlewick_plugins::testing::build_plugins(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Path of the built `NAME.wasm`.
pub fn wasm(name: &str) -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(build) {
        Ok(dir) => dir.join(format!("{name}.wasm")),
        Err(e) => panic!("{e}"),
    }
}

pub fn wasm_bytes(name: &str) -> Vec<u8> {
    std::fs::read(wasm(name)).expect("built module")
}

/// A deterministic, wavy close series (several SMA crosses per 100 bars).
pub fn candles(n: usize) -> Vec<Candle> {
    (0..n)
        .map(|i| {
            let x = i as f64;
            let close = 100.0 + 10.0 * (x / 7.0).sin() + 3.0 * (x / 2.3).cos();
            Candle {
                open_time: 1_700_000_000_000 + 60_000 * i as i64,
                open: close - 0.5,
                high: close + 1.0,
                low: close - 1.0,
                close,
                volume: 10.0 + x,
            }
        })
        .collect()
}

/// The sma_cross signals computed natively: (bar index, +1 buy / -1 sell).
pub fn sma_cross_reference(candles: &[Candle], fast: usize, slow: usize) -> Vec<(usize, i8)> {
    let mut set =
        candlewick_indicators::IndicatorSet::parse(&format!("sma({fast}) sma({slow})")).unwrap();
    let mut out = [0.0; 2];
    let mut side: Option<bool> = None;
    let mut signals = Vec::new();
    for (i, c) in candles.iter().enumerate() {
        set.update(c, &mut out);
        let [f, s] = out;
        if f.is_nan() || s.is_nan() || f == s {
            continue;
        }
        let above = f > s;
        match side.replace(above) {
            Some(false) if above => signals.push((i, 1)),
            Some(true) if !above => signals.push((i, -1)),
            _ => {}
        }
    }
    signals
}
