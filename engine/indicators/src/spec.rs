//! The indicator spec language: `sma(20) macd(12,26,9) obv ...`.
//!
//! Items are separated by whitespace; an item is a name, optionally
//! followed by comma-separated numeric arguments in parentheses (spaces
//! inside the parentheses are allowed and dropped). An item's canonical
//! text (name and arguments as written, without spaces) names its output
//! columns: `macd(12,26,9).signal`.

use std::fmt;

use crate::directional::{Adx, DiSide, DirectionalIndex};
use crate::momentum::{Cci, Macd, Mom, Roc, Rsi, Stoch, StochRsi, Willr};
use crate::overlap::{Bbands, Dema, Ema, Sma, Tema, Wma};
use crate::volatility::{Atr, Stddev};
use crate::volume::{Mfi, Obv, Vwap};
use crate::Indicator;

/// Largest period accepted, as in TA-Lib.
pub const MAX_PERIOD: usize = 100_000;

/// A spec that cannot be built, with the offending item.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    #[error("empty indicator spec: give items such as \"sma(20) rsi(14)\"")]
    Empty,
    #[error("{item:?}: {reason}")]
    Syntax { item: String, reason: &'static str },
    #[error("unknown indicator {name:?}; known: {known}")]
    UnknownName { name: String, known: String },
    #[error("{item}: expected {expected}")]
    Arity { item: String, expected: String },
    #[error("{item}: {param} must be {rule}, got {value}")]
    BadArgument {
        item: String,
        param: &'static str,
        rule: String,
        value: String,
    },
    #[error("{item} appears twice; each item names its own output columns")]
    Duplicate { item: String },
}

#[derive(Clone, Copy)]
enum Rule {
    /// An integer period in `min..=MAX_PERIOD`.
    Period(usize),
    /// Any finite real (standard-deviation multipliers).
    Real,
}

struct Param {
    name: &'static str,
    rule: Rule,
    /// Used when the argument is omitted; `None` makes it required.
    default: Option<f64>,
}

/// A kind of indicator: how it is written, its parameters, its outputs.
struct Kind {
    name: &'static str,
    params: &'static [Param],
    /// Output field names; empty for a single unnamed output.
    fields: &'static [&'static str],
    build: fn(&[f64]) -> Indicator,
}

const fn period(name: &'static str, min: usize) -> Param {
    Param {
        name,
        rule: Rule::Period(min),
        default: None,
    }
}

const fn real(name: &'static str, default: f64) -> Param {
    Param {
        name,
        rule: Rule::Real,
        default: Some(default),
    }
}

const PERIOD2: &[Param] = &[period("period", 2)];
const PERIOD1: &[Param] = &[period("period", 1)];

