//! The host's reading of a plugin manifest, and parameter checking.
//!
//! The SDK writes the manifest as JSON into the `cw_manifest` custom section
//! (format in `sdk/ABI.md`). The host reads it before compiling the module,
//! checks every field, and then uses it twice:
//!
//! - [`Manifest::resolve_params`] turns `--param name=value` overrides into
//!   the values `cw_init` receives (defaults filled in, each type- and
//!   range-checked; an error names the parameter);
//! - [`Manifest::indicator_spec`] fills numeric parameters into the declared
//!   indicator items (`sma({fast})` -> `sma(10)`), giving the spec whose
//!   columns the host computes and places in each bar, then the model outputs.

use candlewick_indicators::IndicatorSet;
use serde::Deserialize;
use wasmtime::wasmparser::{Parser, Payload};

use crate::error::{ManifestError, ParamError};

/// Integers travel as `f64`, so they must be exact: |v| <= 2^53.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// What a manifest may ask of the host: a hostile one costs at most
/// milliseconds and a bounded amount of memory at load.
pub mod manifest_limits {
    /// Bytes of manifest JSON.
    pub const BYTES: usize = 64 << 10;
    /// Declared parameters.
    pub const PARAMS: usize = 64;
    /// Indicator items.
    pub const INDICATORS: usize = 64;
    /// Model outputs.
    pub const MODELS: usize = 64;
    /// Sum of every number in the filled indicator spec (periods, and
    /// other arguments, which only makes it stricter): indicator memory per
    /// stream grows with the periods.
    pub const PERIOD_SUM: f64 = 250_000.0;
    /// Bytes of `description` and of each parameter's `doc`.
    pub const TEXT: usize = 4096;
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    Int,
    Float,
    Bool,
}

