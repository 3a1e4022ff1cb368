//! Backtests: a simulated broker, statistics, reports and parameter sweeps.
//!
//! A backtest replays history through a strategy and a simulated broker,
//! and says what would have happened. Its value is in being *right* and
//! *honest about its assumptions*, so this crate states each one:
//!
//! - **No look-ahead.** A signal decided on bar `i`'s close is filled at
//!   bar `i + 1`'s open, never at bar `i`'s close. A signal on the last bar
//!   is not filled (there is no next open). A test changes a signal bar's
//!   close and checks that no fill moves.
//! - **Costs.** A fee in basis points of notional on every fill, and a
//!   slippage in basis points moving every market and stop fill against
//!   the trader (take-profits are limit orders and fill at their price).
//! - **Stops and targets** are checked against each bar's high and low,
//!   from the entry bar on. A gap through the stop fills at the open. When
//!   one bar's range holds both, the stop is assumed hit first (the worse
//!   outcome). See [`Position::touched`].
//! - **One net position**, long or short, sized from the signal's strength
//!   as a fraction of equity, optionally rounded down to a lot size; the
//!   budget pays the fee, so cash never goes negative. An account whose
//!   equity reaches zero is liquidated and stops trading.
//! - **End of data.** A position still open after the last bar is closed
//!   by a stated convention ([`EndOfData`]) and flagged
//!   [`ExitReason::EndOfData`].
//! - **Statistics** are backtesting.py's, name for name and definition for
//!   definition ([`stats`]), including how they are annualised, which the
//!   output states.
//!
//! # Agreement with backtesting.py
//!
//! `tests/reference.rs` runs the `sma_cross` plugin (SMA(10/20)) through
//! the engine ([`Replay`]) on `data/EURUSD-1h.csv` and matches backtesting.py 0.6.6's SmaCross example (fixture and script
//! in `tests/backtest/`) trade for trade, to the last bit of the final
//! equity, with these settings: `fee_bps = 10` (its `commission=.001`),
//! `lot_size = Some(1.0)` (it trades whole units only), the default size
//! [`FULL_EQUITY`] (its `1 - sys.float_info.epsilon`; 0.9999 before 0.4),
//! and [`EndOfData::CloseAtLastOpen`] (its `finalize_trades=True`, which
//! re-runs the last bar and fills the closing order at that bar's open).
//! Where we differ by design: our default closes the last position at the
//! last *close*; our slippage applies to exits as well as entries (its
//! `spread` only adjusts entries); and we hold one net position, so a buy
//! while long is ignored rather than added.
//!
//! # Example
//!
//! ```no_run
//! use candlewick_backtest::{backtest_limits, Replay, ReplaySeries, RunOptions};
//! use candlewick_market::{CsvReader, Symbol};
//! use candlewick_pipeline::Strategy;
//! use candlewick_plugins::{HostConfig, PluginHost};
//!
//! let host = PluginHost::new(HostConfig { limits: backtest_limits(), ..HostConfig::default() })?;
//! let module = host.load_file("target/wasm/sma_cross.wasm".as_ref())?;
//! let replay = Replay {
//!     host: &host,
//!     strategy: Strategy { limits: backtest_limits(), ..Strategy::new(module) },
//!     options: RunOptions::default(),
//!     workers: 1,
//! };
//! let series = ReplaySeries {
//!     symbol: Symbol::new("EURUSD")?,
//!     candles: Box::new(CsvReader::open("data/EURUSD-1h.csv".as_ref())?),
//! };
//! let result = replay.run(vec![series], &|_| {})?.remove(0)?;
//! println!("{} trades, return {:.2}%", result.trades.len(), result.stats.return_pct);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod broker;
mod config;
mod equity;
mod error;
pub mod fingerprint;
mod position;
mod replay;
pub mod report;
mod result;
mod series;
mod signal;
pub mod stats;
pub mod sweep;
mod trade;

pub use broker::{py_floor_div, Broker, BrokerResult};
pub use config::{BrokerConfig, EndOfData, FULL_EQUITY};
pub use equity::EquityCurve;
pub use error::{ConfigError, RunError, SeriesError, SignalError};
pub use position::Position;
pub use replay::{backtest_limits, Candles, Replay, ReplaySeries, BACKTEST_DEADLINE};
pub use result::{RunOptions, RunResult};
pub use series::{GapPolicy, SeriesCheck};
pub use signal::Signal;
pub use stats::Stats;
pub use trade::{ExitReason, Side, Trade};
