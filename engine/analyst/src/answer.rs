//! [`Analysis`]: the answer the model must give, checked strictly.
//!
//! The model is asked (`response_format: json_schema`, [`json_schema`]) for
//! exactly
//!
//! ```json
//! {"bias":"bullish","confidence":0.7,"horizon":"1-3 days",
//!  "rationale":"...","risks":["..."]}
//! ```
//!
//! and [`Analysis::parse`] accepts nothing else: no other field, `bias` one
//! of three words, `confidence` a number in `[0, 1]`, texts neither empty
//! nor longer than their bounds, at most [`MAX_RISKS`] risks. A server
//! that ignores `response_format` (some local ones) is held to the same
//! rules: an answer that fails them is never patched or defaulted.

use serde::{Deserialize, Serialize};

/// Longest `horizon`, in characters.
pub const MAX_HORIZON: usize = 64;
/// Longest `rationale`, in characters.
pub const MAX_RATIONALE: usize = 2000;
/// Most entries in `risks`.
pub const MAX_RISKS: usize = 10;
/// Longest entry of `risks`, in characters.
pub const MAX_RISK: usize = 300;

/// The model's view of a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bias {
    Bullish,
    Bearish,
    Neutral,
}

impl Bias {
    pub fn as_str(self) -> &'static str {
        match self {
            Bias::Bullish => "bullish",
            Bias::Bearish => "bearish",
            Bias::Neutral => "neutral",
        }
    }
}

/// A validated analysis (see the module docs for the rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analysis {
    pub bias: Bias,
    /// In `[0, 1]`.
    pub confidence: f64,
    /// How far ahead the view holds, in the model's words ("4h", "1-3 days").
    pub horizon: String,
    pub rationale: String,
    pub risks: Vec<String>,
}

impl Analysis {
    /// Parses and checks the model's answer (the message content).
    ///
    /// ```
    /// use candlewick_analyst::Analysis;
    /// let ok = r#"{"bias":"bearish","confidence":0.6,"horizon":"1d","rationale":"RSI 78","risks":[]}"#;
    /// assert_eq!(Analysis::parse(ok).unwrap().confidence, 0.6);
    /// assert!(Analysis::parse(r#"{"bias":"up","confidence":0.6,"horizon":"1d","rationale":"x","risks":[]}"#).is_err());
    /// assert!(Analysis::parse(&ok.replace("0.6", "1.5")).is_err());
    /// ```
    ///
    /// # Errors
    /// The reason, in words, for the record of a failed analysis.
    pub fn parse(content: &str) -> Result<Analysis, String> {
        let a: Analysis = serde_json::from_str(content.trim())
            .map_err(|e| format!("the answer is not the analysis JSON: {e}"))?;
        a.check()?;
        Ok(a)
    }

    fn check(&self) -> Result<(), String> {
        if !(self.confidence.is_finite() && (0.0..=1.0).contains(&self.confidence)) {
            return Err(format!("confidence {} is not in [0, 1]", self.confidence));
        }
        text("horizon", &self.horizon, MAX_HORIZON)?;
        text("rationale", &self.rationale, MAX_RATIONALE)?;
        if self.risks.len() > MAX_RISKS {
            return Err(format!("{} risks, more than {MAX_RISKS}", self.risks.len()));
        }
        for (i, r) in self.risks.iter().enumerate() {
            text(&format!("risks[{i}]"), r, MAX_RISK)?;
        }
        Ok(())
    }
}

fn text(field: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.trim().chars().count();
    if n == 0 {
        Err(format!("{field} is empty"))
    } else if n > max {
        Err(format!("{field} is {n} characters, more than {max}"))
    } else {
        Ok(())
    }
}

/// The JSON Schema sent as `response_format.json_schema.schema` (strict
/// mode: every property required, no others).
pub fn json_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["bias", "confidence", "horizon", "rationale", "risks"],
        "properties": {
            "bias": {"type": "string", "enum": ["bullish", "bearish", "neutral"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "horizon": {"type": "string", "maxLength": MAX_HORIZON},
            "rationale": {"type": "string", "maxLength": MAX_RATIONALE},
            "risks": {
                "type": "array",
                "maxItems": MAX_RISKS,
                "items": {"type": "string", "maxLength": MAX_RISK}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        r#"{"bias":"neutral","confidence":0.5,"horizon":"4h","rationale":"flat","risks":["news"]}"#;

    #[test]
    fn accepts_the_schema_and_nothing_else() {
        let a = Analysis::parse(OK).unwrap();
        assert_eq!(a.bias, Bias::Neutral);
        for (bad, why) in [
            (
                OK.replace("\"risks\"", "\"extra\":1,\"risks\""),
                "unknown field",
            ),
            (OK.replace("0.5", "-0.1"), "not in [0, 1]"),
            (OK.replace("\"4h\"", "\"\""), "horizon is empty"),
            (OK.replace(",\"risks\":[\"news\"]", ""), "missing field"),
            (OK.replace("neutral", "sideways"), "unknown variant"),
            ("not json".to_owned(), "not the analysis JSON"),
            (
                OK.replace("[\"news\"]", &format!("[{}]", ["\"r\""; 11].join(","))),
                "11 risks",
            ),
        ] {
            let e = Analysis::parse(&bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_schema_requires_every_field_it_names() {
        let s = json_schema();
        assert_eq!(s["required"].as_array().unwrap().len(), 5);
        assert_eq!(s["additionalProperties"], false);
    }
}