impl ParamType {
    fn describe(self) -> &'static str {
        match self {
            ParamType::Int => "an integer",
            ParamType::Float => "a finite number",
            ParamType::Bool => "true or false",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ParamDecl {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub default: serde_json::Value,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub doc: String,
}

/// A checked manifest. Unknown fields are ignored (later ABI minor versions
/// may add some).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    pub abi: u32,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub params: Vec<ParamDecl>,
    #[serde(default)]
    pub indicators: Vec<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// The parameters' default values, in declaration order (filled by
    /// [`Manifest::from_json`]).
    #[serde(skip)]
    defaults: Vec<f64>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Manifest {
    /// Finds and checks the manifest of a module, without compiling it.
    ///
    /// # Errors
    /// [`ManifestError::Missing`] or [`ManifestError::Duplicate`] for the
    /// section; otherwise as [`Manifest::from_json`]; a module that does not
    /// parse far enough to find the section is [`ManifestError::Json`]'s
    /// sibling, reported as `Invalid { field: "module" }`.
    pub fn from_module(wasm: &[u8]) -> Result<Manifest, ManifestError> {
        let mut found: Option<&[u8]> = None;
        for payload in Parser::new(0).parse_all(wasm) {
            let payload = payload.map_err(|e| invalid("module", e.to_string()))?;
            if let Payload::CustomSection(section) = payload {
                if section.name() == candlewick_sdk::abi::MANIFEST_SECTION {
                    if found.is_some() {
                        return Err(ManifestError::Duplicate);
                    }
                    found = Some(section.data());
                }
            }
        }
        Manifest::from_json(found.ok_or(ManifestError::Missing)?)
    }

    /// Parses and checks a manifest's JSON.
    ///
    /// # Errors
    /// [`ManifestError`] naming the first bad field.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        use manifest_limits as lim;
        if bytes.len() > lim::BYTES {
            return Err(invalid(
                "manifest",
                format!("{} bytes is over the limit of {}", bytes.len(), lim::BYTES),
            ));
        }
        let mut m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if m.abi != candlewick_sdk::abi::ABI_VERSION {
            return Err(ManifestError::Abi(m.abi));
        }
        if !is_name(&m.name) {
            return Err(invalid(
                "name",
                format!("{:?} must be 1-64 of [a-z0-9_-]", m.name),
            ));
        }
        if m.version.is_empty() || m.version.len() > 64 {
            return Err(invalid("version", "must be 1-64 characters"));
        }
        if m.description.len() > lim::TEXT {
            return Err(invalid("description", format!("over {} bytes", lim::TEXT)));
        }
        for (field, n, max) in [
            ("params", m.params.len(), lim::PARAMS),
            ("indicators", m.indicators.len(), lim::INDICATORS),
            ("models", m.models.len(), lim::MODELS),
        ] {
            if n > max {
                return Err(invalid(field, format!("{n} items, at most {max}")));
            }
        }
        let mut defaults = Vec::with_capacity(m.params.len());
        let mut names = std::collections::HashSet::with_capacity(m.params.len());
        for (i, p) in m.params.iter().enumerate() {
            let field = format!("params[{i}] ({})", p.name);
            if !is_name(&p.name) || p.name.contains('-') {
                return Err(invalid(field, "name must be 1-64 of [a-z0-9_]"));
            }
            if !names.insert(p.name.as_str()) {
                return Err(invalid(field, "declared twice"));
            }
            if p.doc.len() > lim::TEXT {
                return Err(invalid(field, format!("doc over {} bytes", lim::TEXT)));
            }
            for (what, bound) in [("min", p.min), ("max", p.max)] {
                if bound.is_some_and(|b| !b.is_finite()) {
                    return Err(invalid(&field, format!("{what} is not finite")));
                }
            }
            if let (Some(lo), Some(hi)) = (p.min, p.max) {
                if lo > hi {
                    return Err(invalid(&field, "min exceeds max"));
                }
            }
            let value = match (&p.default, p.kind) {
                (serde_json::Value::Bool(b), ParamType::Bool) => f64::from(u8::from(*b)),
                (serde_json::Value::Number(n), ParamType::Int | ParamType::Float) => n
                    .as_f64()
                    .ok_or_else(|| invalid(&field, "default is not a number"))?,
                _ => {
                    return Err(invalid(
                        &field,
                        format!("default is not {}", p.kind.describe()),
                    ))
                }
            };
            check_value(p, value).map_err(|e| invalid(&field, format!("default: {e}")))?;
            defaults.push(value);
        }
        m.defaults = defaults;
        let mut models = std::collections::HashSet::with_capacity(m.models.len());
        for (i, model) in m.models.iter().enumerate() {
            if model.is_empty() || model.len() > 64 || !models.insert(model.as_str()) {
                return Err(invalid(
                    format!("models[{i}]"),
                    "empty, over 64 bytes or repeated",
                ));
            }
        }
        // The indicator templates must make a valid spec with the defaults.
        let spec = m
            .indicator_spec(&m.defaults)
            .map_err(|e| invalid("indicators", e))?;
        spec_budget(&spec).map_err(|e| invalid("indicators", e))?;
        if !spec.is_empty() {
            IndicatorSet::parse(&spec)
                .map_err(|e| invalid("indicators", format!("{spec:?}: {e}")))?;
        }
        Ok(m)
    }

    /// Default values, in declaration order.
    pub fn defaults(&self) -> &[f64] {
        &self.defaults
    }

    /// The values `cw_init` receives: defaults with `overrides` (name, text)
    /// applied, each parsed by type and range-checked.
    ///
    /// # Errors
    /// [`ParamError`] naming the parameter.
    pub fn resolve_params<K: AsRef<str>, V: AsRef<str>>(
        &self,
        overrides: &[(K, V)],
    ) -> Result<Vec<f64>, ParamError> {
        let mut values = self.defaults.clone();
        let mut seen = vec![false; values.len()];
        for (name, text) in overrides {
            let (name, text) = (name.as_ref(), text.as_ref().trim());
            let Some(i) = self.params.iter().position(|p| p.name == name) else {
                let declared: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                let declared = if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                };
                return Err(ParamError::Unknown {
                    name: name.to_string(),
                    declared,
                });
            };
            if std::mem::replace(&mut seen[i], true) {
                return Err(ParamError::Duplicate {
                    name: name.to_string(),
                });
            }
            let decl = &self.params[i];
            let type_err = || ParamError::Type {
                name: name.to_string(),
                value: text.to_string(),
                expected: decl.kind.describe(),
            };
            let value = match decl.kind {
                ParamType::Int => text.parse::<i64>().map_err(|_| type_err())? as f64,
                ParamType::Float => text
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(type_err)?,
                ParamType::Bool => match text {
                    "true" | "1" => 1.0,
                    "false" | "0" => 0.0,
                    _ => return Err(type_err()),
                },
            };
            check_value(decl, value).map_err(|_| ParamError::Range {
                name: name.to_string(),
                value,
                min: decl.min.unwrap_or(f64::NEG_INFINITY),
                max: decl.max.unwrap_or(f64::INFINITY),
            })?;
            values[i] = value;
        }
        Ok(values)
    }

