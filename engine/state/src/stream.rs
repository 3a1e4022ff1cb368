//! The live state of one stream: its indicators and the last candle applied.

use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;

use crate::{StateError, StreamKey};

/// The indicators of one stream and the open time of the last candle they
/// consumed.
///
/// Invariants, kept by every constructor and by [`StreamState::apply`]:
/// - `last_open_time` is `None` exactly when `set.applied() == 0`;
/// - candles are applied in strictly increasing `open_time`, each once.
///
/// Obtain one from a store ([`crate::StateStore::load`]), which restores it
/// from the last checkpoint or starts it fresh, or with
/// [`StreamState::new`] for a stream with no history.
///
/// ```
/// use candlewick_market::Candle;
/// use candlewick_state::{StateError, StreamState};
///
/// let mut state = StreamState::new("EURUSD/1h".parse().unwrap(), "sma(2)").unwrap();
/// let candle = |t| Candle { open_time: t, open: 1.0, high: 1.0, low: 1.0, close: 1.0, volume: 0.0 };
/// let mut out = [0.0];
/// state.apply(&candle(0), &mut out).unwrap();
/// assert_eq!(state.last_open_time(), Some(0));
/// // The same candle again (say, re-sent after a restart) is refused.
/// assert!(matches!(state.apply(&candle(0), &mut out), Err(StateError::AlreadyApplied { .. })));
/// assert_eq!(state.set().applied(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StreamState {
    key: StreamKey,
    set: IndicatorSet,
    last_open_time: Option<i64>,
}

impl StreamState {
    /// A fresh state: the indicators of `spec`, nothing applied. An empty
    /// spec keeps no indicators, only the offset (a backtest's streams:
    /// each strategy's runner computes its own).
    ///
    /// # Errors
    /// [`StateError::Spec`] when `spec` does not parse.
    pub fn new(key: StreamKey, spec: &str) -> Result<Self, StateError> {
        let set = if spec.trim().is_empty() {
            Ok(IndicatorSet::none())
        } else {
            IndicatorSet::parse(spec)
        };
        match set {
            Ok(set) => Ok(StreamState {
                key,
                set,
                last_open_time: None,
            }),
            Err(source) => Err(StateError::Spec {
                stream: key,
                source,
            }),
        }
    }

    /// Rebuilds a state from stored records, or starts it fresh when there
    /// are none, refusing a spec change and records that disagree.
    pub(crate) fn restore(
        key: StreamKey,
        spec: &str,
        stored: Option<IndicatorSet>,
        last_open_time: Option<i64>,
    ) -> Result<Self, StateError> {
        let fresh = StreamState::new(key, spec)?;
        let Some(set) = stored else {
            return match last_open_time {
                None => Ok(fresh),
                Some(_) => Err(disagree(fresh.key, "an offset but no indicator state")),
            };
        };
        if set.spec() != fresh.set.spec() {
            return Err(StateError::SpecChanged {
                stream: fresh.key,
                stored: set.spec().to_owned(),
                requested: fresh.set.spec().to_owned(),
            });
        }
        if (set.applied() == 0) != last_open_time.is_none() {
            return Err(disagree(fresh.key, "indicator state and offset disagree"));
        }
        Ok(StreamState {
            key: fresh.key,
            set,
            last_open_time,
        })
    }

    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// The indicators, read-only: they change only through `apply`.
    pub fn set(&self) -> &IndicatorSet {
        &self.set
    }

    /// Open time of the last candle applied, `None` before the first.
    pub fn last_open_time(&self) -> Option<i64> {
        self.last_open_time
    }

    /// Applies one closed candle and writes the set's outputs to `out`
    /// (NaN while an indicator warms up).
    ///
    /// The candle must be well formed ([`Candle::check`]; readers and
    /// adapters check it at the boundary).
    ///
    /// # Errors
    /// Refusals leave the state and `out` untouched:
    /// - [`StateError::AlreadyApplied`] when `c.open_time` is not after the
    ///   last applied candle (a duplicate, or a replay after restart);
    /// - [`StateError::OutputWidth`] when `out.len() != self.set().width()`.
    #[inline]
    pub fn apply(&mut self, c: &Candle, out: &mut [f64]) -> Result<(), StateError> {
        if let Some(last) = self.last_open_time.filter(|&last| c.open_time <= last) {
            return Err(StateError::AlreadyApplied {
                stream: self.key.clone(),
                time: c.open_time,
                last,
            });
        }
        if out.len() != self.set.width() {
            return Err(StateError::OutputWidth {
                stream: self.key.clone(),
                expected: self.set.width(),
                found: out.len(),
            });
        }
        self.set.update(c, out);
        self.last_open_time = Some(c.open_time);
        Ok(())
    }
}

