//! Features: what the model reads at each bar, computed by the engine's own
//! incremental indicators so that training and inference see the same
//! numbers.
//!
//! A feature spec is the indicator spec language (`rsi(14) macd(12,26,9)`,
//! see `candlewick-indicators`) plus derived series, in any order:
//!
//! | item     | value at bar t                          |
//! |----------|-----------------------------------------|
//! | `logret` | `ln(close_t / close_{t-1})` (NaN at t=0) |
//! | `range`  | `ln(high_t / low_t)`                     |
//! | `body`   | `ln(close_t / open_t)`                   |
//! | `logvol` | `ln(1 + volume_t)`                       |
//!
//! Columns come out in spec order; a multi-output indicator contributes its
//! columns in its own order (`macd(12,26,9).macd|.signal|.hist`). A value is
//! NaN while its indicator warms up; [`FeatureSpec::lookback`] is the index
//! of the first bar where every column has a value.

use candlewick_indicators::{parse_spec, IndicatorSet, SpecError, Streaming};
use candlewick_market::Candle;
use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// The 16 default features: four derived series and twelve indicator
/// outputs (MACD's in price units; the scaler standardises every column).
pub const DEFAULT_SPEC: &str = "logret range body logvol rsi(14) macd(12,26,9) natr(14) \
     adx(14) cci(20) stoch(14,3,3) willr(14) roc(10) mfi(14)";

/// A feature spec that does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureSpecError {
    #[error("empty feature spec: give items such as \"logret range rsi(14)\"")]
    Empty,
    #[error("unbalanced parentheses in {0:?}")]
    Parentheses(String),
    #[error("{0} appears twice")]
    Duplicate(String),
    #[error(transparent)]
    Indicator(#[from] SpecError),
}

/// A derived series (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Derived {
    LogReturn,
    Range,
    Body,
    LogVolume,
}

impl Derived {
    const ALL: [(&'static str, Derived); 4] = [
        ("logret", Derived::LogReturn),
        ("range", Derived::Range),
        ("body", Derived::Body),
        ("logvol", Derived::LogVolume),
    ];

    fn parse(item: &str) -> Option<Derived> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(item))
            .map(|&(_, d)| d)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("?", |(n, _)| n)
    }

    fn lookback(self) -> usize {
        match self {
            Derived::LogReturn => 1,
            _ => 0,
        }
    }
}

/// Where one output column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Source {
    Derived(Derived),
    /// Index into the indicator set's output row.
    Indicator(usize),
}

/// A parsed, canonical feature spec.
///
/// ```
/// use candlewick_models::FeatureSpec;
/// let spec = FeatureSpec::parse("logret  rsi(14) macd(12, 26, 9)").unwrap();
/// assert_eq!(spec.text(), "logret rsi(14) macd(12,26,9)");
/// assert_eq!(spec.columns().len(), 5);
/// assert_eq!(spec.lookback(), 33);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    text: String,
    columns: Vec<String>,
    sources: Vec<Source>,
    /// Canonical spec of the indicator items alone ("" when none).
    indicator_spec: String,
    lookback: usize,
}

impl FeatureSpec {
    /// Parses a spec.
    ///
    /// # Errors
    /// [`FeatureSpecError`] naming the offending item.
    pub fn parse(spec: &str) -> Result<Self, FeatureSpecError> {
        let tokens = tokenize(spec)?;
        if tokens.is_empty() {
            return Err(FeatureSpecError::Empty);
        }
        let mut texts = Vec::new();
        let mut columns = Vec::new();
        let mut sources = Vec::new();
        let mut indicator_items = Vec::new();
        let mut offset = 0;
        let mut lookback = 0;
        for token in tokens {
            if let Some(d) = Derived::parse(&token) {
                texts.push(d.name().to_owned());
                columns.push(d.name().to_owned());
                sources.push(Source::Derived(d));
                lookback = lookback.max(d.lookback());
                continue;
            }
            let items = parse_spec(&token)?;
            for item in items {
                lookback = lookback.max(item.indicator.lookback());
                for col in &item.columns {
                    columns.push(col.clone());
                    sources.push(Source::Indicator(offset));
                    offset += 1;
                }
                texts.push(item.text.clone());
                indicator_items.push(item.text);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for t in &texts {
            if !seen.insert(t.to_ascii_lowercase()) {
                return Err(FeatureSpecError::Duplicate(t.clone()));
            }
        }
        Ok(FeatureSpec {
            text: texts.join(" "),
            columns,
            sources,
            indicator_spec: indicator_items.join(" "),
            lookback,
        })
    }

    /// Canonical text: items as the engine names them, single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Output columns in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of features per bar (`F`).
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// 0-based index of the first bar at which every column has a value.
    pub fn lookback(&self) -> usize {
        self.lookback
    }

    /// Fresh streaming state for one symbol.
    ///
    /// # Errors
    /// Never for a spec that parsed; kept fallible for specs deserialised
    /// from elsewhere.
    pub fn engine(&self) -> Result<FeatureEngine, FeatureSpecError> {
        let set = if self.indicator_spec.is_empty() {
            None
        } else {
            Some(IndicatorSet::parse(&self.indicator_spec)?)
        };
        let scratch = vec![f64::NAN; set.as_ref().map_or(0, IndicatorSet::width)];
        Ok(FeatureEngine {
            sources: self.sources.clone(),
            set,
            scratch,
            prev_close: None,
        })
    }

    /// Computes every feature row of `candles`, row-major `(n, F)`.
    ///
    /// # Errors
    /// As [`FeatureSpec::engine`].
    pub fn compute(&self, candles: &[Candle]) -> Result<Vec<f64>, FeatureSpecError> {
        let mut engine = self.engine()?;
        let f = self.width();
        let mut out = vec![f64::NAN; candles.len() * f];
        for (c, row) in candles.iter().zip(out.chunks_exact_mut(f)) {
            engine.update(c, row);
        }
        Ok(out)
    }

    /// The feature row after a fixed synthetic series of 400 candles: a
    /// fingerprint of what this engine computes for this spec. An artifact
    /// stores it; a load recomputes it, so an engine whose indicators
    /// changed meaning is caught even when the spec text is equal.
    ///
    /// # Errors
    /// As [`FeatureSpec::engine`].
    pub fn probe(&self) -> Result<Vec<f64>, FeatureSpecError> {
        let candles = probe_candles(400);
        let rows = self.compute(&candles)?;
        Ok(rows[rows.len() - self.width()..].to_vec())
    }
}

/// Splits on whitespace outside parentheses.
fn tokenize(spec: &str) -> Result<Vec<String>, FeatureSpecError> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for ch in spec.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err(FeatureSpecError::Parentheses(spec.to_owned()));
        }
        if ch.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(ch);
        }
    }
    if depth != 0 {
        return Err(FeatureSpecError::Parentheses(spec.to_owned()));
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    Ok(tokens)
}

