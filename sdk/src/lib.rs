//! # Candlewick strategy SDK
//!
//! Write a trading strategy in Rust, build it to `wasm32-unknown-unknown`,
//! and the Candlewick engine runs it sandboxed, live or in a backtest, with
//! the same code. You implement [`Strategy`] and call [`export_strategy!`];
//! the SDK does the rest of the ABI (`sdk/ABI.md`), so you never handle a
//! pointer.
//!
//! ```
//! use candlewick_sdk::{export_strategy, Bar, InitError, Params, Signal, Strategy};
//!
//! /// Buys when the close crosses above the SMA, sells on the cross below.
//! pub struct AboveSma { above: Option<bool> }
//!
//! impl Strategy for AboveSma {
//!     fn init(_: &Params<'_>) -> Result<Self, InitError> {
//!         Ok(AboveSma { above: None })
//!     }
//!     fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
//!         let sma = bar.indicator(0)?; // None while the SMA warms up
//!         let above = bar.close() > sma;
//!         let was = self.above.replace(above);
//!         match (was, above) {
//!             (Some(false), true) => Some(Signal::buy(1.0)),
//!             (Some(true), false) => Some(Signal::sell(1.0)),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! export_strategy! {
//!     strategy: AboveSma,
//!     name: "above_sma",
//!     version: "0.1.0",
//!     params: { period: int = 20 in 2..=1000, "SMA period"; },
//!     indicators: ["sma({period})"],
//!     models: [],
//! }
//! ```
//!
//! ## What the host guarantees
//!
//! - Bars arrive oldest first, closed, each once; one instance per symbol stream.
//! - Parameters are type- and range-checked against your manifest before
//!   [`Strategy::init`] sees them.
//! - Indicator values are computed by the engine (TA-Lib conventions) and
//!   are NaN ([`Bar::indicator`] gives `None`) while warming up.
//!
//! ## What it enforces
//!
//! Each call has a deadline (default 1 ms per batch), memory is capped
//! (default 64 MiB), and every signal is checked. A trap (a panic), a missed
//! deadline, memory exhaustion or an invalid signal quarantines the plugin;
//! it is restarted from its last [`Strategy::snapshot`] after a backoff.
//!
//! ## Features
//!
//! `guest` (default): on wasm32, supplies the global allocator (dlmalloc)
//! and a panic handler that logs the panic's location before trapping, as a
//! `no_std` plugin needs. Turn it off if your plugin links `std`.
#![no_std]
#![warn(missing_debug_implementations)]

extern crate alloc;

pub mod abi;
mod bar;
pub mod host;
mod macros;
pub mod manifest;
mod params;
mod signal;
mod strategy;
pub mod testing;

#[doc(hidden)]
pub mod rt;

#[doc(hidden)]
pub use rt as __rt;

#[cfg(all(target_arch = "wasm32", feature = "guest"))]
mod guest;

pub use abi::Action;
pub use bar::{Bar, Bars};
pub use params::Params;
pub use signal::{Signal, Signals};
pub use strategy::{InitError, RestoreError, Strategy};
