//! An ordered set of indicators over one candle stream.

use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::kinds::Kinds;
use crate::spec::{parse_spec, SpecError};
use crate::Streaming;

/// The indicators of one spec, updated together, one candle at a time.
///
/// The set is plain data: serialise it to checkpoint, deserialise to
/// resume; the restored set continues bit for bit as if never stopped.
///
/// ```
/// use candlewick_indicators::IndicatorSet;
/// use candlewick_market::Candle;
///
/// let mut set = IndicatorSet::parse("sma(2) obv").unwrap();
/// assert_eq!(set.columns(), ["sma(2)", "obv"]);
/// let mut out = vec![0.0; set.width()];
/// for (t, close) in [1.0, 3.0].into_iter().enumerate() {
///     let c = Candle { open_time: t as i64, open: close, high: close, low: close, close, volume: 5.0 };
///     set.update(&c, &mut out);
/// }
/// assert_eq!(out, [2.0, 10.0]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSet {
    /// Canonical spec: the items' texts joined by single spaces.
    spec: String,
    columns: Vec<String>,
    /// Per column, the index of the first bar with a value.
    lookbacks: Vec<usize>,
    /// The indicators, grouped by kind, each with its output slots.
    kinds: Kinds,
    /// Candles applied so far.
    applied: u64,
}

impl IndicatorSet {
    /// No indicators, spec `""`: for a stream whose engine keeps only its
    /// offset (a backtest: each strategy's runner computes its own).
    /// [`IndicatorSet::parse`] still refuses an empty spec, which in a
    /// configuration is a mistake.
    pub fn none() -> Self {
        IndicatorSet {
            spec: String::new(),
            columns: Vec::new(),
            lookbacks: Vec::new(),
            kinds: Kinds::default(),
            applied: 0,
        }
    }

    /// Builds the set a spec describes.
    ///
    /// # Errors
    /// [`SpecError`] as [`parse_spec`] returns it.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let items = parse_spec(spec)?;
        let spec = items
            .iter()
            .map(|i| i.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut set = IndicatorSet {
            spec,
            columns: Vec::new(),
            lookbacks: Vec::new(),
            kinds: Kinds::default(),
            applied: 0,
        };
        for item in items {
            let lookback = item.indicator.lookback();
            let start = set.columns.len();
            set.lookbacks
                .extend(std::iter::repeat_n(lookback, item.columns.len()));
            set.columns.extend(item.columns);
            set.kinds.place(item.indicator, start, set.columns.len());
        }
        Ok(set)
    }

    /// The canonical spec, equal for equal sets whatever the spacing.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Output column names, in output order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of output values per candle.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Per column, the 0-based index of the first candle with a value.
    pub fn lookbacks(&self) -> &[usize] {
        &self.lookbacks
    }

    /// Candles applied since the set was built.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Applies one closed candle; writes every output to `out`, NaN where
    /// an indicator is still warming up.
    ///
    /// # Panics
    /// If `out.len() != self.width()`.
    #[inline]
    pub fn update(&mut self, c: &Candle, out: &mut [f64]) {
        assert_eq!(
            out.len(),
            self.columns.len(),
            "output slice must be width() long"
        );
        self.kinds.update(c, out);
        self.applied += 1;
    }

    /// Checks a set restored from bytes (a checkpoint) before it is used:
    /// a well-formed record can still hold impossible contents (a ring
    /// index past its buffer, a window of another length), which would
    /// panic or compute garbage later. The set must have exactly the
    /// structure its own spec builds (columns, output slots, every buffer's
    /// length) and must take a few candles without panicking.
    ///
    /// # Errors
    /// What differs, or that an update panicked.
    pub fn check_restored(&self) -> Result<(), String> {
        let fresh = if self.spec.is_empty() {
            IndicatorSet::none()
        } else {
            IndicatorSet::parse(&self.spec).map_err(|e| format!("spec: {e}"))?
        };
        if fresh.columns != self.columns
            || fresh.lookbacks != self.lookbacks
            || fresh.kinds.placements() != self.kinds.placements()
        {
            return Err("columns or output slots differ from what the spec builds".into());
        }
        let shape =
            |set: &IndicatorSet| serde_json::to_value(&set.kinds).map_err(|e| e.to_string());
        if let Some(path) = shape_difference(&shape(&fresh)?, &shape(self)?, String::new()) {
            return Err(format!("state differs in shape from the spec's at {path}"));
        }
        let mut trial = self.clone();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut out = vec![0.0; trial.width()];
            for t in 0..3 {
                let x = 1.0 + f64::from(t);
                let c = Candle {
                    open_time: i64::from(t),
                    open: x,
                    high: x + 1.0,
                    low: x - 0.5,
                    close: x + 0.5,
                    volume: 10.0,
                };
                trial.update(&c, &mut out);
            }
        }));
        ok.map_err(|_| "an update on the restored state panicked".to_owned())
    }
}

/// Where two JSON trees differ in shape (object keys, array lengths,
/// strings, kinds); numbers and booleans may differ, and a null (an unset
/// `Option`, a NaN) matches anything.
fn shape_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            if x.len() != y.len() || x.keys().zip(y.keys()).any(|(k, l)| k != l) {
                return Some(at);
            }
            x.iter()
                .zip(y.values())
                .find_map(|((k, v), w)| shape_difference(v, w, format!("{at}.{k}")))
        }
        (Array(x), Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{at} (length {} instead of {})", y.len(), x.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| shape_difference(v, w, format!("{at}[{i}]")))
        }
        (String(x), String(y)) if x == y => None,
        // `null` is an `Option` not yet set (or a NaN): it may stand for
        // anything on the other side.
        (Null, _) | (_, Null) => None,
        (Number(_), Number(_)) | (Bool(_), Bool(_)) => None,
        _ => Some(at),
    }
}