    /// The indicator spec for parameter `values`: the declared items with
    /// `{name}` replaced by that int or float parameter's value (shortest
    /// round-trip text, `2.0` as `2`), joined by spaces.
    ///
    /// # Errors
    /// A message when a brace names no numeric parameter or is unclosed.
    pub fn indicator_spec(&self, values: &[f64]) -> Result<String, String> {
        let mut out = String::new();
        for item in &self.indicators {
            if !out.is_empty() {
                out.push(' ');
            }
            let mut rest = item.as_str();
            while let Some(open) = rest.find('{') {
                out.push_str(&rest[..open]);
                let close = rest[open..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in {item:?}"))?
                    + open;
                let name = &rest[open + 1..close];
                let i = self
                    .params
                    .iter()
                    .position(|p| p.name == name && p.kind != ParamType::Bool)
                    .ok_or_else(|| {
                        format!("`{{{name}}}` in {item:?} names no int or float parameter")
                    })?;
                let v = values.get(i).copied().unwrap_or(f64::NAN);
                // `Display` of f64 is the shortest text that round-trips, and
                // prints whole numbers without a fraction (2.0 -> "2").
                out.push_str(&format!("{v}"));
                rest = &rest[close + 1..];
            }
            out.push_str(rest);
        }
        Ok(out)
    }
}

/// Refuses a filled spec whose numbers sum past
/// [`manifest_limits::PERIOD_SUM`], before any indicator allocates its
/// window.
///
/// # Errors
/// A message with the sum and the limit.
pub(crate) fn spec_budget(spec: &str) -> Result<(), String> {
    let mut sum = 0.0f64;
    for token in spec.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E')) {
        if let Ok(v) = token.parse::<f64>() {
            if v.is_finite() {
                sum += v.abs().ceil();
            } else {
                sum = f64::INFINITY;
            }
        }
    }
    if sum > manifest_limits::PERIOD_SUM {
        return Err(format!(
            "the indicators' periods sum to {sum}, over the limit of {}",
            manifest_limits::PERIOD_SUM
        ));
    }
    Ok(())
}