fn disagree(stream: StreamKey, detail: &str) -> StateError {
    StateError::Corrupt {
        stream,
        cf: "offsets",
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        "EURUSD/1h".parse().unwrap()
    }

    fn candle(t: i64, close: f64) -> Candle {
        Candle {
            open_time: t,
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }

    fn applied(spec: &str, times: &[i64]) -> StreamState {
        let mut state = StreamState::new(key(), spec).unwrap();
        let mut out = vec![0.0; state.set().width()];
        for &t in times {
            state.apply(&candle(t, t as f64), &mut out).unwrap();
        }
        state
    }

    /// A stream with no indicators (a backtest's) keeps its offset, refuses
    /// a repeat like any other, and survives the record codec.
    #[test]
    fn an_empty_spec_keeps_only_the_offset() {
        let mut state = applied("", &[10, 20]);
        assert_eq!(state.set().width(), 0);
        assert_eq!(state.last_open_time(), Some(20));
        assert!(matches!(
            state.apply(&candle(20, 1.0), &mut []),
            Err(StateError::AlreadyApplied { .. })
        ));
        let bytes = crate::codec::encode_set(&key(), state.set()).unwrap();
        let back = crate::codec::decode_set(&key(), &bytes).unwrap();
        assert_eq!(&back, state.set());
        // A configuration's empty spec is still refused where it is parsed.
        assert!(candlewick_indicators::IndicatorSet::parse("").is_err());
    }

    #[test]
    fn refuses_a_candle_at_or_before_the_last_one() {
        let mut state = applied("sma(2) obv", &[10, 20]);
        let before = state.clone();
        let mut out = [7.0, 7.0];
        for t in [20, 15, 10, -1] {
            let err = state.apply(&candle(t, 1.0), &mut out).unwrap_err();
            assert!(matches!(err, StateError::AlreadyApplied { time, last: 20, .. } if time == t));
        }
        assert_eq!(state, before);
        assert_eq!(out, [7.0, 7.0]);
    }

    #[test]
    fn refuses_a_wrong_output_width_without_panicking() {
        let mut state = applied("sma(2) obv", &[]);
        let err = state.apply(&candle(1, 1.0), &mut [0.0; 3]).unwrap_err();
        assert!(matches!(
            err,
            StateError::OutputWidth {
                expected: 2,
                found: 3,
                ..
            }
        ));
        assert_eq!(state.last_open_time(), None);
        assert_eq!(state.set().applied(), 0);
    }

    #[test]
    fn reports_a_bad_spec_with_its_stream() {
        let err = StreamState::new(key(), "sma(0)").unwrap_err();
        assert!(
            err.to_string().starts_with("stream EURUSD/1h: sma(0)"),
            "{err}"
        );
    }

    #[test]
    fn restore_compares_canonical_specs() {
        let stored = applied("sma(2)  obv", &[1, 2]);
        let set = Some(stored.set().clone());
        let state = StreamState::restore(key(), "sma(2) obv", set.clone(), Some(2)).unwrap();
        assert_eq!(state, stored);
        let err = StreamState::restore(key(), "sma(3) obv", set, Some(2)).unwrap_err();
        assert!(matches!(
            err,
            StateError::SpecChanged { ref stored, ref requested, .. }
                if stored == "sma(2) obv" && requested == "sma(3) obv"
        ));
    }

    #[test]
    fn restore_refuses_records_that_disagree() {
        let set = applied("obv", &[1]).set().clone();
        for (stored, offset) in [
            (Some(set), None),
            (None, Some(1)),
            (Some(applied("obv", &[]).set().clone()), Some(1)),
        ] {
            let err = StreamState::restore(key(), "obv", stored, offset).unwrap_err();
            assert!(
                matches!(err, StateError::Corrupt { cf: "offsets", .. }),
                "{err}"
            );
        }
    }
}
