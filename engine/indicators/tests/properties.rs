//! Properties over generated candle series: streaming equals recomputing,
//! a snapshot restores bit for bit, and VWAP equals its definition.

use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;
use proptest::prelude::*;

/// Every indicator, including the ones without TA-Lib golden data (vwap).
const SPEC: &str =
    "sma(5) ema(4) wma(6) dema(3) tema(3) rsi(3) macd(3,6,2) bbands(5,2) bbands(4,1,1.5) \
    atr(3) natr(3) stoch(4,2,2) stochrsi(3,4,2) willr(4) cci(5) adx(3) plus_di(3) minus_di(3) obv \
    mfi(3) roc(2) mom(2) vwap stddev(5) stddev(4,2)";

/// A valid candle series: a random walk with bodies inside the wicks,
/// including flat bars and zero volume (the edge cases of the zero tests).
fn series() -> impl Strategy<Value = Vec<Candle>> {
    prop::collection::vec(
        (-50i32..=50, 0u8..4, 0u8..4, 0u16..500, any::<bool>()),
        1..160,
    )
    .prop_map(|steps| {
        let mut close = 100.0;
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (step, up, down, volume, flat))| {
                let open = close;
                close = if flat {
                    open
                } else {
                    (open + f64::from(step) * 0.01).max(1.0)
                };
                Candle {
                    open_time: i as i64 * 60_000,
                    open,
                    high: open.max(close) + f64::from(up) * 0.01,
                    low: open.min(close) - f64::from(down) * 0.01,
                    close,
                    volume: f64::from(volume),
                }
            })
            .collect()
    })
}

fn run(set: &mut IndicatorSet, candles: &[Candle]) -> Vec<Vec<u64>> {
    let mut out = vec![0.0; set.width()];
    candles
        .iter()
        .map(|c| {
            set.update(c, &mut out);
            out.iter().map(|v| v.to_bits()).collect()
        })
        .collect()
}

proptest! {
    #[test]
    fn streaming_equals_recomputing_each_prefix(candles in series()) {
        let streamed = run(&mut IndicatorSet::parse(SPEC).unwrap(), &candles);
        for end in [1, candles.len() / 2, candles.len()].into_iter().filter(|&e| e > 0) {
            let fresh = run(&mut IndicatorSet::parse(SPEC).unwrap(), &candles[..end]);
            prop_assert_eq!(&fresh[end - 1], &streamed[end - 1]);
        }
    }

    #[test]
    fn snapshot_restore_continue_is_bit_exact(candles in series(), cut in 0usize..160) {
        let cut = cut.min(candles.len());
        let mut whole = IndicatorSet::parse(SPEC).unwrap();
        let expected = run(&mut whole, &candles);

        let mut first = IndicatorSet::parse(SPEC).unwrap();
        let mut got = run(&mut first, &candles[..cut]);
        let bytes = postcard::to_stdvec(&first).unwrap();
        drop(first);
        let mut restored: IndicatorSet = postcard::from_bytes(&bytes).unwrap();
        got.extend(run(&mut restored, &candles[cut..]));

        prop_assert_eq!(got, expected);
        prop_assert_eq!(restored, whole);
    }

    #[test]
    fn vwap_equals_its_definition(candles in series()) {
        let mut set = IndicatorSet::parse("vwap").unwrap();
        let mut out = [0.0];
        let (mut pv, mut v) = (0.0, 0.0);
        for c in &candles {
            set.update(c, &mut out);
            pv += (c.high + c.low + c.close) / 3.0 * c.volume;
            v += c.volume;
            if v > 0.0 {
                prop_assert!((out[0] - pv / v).abs() <= 1e-12 * out[0].abs());
            } else {
                prop_assert!(out[0].is_nan());
            }
        }
    }
}