/// Checks a value against its declaration's type and range.
fn check_value(p: &ParamDecl, v: f64) -> Result<(), String> {
    if !v.is_finite() {
        return Err("not finite".into());
    }
    if p.kind == ParamType::Int && (v.fract() != 0.0 || v.abs() > MAX_EXACT_INT) {
        return Err(format!("{v} is not an integer within ±2^53"));
    }
    if p.min.is_some_and(|lo| v < lo) || p.max.is_some_and(|hi| v > hi) {
        return Err(format!("{v} is out of range"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMA: &str = r#"{"abi":1,"name":"sma_cross","version":"0.1.0","params":[
        {"name":"fast","type":"int","default":10,"min":1,"max":1000,"doc":""},
        {"name":"slow","type":"int","default":20,"min":2,"max":5000},
        {"name":"scale","type":"float","default":0.5},
        {"name":"long_only","type":"bool","default":true}],
        "indicators":["sma({fast})","sma({slow})"],"models":["p_up"],"future_field":1}"#;

    fn sma() -> Manifest {
        Manifest::from_json(SMA.as_bytes()).expect("valid manifest")
    }

    #[test]
    fn parses_defaults_and_fills_indicator_templates() {
        let m = sma();
        assert_eq!(m.defaults(), [10.0, 20.0, 0.5, 1.0]);
        assert_eq!(
            m.indicator_spec(m.defaults()).as_deref(),
            Ok("sma(10) sma(20)")
        );
    }

    #[test]
    fn overrides_are_parsed_by_type() {
        let v = sma()
            .resolve_params(&[("slow", "30"), ("long_only", "false"), ("scale", "1e-3")])
            .unwrap();
        assert_eq!(v, [10.0, 30.0, 0.001, 0.0]);
    }

    #[test]
    fn a_bad_param_is_an_error_naming_it() {
        let m = sma();
        let e = m.resolve_params(&[("fsat", "3")]).unwrap_err().to_string();
        assert!(e.contains("`fsat`") && e.contains("fast, slow"), "{e}");
        let e = m
            .resolve_params(&[("fast", "ten")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`fast`") && e.contains("integer"), "{e}");
        let e = m.resolve_params(&[("fast", "0")]).unwrap_err().to_string();
        assert!(
            e.contains("`fast`") && e.contains("outside [1, 1000]"),
            "{e}"
        );
        assert!(matches!(
            m.resolve_params(&[("fast", "3"), ("fast", "4")]),
            Err(ParamError::Duplicate { .. })
        ));
        assert!(m.resolve_params(&[("scale", "NaN")]).is_err());
    }

    #[test]
    fn refuses_bad_manifests() {
        let bad = |s: &str| Manifest::from_json(s.as_bytes()).unwrap_err();
        assert_eq!(
            bad(r#"{"abi":2,"name":"x","version":"1"}"#),
            ManifestError::Abi(2)
        );
        assert!(matches!(
            bad(r#"{"abi":1,"name":"X Y","version":"1"}"#),
            ManifestError::Invalid { .. }
        ));
        assert!(matches!(bad("{"), ManifestError::Json(_)));
        let e = bad(
            r#"{"abi":1,"name":"x","version":"1","params":[{"name":"p","type":"int","default":1.5}]}"#,
        );
        assert!(e.to_string().contains("integer"), "{e}");
        let e = bad(
            r#"{"abi":1,"name":"x","version":"1","params":[{"name":"p","type":"int","default":5,"max":3}]}"#,
        );
        assert!(e.to_string().contains("out of range"), "{e}");
        let e = bad(r#"{"abi":1,"name":"x","version":"1","indicators":["sma({nope})"]}"#);
        assert!(
            e.to_string().contains("names no int or float parameter"),
            "{e}"
        );
        let e = bad(r#"{"abi":1,"name":"x","version":"1","indicators":["zzz(3)"]}"#);
        assert!(e.to_string().starts_with("indicators"), "{e}");
    }

    #[test]
    fn manifest_limits_are_enforced() {
        use std::fmt::Write;
        let with = |extra: &str| format!(r#"{{"abi":1,"name":"x","version":"1"{extra}}}"#);
        let bad = |s: String| Manifest::from_json(s.as_bytes()).unwrap_err().to_string();
        let mut params = String::new();
        for i in 0..65 {
            let sep = if i == 0 { "" } else { "," };
            write!(params, r#"{sep}{{"name":"p{i}","type":"int","default":1}}"#).unwrap();
        }
        let e = bad(with(&format!(r#","params":[{params}]"#)));
        assert!(e.contains("params") && e.contains("at most 64"), "{e}");
        let items = ["\"sma(2)\""; 65].join(",");
        let e = bad(with(&format!(r#","indicators":[{items}]"#)));
        assert!(e.contains("indicators") && e.contains("at most 64"), "{e}");
        // Each period is allowed; together they are too much.
        let items = ["\"sma(100000)\""; 3].join(",");
        let e = bad(with(&format!(r#","indicators":[{items}]"#)));
        assert!(e.contains("sum to 300000"), "{e}");
        let huge = with(&format!(r#","description":"{}""#, "d".repeat(70_000)));
        assert!(bad(huge).contains("over the limit"));
        let e = bad(with(&format!(r#","description":"{}""#, "d".repeat(5000))));
        assert!(e.contains("description"), "{e}");
    }

    #[test]
    fn a_hostile_manifest_costs_little() {
        // 64 KiB of parameters, all distinct, at the count limit: quick.
        use std::fmt::Write;
        let mut params = String::new();
        for i in 0..64 {
            let sep = if i == 0 { "" } else { "," };
            write!(params, r#"{sep}{{"name":"p{i}","type":"int","default":1}}"#).unwrap();
        }
        let json = format!(r#"{{"abi":1,"name":"x","version":"1","params":[{params}]}}"#);
        let m = Manifest::from_json(json.as_bytes()).unwrap();
        assert_eq!(m.params.len(), 64);
        let dup = json.replace(r#""name":"p63""#, r#""name":"p0""#);
        let e = Manifest::from_json(dup.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("declared twice"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_a_manifest_or_an_error(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Manifest::from_json(&bytes);
            let _ = Manifest::from_module(&bytes);
        }

        #[test]
        fn any_edit_of_a_real_manifest_is_checked_without_panic(at in 0usize..500, cut in 0usize..30, with in "[0-9a-z_{}()\\[\\]\",:.-]{0,16}") {
            let at = at.min(SMA.len());
            let end = (at + cut).min(SMA.len());
            let text = format!("{}{with}{}", &SMA[..at], &SMA[end..]);
            if let Ok(m) = Manifest::from_json(text.as_bytes()) {
                let _ = m.indicator_spec(m.defaults());
                let _ = m.resolve_params(&[("fast", "7")]);
            }
        }
    }
}