/// A deterministic, valid candle series for [`FeatureSpec::probe`].
fn probe_candles(n: usize) -> Vec<Candle> {
    let mut rng = SplitMix64::new(0x00C0_FFEE);
    let mut close = 100.0f64;
    (0..n)
        .map(|i| {
            let open = close;
            close = (close * (1.0 + rng.uniform(0.01))).max(1.0);
            let high = open.max(close) * (1.0 + rng.next_f64() * 0.005);
            let low = open.min(close) * (1.0 - rng.next_f64() * 0.005);
            Candle {
                open_time: i as i64 * 60_000,
                open,
                high,
                low,
                close,
                volume: 1000.0 + rng.next_f64() * 500.0,
            }
        })
        .collect()
}

/// Streaming feature state of one symbol: one closed candle in, one feature
/// row out. Plain data (serde), so it checkpoints with the indicator state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEngine {
    sources: Vec<Source>,
    set: Option<IndicatorSet>,
    scratch: Vec<f64>,
    prev_close: Option<f64>,
}

impl FeatureEngine {
    /// Number of features per row.
    pub fn width(&self) -> usize {
        self.sources.len()
    }

    /// Applies one closed candle and writes its feature row (NaN while
    /// warming up).
    ///
    /// # Panics
    /// If `out.len() != self.width()`.
    pub fn update(&mut self, c: &Candle, out: &mut [f64]) {
        assert_eq!(out.len(), self.sources.len(), "row must be width() long");
        if let Some(set) = &mut self.set {
            set.update(c, &mut self.scratch);
        }
        for (slot, source) in out.iter_mut().zip(&self.sources) {
            *slot = match *source {
                Source::Indicator(i) => self.scratch[i],
                Source::Derived(Derived::LogReturn) => {
                    self.prev_close.map_or(f64::NAN, |p| (c.close / p).ln())
                }
                Source::Derived(Derived::Range) => (c.high / c.low).ln(),
                Source::Derived(Derived::Body) => (c.close / c.open).ln(),
                Source::Derived(Derived::LogVolume) => c.volume.ln_1p(),
            };
        }
        self.prev_close = Some(c.close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_declared_order_and_indicator_values() {
        let spec = FeatureSpec::parse("rsi(14) logret macd(12,26,9) range").unwrap();
        assert_eq!(
            spec.columns(),
            [
                "rsi(14)",
                "logret",
                "macd(12,26,9).macd",
                "macd(12,26,9).signal",
                "macd(12,26,9).hist",
                "range"
            ]
        );
        let candles = probe_candles(120);
        let rows = spec.compute(&candles).unwrap();
        // Columns equal the engine's indicator set run on its own.
        let mut set = IndicatorSet::parse("rsi(14) macd(12,26,9)").unwrap();
        let mut ind = vec![0.0; set.width()];
        for (i, c) in candles.iter().enumerate() {
            set.update(c, &mut ind);
            let row = &rows[i * 6..(i + 1) * 6];
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            assert!(same(row[0], ind[0]));
            assert!(same(row[2], ind[1]) && same(row[3], ind[2]) && same(row[4], ind[3]));
            if i > 0 {
                assert_eq!(row[1], (c.close / candles[i - 1].close).ln());
            } else {
                assert!(row[1].is_nan());
            }
            assert_eq!(row[5], (c.high / c.low).ln());
        }
        let first_full = spec.lookback();
        assert!(rows[first_full * 6..].iter().all(|v| v.is_finite()));
        assert!(rows[(first_full - 1) * 6..first_full * 6]
            .iter()
            .any(|v| v.is_nan()));
    }

    #[test]
    fn refuses_bad_specs() {
        assert_eq!(
            FeatureSpec::parse("  ").unwrap_err(),
            FeatureSpecError::Empty
        );
        assert!(matches!(
            FeatureSpec::parse("logret logret").unwrap_err(),
            FeatureSpecError::Duplicate(_)
        ));
        assert!(FeatureSpec::parse("rsi(14").is_err());
        assert!(FeatureSpec::parse("nosuch(3)")
            .unwrap_err()
            .to_string()
            .contains("nosuch"));
    }

    #[test]
    fn probe_is_deterministic_and_finite() {
        let spec = FeatureSpec::parse("logret body logvol adx(14) bbands(20,2)").unwrap();
        let a = spec.probe().unwrap();
        assert_eq!(a, spec.probe().unwrap());
        assert_eq!(a.len(), spec.width());
        assert!(a.iter().all(|v| v.is_finite()));
    }
}
