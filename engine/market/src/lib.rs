//! Market data: the candle, its symbol and interval, and validated readers
//! of the files candles come from.
//!
//! Everything downstream (indicators, state, strategies, the simulated
//! broker) trusts a [`Candle`] to be well formed, so this crate is the
//! boundary where untrusted bytes become trusted values. A reader never
//! skips a bad row: it stops with a [`DataError`] that names the file, the
//! line and what was wrong, because a silently dropped candle is a wrong
//! indicator value that nobody can see.
//!
//! This crate knows nothing of storage, networking or plugins.
#![forbid(unsafe_code)]

mod candle;
mod csv;
mod error;
mod interval;
mod symbol;
pub mod time;

pub use candle::{Candle, CandleFault};
pub use csv::{CsvDialect, CsvReader};
pub use error::{DataError, DataErrorKind};
pub use interval::{Interval, IntervalError};
pub use symbol::{Symbol, SymbolError};
