//! Typed configuration, validated on load.
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), and every value is checked here, once, so the engine never
//! sees a symbol, interval or spec it cannot use.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candlewick_indicators::IndicatorSet;
use candlewick_market::{Interval, Symbol};
use serde::Deserialize;

/// `config/default.toml`, compiled in so `candlewick run` needs no files.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

/// The candles shipped inside the binary, named `bundled:EURUSD-1h`.
pub const BUNDLED_EURUSD_1H: &str = include_str!("../data/EURUSD-1h.csv");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    pub indicators: IndicatorsConfig,
    pub state: StateConfig,
    pub output: OutputConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SourceKind {
    Replay,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub data: DataRef,
    pub symbol: Symbol,
    pub interval: Interval,
}

/// Where candles come from: a file, or data bundled in the binary.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum DataRef {
    Bundled(Bundled),
    File(PathBuf),
}

/// Candle files compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub enum Bundled {
    EurUsd1h,
}

impl Bundled {
    pub fn name(self) -> &'static str {
        match self {
            Bundled::EurUsd1h => "bundled:EURUSD-1h",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Bundled::EurUsd1h => BUNDLED_EURUSD_1H,
        }
    }
}

impl TryFrom<String> for DataRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.strip_prefix("bundled:") {
            Some("EURUSD-1h") => Ok(DataRef::Bundled(Bundled::EurUsd1h)),
            Some(other) => Err(format!(
                "unknown bundled data {other:?}; bundled: EURUSD-1h"
            )),
            None => Ok(DataRef::File(PathBuf::from(s))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsConfig {
    pub spec: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub sync: bool,
    pub checkpoint_every: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub indicators: PathBuf,
}

impl Config {
    /// Reads `path`, or the embedded default when `None`.
    ///
    /// # Errors
    /// An unreadable file, a TOML or type error (with its key), or a value
    /// that fails validation.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                EMBEDDED_DEFAULT.to_owned(),
                "embedded config/default.toml".to_owned(),
            ),
        };
        let config: Config =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{origin}: {}", one_line(&e)))?;
        config.validate().with_context(|| origin.clone())?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        IndicatorSet::parse(&self.indicators.spec).context("indicators.spec")?;
        if self.state.checkpoint_every == 0 {
            bail!("state.checkpoint_every must be at least 1");
        }
        Ok(())
    }
}

/// toml's errors span several lines with a source excerpt; keep the gist.
fn one_line(e: &toml::de::Error) -> String {
    let message = e.message().trim();
    match e.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.source.symbol.as_str(), "EURUSD");
        assert!(matches!(c.source.data, DataRef::Bundled(_)));
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let bad_key = EMBEDDED_DEFAULT.replace("sync = false", "synk = false");
        let e = toml::from_str::<Config>(&bad_key).unwrap_err();
        assert!(e.message().contains("unknown field `synk`"), "{e}");
        let bad_interval = EMBEDDED_DEFAULT.replace("interval = \"1h\"", "interval = \"7m\"");
        assert!(toml::from_str::<Config>(&bad_interval)
            .unwrap_err()
            .message()
            .contains("unknown interval"));
    }
}