/// Every indicator the spec language knows. TA-Lib's minimum periods.
static KINDS: &[Kind] = &[
    Kind {
        name: "sma",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Sma(Sma::new(a[0] as usize)),
    },
    Kind {
        name: "ema",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Ema(Ema::new(a[0] as usize)),
    },
    Kind {
        name: "wma",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Wma(Wma::new(a[0] as usize)),
    },
    Kind {
        name: "dema",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Dema(Dema::new(a[0] as usize)),
    },
    Kind {
        name: "tema",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Tema(Tema::new(a[0] as usize)),
    },
    Kind {
        name: "bbands",
        params: &[
            period("period", 2),
            real("devs", 2.0),
            real("devs_down", f64::NAN),
        ],
        fields: &["upper", "middle", "lower"],
        build: |a| {
            Indicator::Bbands(Bbands::new(
                a[0] as usize,
                a[1],
                if a[2].is_nan() { a[1] } else { a[2] },
            ))
        },
    },
    Kind {
        name: "rsi",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Rsi(Rsi::new(a[0] as usize)),
    },
    Kind {
        name: "macd",
        params: &[period("fast", 2), period("slow", 2), period("signal", 1)],
        fields: &["macd", "signal", "hist"],
        build: |a| Indicator::Macd(Macd::new(a[0] as usize, a[1] as usize, a[2] as usize)),
    },
    Kind {
        name: "roc",
        params: PERIOD1,
        fields: &[],
        build: |a| Indicator::Roc(Roc::new(a[0] as usize)),
    },
    Kind {
        name: "mom",
        params: PERIOD1,
        fields: &[],
        build: |a| Indicator::Mom(Mom::new(a[0] as usize)),
    },
    Kind {
        name: "cci",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Cci(Cci::new(a[0] as usize)),
    },
    Kind {
        name: "willr",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Willr(Willr::new(a[0] as usize)),
    },
    Kind {
        name: "stoch",
        params: &[period("fastk", 1), period("slowk", 1), period("slowd", 1)],
        fields: &["k", "d"],
        build: |a| Indicator::Stoch(Stoch::new(a[0] as usize, a[1] as usize, a[2] as usize)),
    },
    Kind {
        name: "stochrsi",
        params: &[period("period", 2), period("fastk", 1), period("fastd", 1)],
        fields: &["k", "d"],
        build: |a| Indicator::StochRsi(StochRsi::new(a[0] as usize, a[1] as usize, a[2] as usize)),
    },
    Kind {
        name: "atr",
        params: PERIOD1,
        fields: &[],
        build: |a| Indicator::Atr(Atr::new(a[0] as usize, false)),
    },
    // TA-Lib's NATR(1) returns the raw true range, not a percent; refused here.
    Kind {
        name: "natr",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Atr(Atr::new(a[0] as usize, true)),
    },
    Kind {
        name: "stddev",
        params: &[period("period", 2), real("devs", 1.0)],
        fields: &[],
        build: |a| Indicator::Stddev(Stddev::new(a[0] as usize, a[1])),
    },
    Kind {
        name: "obv",
        params: &[],
        fields: &[],
        build: |_| Indicator::Obv(Obv::new()),
    },
    Kind {
        name: "mfi",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Mfi(Mfi::new(a[0] as usize)),
    },
    Kind {
        name: "vwap",
        params: &[],
        fields: &[],
        build: |_| Indicator::Vwap(Vwap::new()),
    },
    Kind {
        name: "plus_di",
        params: PERIOD1,
        fields: &[],
        build: |a| Indicator::Di(DirectionalIndex::new(a[0] as usize, DiSide::Plus)),
    },
    Kind {
        name: "minus_di",
        params: PERIOD1,
        fields: &[],
        build: |a| Indicator::Di(DirectionalIndex::new(a[0] as usize, DiSide::Minus)),
    },
    Kind {
        name: "adx",
        params: PERIOD2,
        fields: &[],
        build: |a| Indicator::Adx(Adx::new(a[0] as usize)),
    },
];

/// One parsed item: its canonical text, output columns and a fresh indicator.
#[derive(Debug, Clone)]
pub struct SpecItem {
    pub text: String,
    pub columns: Vec<String>,
    pub indicator: Indicator,
}

/// Parses a whole spec into its items, in order.
///
/// # Errors
/// [`SpecError`] for the first bad item: unknown name, wrong number of
/// arguments, an argument out of range, bad syntax, or a duplicate.
pub fn parse_spec(spec: &str) -> Result<Vec<SpecItem>, SpecError> {
    let mut items: Vec<SpecItem> = Vec::new();
    for raw in tokenize(spec)? {
        let item = parse_item(&raw)?;
        if items.iter().any(|i| i.text == item.text) {
            return Err(SpecError::Duplicate { item: item.text });
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(SpecError::Empty);
    }
    Ok(items)
}

/// Splits on whitespace outside parentheses; drops spaces inside them.
fn tokenize(spec: &str) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for ch in spec.chars() {
        match ch {
            c if c.is_whitespace() && depth == 0 => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c if c.is_whitespace() => {}
            '(' => {
                depth += 1;
                current.push(ch);
            }
            ')' => {
                if depth == 0 {
                    return Err(SpecError::Syntax {
                        item: current,
                        reason: "')' without '('",
                    });
                }
                depth -= 1;
                current.push(ch);
            }
            c => current.push(c),
        }
    }
    if depth != 0 {
        return Err(SpecError::Syntax {
            item: current,
            reason: "'(' is never closed",
        });
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

fn parse_item(raw: &str) -> Result<SpecItem, SpecError> {
    let (name, args) = match raw.split_once('(') {
        None => (raw, Vec::new()),
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .filter(|i| !i.contains(['(', ')']))
                .ok_or(SpecError::Syntax {
                    item: raw.to_owned(),
                    reason: "expected name(arg,arg,...)",
                })?;
            let args = if inner.is_empty() {
                Vec::new()
            } else {
                inner.split(',').collect()
            };
            (name, args)
        }
    };
    let name = name.to_ascii_lowercase();
    let kind = KINDS
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| SpecError::UnknownName {
            name: name.chars().take(32).collect(),
            known: KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(" "),
        })?;
    let text = if raw.contains('(') {
        format!("{name}({})", args.join(","))
    } else {
        name.clone()
    };
    let values = bind_args(kind, &text, &args)?;
    let columns = if kind.fields.is_empty() {
        vec![text.clone()]
    } else {
        kind.fields.iter().map(|f| format!("{text}.{f}")).collect()
    };
    Ok(SpecItem {
        indicator: (kind.build)(&values),
        columns,
        text,
    })
}

