//! Incremental technical indicators with TA-Lib parity.
//!
//! Each indicator consumes one closed candle at a time without allocating,
//! in O(1), except where it reads its whole window of N values: CCI's mean
//! deviation, and the highest and lowest of stochastics and Williams %R (a
//! branch-free packed scan, faster at the usual N than the O(1) ways, see
//! `Range`). None depends on how many candles came before. It gives the
//! same numbers as TA-Lib's batch functions over the same series: same
//! seeds, same first-value index, same floating-point operation order
//! (see `shared/TALIB.md`). Values are checked against TA-Lib 0.6.4 golden
//! files in `tests/golden/`.
//!
//! A warming-up output is NaN. Inputs are never NaN: candles are validated
//! at the boundary (`candlewick-market`), because one NaN would poison
//! every recursive state after it.
//!
//! State is plain serde data, so a checkpoint restores bit-exact. This
//! crate knows nothing of storage, networking or plugins.
#![forbid(unsafe_code)]

mod directional;
mod indicator;
mod kinds;
mod momentum;
mod overlap;
mod primitives;
mod set;
pub mod spec;
mod volatility;
mod volume;

pub use directional::{Adx, DiSide, DirectionalIndex};
pub use indicator::{Indicator, Streaming};
pub use momentum::{Cci, Macd, Mom, Roc, Rsi, Stoch, StochRsi, Willr};
pub use overlap::{Bbands, Dema, Ema, Sma, Tema, Wma};
pub use set::IndicatorSet;
pub use spec::{parse_spec, SpecError, SpecItem};
pub use volatility::{Atr, Stddev};
pub use volume::{Mfi, Obv, Vwap};
