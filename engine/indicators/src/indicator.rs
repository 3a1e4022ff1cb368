//! One indicator of any kind, dispatched by `match` (no boxing, no
//! virtual calls on the hot path).

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::directional::{Adx, DirectionalIndex};
use crate::momentum::{Cci, Macd, Mom, Roc, Rsi, Stoch, StochRsi, Willr};
use crate::overlap::{Bbands, Dema, Ema, Sma, Tema, Wma};
use crate::volatility::{Atr, Stddev};
use crate::volume::{Mfi, Obv, Vwap};

/// An incremental indicator.
///
/// Every implementation is O(1) per update (CCI, stochastics and Williams
/// %R excepted: O(N) in their period, see [`Cci`] and `Range`),
/// allocates nothing after construction, and is plain data for serde, so
/// a snapshot restores bit-exact.
pub trait Streaming {
    /// Index (0-based) of the first bar that has a value: TA-Lib's lookback.
    fn lookback(&self) -> usize;

    /// Applies one closed candle and writes this indicator's outputs to
    /// `out` (one slot per output field), NaN while warming up.
    ///
    /// # Panics
    /// If `out` is shorter than the indicator's number of outputs.
    fn update(&mut self, c: &Candle, out: &mut [f64]);
}

/// Any of the indicators of this crate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Indicator {
    Sma(Sma),
    Ema(Ema),
    Wma(Wma),
    Dema(Dema),
    Tema(Tema),
    Bbands(Bbands),
    Rsi(Rsi),
    Macd(Macd),
    Roc(Roc),
    Mom(Mom),
    Cci(Cci),
    Willr(Willr),
    Stoch(Stoch),
    StochRsi(StochRsi),
    Atr(Atr),
    Stddev(Stddev),
    Obv(Obv),
    Mfi(Mfi),
    Vwap(Vwap),
    Di(DirectionalIndex),
    Adx(Adx),
}

macro_rules! dispatch {
    ($self:expr, $i:ident => $body:expr) => {
        match $self {
            Indicator::Sma($i) => $body,
            Indicator::Ema($i) => $body,
            Indicator::Wma($i) => $body,
            Indicator::Dema($i) => $body,
            Indicator::Tema($i) => $body,
            Indicator::Bbands($i) => $body,
            Indicator::Rsi($i) => $body,
            Indicator::Macd($i) => $body,
            Indicator::Roc($i) => $body,
            Indicator::Mom($i) => $body,
            Indicator::Cci($i) => $body,
            Indicator::Willr($i) => $body,
            Indicator::Stoch($i) => $body,
            Indicator::StochRsi($i) => $body,
            Indicator::Atr($i) => $body,
            Indicator::Stddev($i) => $body,
            Indicator::Obv($i) => $body,
            Indicator::Mfi($i) => $body,
            Indicator::Vwap($i) => $body,
            Indicator::Di($i) => $body,
            Indicator::Adx($i) => $body,
        }
    };
}

impl Streaming for Indicator {
    fn lookback(&self) -> usize {
        dispatch!(self, i => i.lookback())
    }

    #[inline]
    fn update(&mut self, c: &Candle, out: &mut [f64]) {
        dispatch!(self, i => i.update(c, out))
    }
}
