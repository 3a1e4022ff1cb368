//! A set's indicators grouped by kind, each with the output slots it owns.
//!
//! The per-candle update then runs one direct loop per kind instead of an
//! indirect jump per indicator through [`Indicator`]'s `match`. In the
//! 10-indicator set that jump cost about a fifth of the update (63 against
//! 55 ns a bar, `benches/README.md`): the compiler cannot schedule one
//! indicator's work beside the next across it, and every kind's code sits
//! behind the same jump. The kinds' order does not matter: indicators are
//! independent and each writes only its own slots.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::directional::{Adx, DirectionalIndex};
use crate::momentum::{Cci, Macd, Mom, Roc, Rsi, Stoch, StochRsi, Willr};
use crate::overlap::{Bbands, Dema, Ema, Sma, Tema, Wma};
use crate::volatility::{Atr, Stddev};
use crate::volume::{Mfi, Obv, Vwap};
use crate::{Indicator, Streaming};

/// One indicator and the output slots `start..end` it writes (`end` is
/// kept for the restored-state check; the update uses the kind's width,
/// a constant, so the slice's bounds check folds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Placed<T> {
    indicator: T,
    start: usize,
    end: usize,
}

macro_rules! kinds {
    ($($field:ident: $variant:ident($ty:ty), $width:literal, $bit:literal;)*) => {
        /// Every indicator of a set, one slice per kind (boxed, not a
        /// `Vec`: 16 bytes per kind, most of them empty, in every set of
        /// every stream and strategy).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub(crate) struct Kinds {
            /// Bit `b` set: the kind numbered `b` has indicators. The update
            /// tests bits in a register rather than loading every slice's
            /// length, and stops after the last kind present, so a set of
            /// one kind (a strategy's two SMAs) or none (a backtest's
            /// stream) does not look at twenty empty kinds on every candle.
            present: u32,
            $($field: Box<[Placed<$ty>]>,)*
        }

        impl Kinds {
            /// Adds `indicator`, which writes the slots `start..end`.
            ///
            /// # Panics
            /// If `end - start` is not the kind's number of outputs: the
            /// spec's fields and this table disagree, a bug of this crate.
            pub(crate) fn place(&mut self, indicator: Indicator, start: usize, end: usize) {
                match indicator {
                    $(Indicator::$variant(indicator) => {
                        assert_eq!(end - start, $width, "outputs of {}", stringify!($variant));
                        let mut placed = std::mem::take(&mut self.$field).into_vec();
                        placed.push(Placed { indicator, start, end });
                        self.$field = placed.into_boxed_slice();
                        self.present |= 1 << $bit;
                    })*
                }
            }

            /// Applies one candle to every indicator. The long dependency
            /// chains (CCI's two sums over its window) come last, so the
            /// next candle's short ones run in their shadow: put in the
            /// middle, CCI made the set about a tenth slower.
            #[inline]
            pub(crate) fn update(&mut self, c: &Candle, out: &mut [f64]) {
                let present = self.present;
                $(
                    if present & (1 << $bit) != 0 {
                        for p in self.$field.iter_mut() {
                            p.indicator.update(c, &mut out[p.start..p.start + $width]);
                        }
                    }
                    if present >> $bit <= 1 {
                        return;
                    }
                )*
            }

            /// Every indicator's kind and slots, to compare a restored set
            /// with the one its spec builds.
            pub(crate) fn placements(&self) -> (u32, Vec<(&'static str, usize, usize)>) {
                let mut all = Vec::new();
                $(all.extend(self.$field.iter().map(|p| (stringify!($variant), p.start, p.end)));)*
                (self.present, all)
            }
        }
    };
}

kinds! {
    sma: Sma(Sma), 1, 0;
    ema: Ema(Ema), 1, 1;
    wma: Wma(Wma), 1, 2;
    dema: Dema(Dema), 1, 3;
    tema: Tema(Tema), 1, 4;
    bbands: Bbands(Bbands), 3, 5;
    rsi: Rsi(Rsi), 1, 6;
    macd: Macd(Macd), 3, 7;
    roc: Roc(Roc), 1, 8;
    mom: Mom(Mom), 1, 9;
    willr: Willr(Willr), 1, 10;
    stoch: Stoch(Stoch), 2, 11;
    stoch_rsi: StochRsi(StochRsi), 2, 12;
    atr: Atr(Atr), 1, 13;
    stddev: Stddev(Stddev), 1, 14;
    obv: Obv(Obv), 1, 15;
    mfi: Mfi(Mfi), 1, 16;
    vwap: Vwap(Vwap), 1, 17;
    di: Di(DirectionalIndex), 1, 18;
    adx: Adx(Adx), 1, 19;
    cci: Cci(Cci), 1, 20;
}

#[cfg(test)]
mod tests {
    use crate::IndicatorSet;

    /// Every kind of the spec's table has a place here, with the width
    /// its fields give (`place` asserts it), and writes its own slots.
    #[test]
    fn every_kind_is_placed_and_writes_its_slots() {
        let spec = "sma(3) ema(3) wma(3) dema(3) tema(3) bbands(3,2) rsi(3) macd(2,3,2) \
                    roc(3) mom(3) cci(3) willr(3) stoch(3,2,2) stochrsi(3,2,2) atr(3) natr(3) \
                    stddev(3,1) obv mfi(3) vwap plus_di(3) minus_di(3) adx(3)";
        let mut set = IndicatorSet::parse(spec).unwrap();
        let mut out = vec![f64::NAN; set.width()];
        for t in 0..40 {
            let x = 100.0 + f64::from(t % 7) - f64::from(t % 3);
            let c = candlewick_market::Candle {
                open_time: i64::from(t),
                open: x,
                high: x + 2.0,
                low: x - 1.5,
                close: x + 0.5,
                volume: 10.0 + f64::from(t),
            };
            set.update(&c, &mut out);
        }
        let unwritten: Vec<&String> = set
            .columns()
            .iter()
            .zip(&out)
            .filter(|(_, v)| !v.is_finite())
            .map(|(c, _)| c)
            .collect();
        assert!(unwritten.is_empty(), "never written: {unwritten:?}");
    }
}