fn bind_args(kind: &Kind, item: &str, args: &[&str]) -> Result<Vec<f64>, SpecError> {
    let required = kind.params.iter().filter(|p| p.default.is_none()).count();
    if args.len() < required || args.len() > kind.params.len() {
        return Err(SpecError::Arity {
            item: item.to_owned(),
            expected: signature(kind),
        });
    }
    let mut values = Vec::with_capacity(kind.params.len());
    for (i, param) in kind.params.iter().enumerate() {
        let value = match args.get(i) {
            None => param.default.unwrap_or(f64::NAN),
            Some(text) => check_arg(item, param, text)?,
        };
        values.push(value);
    }
    Ok(values)
}

fn check_arg(item: &str, param: &Param, text: &str) -> Result<f64, SpecError> {
    let bad = |rule: String| SpecError::BadArgument {
        item: item.to_owned(),
        param: param.name,
        rule,
        value: text.chars().take(24).collect(),
    };
    match param.rule {
        Rule::Period(min) => {
            let rule = || format!("an integer in {min}..={MAX_PERIOD}");
            let v: usize = text.parse().map_err(|_| bad(rule()))?;
            if (min..=MAX_PERIOD).contains(&v) {
                Ok(v as f64)
            } else {
                Err(bad(rule()))
            }
        }
        Rule::Real => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(bad("a finite number".to_owned())),
        },
    }
}

/// `macd(fast, slow, signal)` with defaults shown as `name=value`.
fn signature(kind: &Kind) -> String {
    let params: Vec<String> = kind
        .params
        .iter()
        .map(|p| match p.default {
            Some(d) if d.is_nan() => format!("[{}]", p.name),
            Some(d) => format!("{}={d}", p.name),
            None => p.name.to_owned(),
        })
        .collect();
    if params.is_empty() {
        format!("{} (no arguments)", kind.name)
    } else {
        format!("{}({})", kind.name, params.join(", "))
    }
}

/// A one-line summary of every known indicator, for `--help`.
pub fn catalogue() -> String {
    KINDS.iter().map(signature).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for SpecItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(spec: &str) -> String {
        parse_spec(spec).unwrap_err().to_string()
    }

    #[test]
    fn names_columns_by_item_text() {
        let items = parse_spec("sma(20)  MACD(12, 26, 9)\tobv bbands(20,2)").unwrap();
        let columns: Vec<&str> = items
            .iter()
            .flat_map(|i| i.columns.iter().map(String::as_str))
            .collect();
        assert_eq!(
            columns,
            [
                "sma(20)",
                "macd(12,26,9).macd",
                "macd(12,26,9).signal",
                "macd(12,26,9).hist",
                "obv",
                "bbands(20,2).upper",
                "bbands(20,2).middle",
                "bbands(20,2).lower"
            ]
        );
    }

    #[test]
    fn refuses_bad_specs_with_the_item() {
        assert_eq!(
            err(""),
            "empty indicator spec: give items such as \"sma(20) rsi(14)\""
        );
        assert!(err("foo(3)").starts_with("unknown indicator \"foo\"; known: sma ema"));
        assert_eq!(
            err("sma(0)"),
            "sma(0): period must be an integer in 2..=100000, got 0"
        );
        assert_eq!(
            err("sma(2.5)"),
            "sma(2.5): period must be an integer in 2..=100000, got 2.5"
        );
        assert_eq!(
            err("macd(12,26)"),
            "macd(12,26): expected macd(fast, slow, signal)"
        );
        assert_eq!(err("obv(3)"), "obv(3): expected obv (no arguments)");
        assert_eq!(
            err("bbands(20,x)"),
            "bbands(20,x): devs must be a finite number, got x"
        );
        assert_eq!(err("sma(20"), "\"sma(20\": '(' is never closed");
        assert_eq!(
            err("sma(20) sma( 20 )"),
            "sma(20) appears twice; each item names its own output columns"
        );
    }

    #[test]
    fn optional_arguments_take_their_defaults() {
        assert!(parse_spec("bbands(20) stddev(10) bbands(20,2,1.5)").is_ok());
        assert!(catalogue().contains("bbands(period, devs=2, [devs_down])"));
    }
}
