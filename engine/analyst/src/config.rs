//! `[analyst]`: the settings as written in the config file
//! ([`AnalystConfig`], checked by [`AnalystConfig::validate`]) and as the
//! analyst uses them ([`Settings`], the key and the prompt read).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use candlewick_notify::{NotifyError, Retry, Secret};
use serde::Deserialize;
use url::Url;

use crate::AnalystError;

/// The prompt shipped in `config/analyst-prompt.txt`, used when
/// `prompt` is not set.
pub const DEFAULT_PROMPT: &str = include_str!("../../../config/analyst-prompt.txt");

/// Upper bounds of the settings.
pub mod bounds {
    pub const CONCURRENCY: usize = 64;
    pub const REQUESTS_PER_MIN: f64 = 100_000.0;
    pub const TOKENS_PER_MIN: f64 = 1e9;
    pub const TIMEOUT_MS: u64 = 600_000;
    pub const MAX_RETRIES: u32 = 10;
    pub const MAX_OUTPUT_TOKENS: u32 = 16_384;
    pub const EVERY_MINUTES: u64 = 7 * 24 * 60;
    pub const PROMPT_BYTES: usize = 64 * 1024;
    pub const SIGNALS: usize = 100;
}

/// One model's price, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost in USD of a call that used these tokens.
    pub fn cost(&self, tokens_in: u64, tokens_out: u64) -> f64 {
        (tokens_in as f64 * self.input_per_mtok + tokens_out as f64 * self.output_per_mtok) / 1e6
    }
}

/// The `[analyst]` section. Absent: the analyst is off. Every field but
/// `base_url` and `model` has a default (README "Analyst" lists them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalystConfig {
    /// An OpenAI-compatible API root, e.g. `https://api.openai.com/v1`
    /// or `http://127.0.0.1:8080/v1` (llama.cpp, Ollama, vLLM): `https`,
    /// or plain `http` to a loopback address; no credentials in it.
    pub base_url: String,
    pub model: String,
    /// Environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// File holding the API key (one trailing newline removed).
    pub api_key_file: Option<PathBuf>,
    /// Analyses in flight at once. Default 4.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Requests a minute (a token bucket holding one minute's worth).
    /// Default 60.
    #[serde(default = "d_rpm")]
    pub requests_per_min: f64,
    /// Tokens (in + out, estimated before a call, corrected after) a
    /// minute. Default 200,000.
    #[serde(default = "d_tpm")]
    pub tokens_per_min: f64,
    /// One request's limit, connect included. Default 60,000.
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries after a timeout, a refused connection, a 5xx or a 429.
    /// Default 3.
    #[serde(default = "d_retries")]
    pub max_retries: u32,
    /// First backoff; it doubles per retry, with jitter, up to
    /// `backoff_max_ms`. Defaults 500 and 30,000.
    #[serde(default = "d_backoff_ms")]
    pub backoff_ms: u64,
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` waited out; a longer one fails the attempt
    /// as rate limited. Default 120.
    #[serde(default = "d_retry_after")]
    pub max_retry_after_s: u64,
    /// `max_tokens` of each request. Default 600.
    #[serde(default = "d_out_tokens")]
    pub max_output_tokens: u32,
    /// USD a UTC day; reached, no call is made until the next day. Needs
    /// a price for `model`. Absent: no budget.
    pub daily_budget_usd: Option<f64>,
    /// `[analyst.prices."MODEL"]`: `input_per_mtok`, `output_per_mtok`.
    #[serde(default)]
    pub prices: BTreeMap<String, Price>,
    /// Prompt template file (`{{symbol}}` is replaced). Default: the
    /// shipped `config/analyst-prompt.txt`.
    pub prompt: Option<PathBuf>,
    /// `run`: analyse every symbol this often; 0 = only on events.
    /// Default 60.
    #[serde(default = "d_every")]
    pub every_minutes: u64,
    /// `run`: analyse a symbol when one of these strategies signals on it.
    #[serde(default)]
    pub on_signals: Vec<String>,
    /// `run` with `[[models]]`: analyse a symbol when a model's prediction
    /// for it is this decided, `|p_up - p_down| >= on_prediction_score`
    /// (0 to 1). Absent: predictions trigger nothing.
    pub on_prediction_score: Option<f64>,
    /// `run`: after an event-triggered analysis of a symbol, further
    /// events for it wait this long. Default 300.
    #[serde(default = "d_cooldown")]
    pub trigger_cooldown_s: u64,
    /// Symbols analysed; empty (the default) = every symbol the engine runs.
    #[serde(default)]
    pub symbols: Vec<String>,
    /// Recent signals of each strategy in the context. Default 5.
    #[serde(default = "d_signals")]
    pub signals: usize,
    /// Analyses older than this are deleted. Default 30.
    #[serde(default = "d_retention_days")]
    pub retention_days: u64,
    /// ... and at most this many are kept per symbol. Default 1,000.
    #[serde(default = "d_retention_count")]
    pub retention_per_symbol: usize,
    /// Results directory. Default: `analyst` in state.path.
    pub path: Option<PathBuf>,
}

fn d_concurrency() -> usize {
    4
}
fn d_rpm() -> f64 {
    60.0
}
fn d_tpm() -> f64 {
    200_000.0
}
fn d_timeout_ms() -> u64 {
    60_000
}
fn d_retries() -> u32 {
    3
}
fn d_backoff_ms() -> u64 {
    500
}
fn d_backoff_max_ms() -> u64 {
    30_000
}
fn d_retry_after() -> u64 {
    120
}
fn d_out_tokens() -> u32 {
    600
}
fn d_every() -> u64 {
    60
}
fn d_cooldown() -> u64 {
    300
}
fn d_signals() -> usize {
    5
}
fn d_retention_days() -> u64 {
    30
}
fn d_retention_count() -> usize {
    1000
}

/// The results directory inside the engine's state directory.
pub const RESULTS_DIR: &str = "analyst";

impl AnalystConfig {
    /// The results directory: `path`, or `analyst` in `state_path`.
    pub fn results_path(&self, state_path: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| state_path.join(RESULTS_DIR))
    }

    /// Checks every setting without reading the key or the prompt.
    ///
    /// # Errors
    /// [`AnalystError::Url`] or [`AnalystError::Config`] naming the field.
    pub fn validate(&self) -> Result<(), AnalystError> {
        check_base_url(&self.base_url)?;
        if self.model.trim().is_empty() || self.model.len() > 200 {
            return Err(AnalystError::config(
                "model",
                "must be a model name (1 to 200 bytes)",
            ));
        }
        if self.api_key_env.is_some() && self.api_key_file.is_some() {
            return Err(AnalystError::config(
                "api_key_env",
                "give api_key_env or api_key_file, not both",
            ));
        }
        if !(1..=bounds::CONCURRENCY).contains(&self.concurrency) {
            return Err(AnalystError::config(
                "concurrency",
                format!("must be from 1 to {}", bounds::CONCURRENCY),
            ));
        }
        for (field, v, max) in [
            (
                "requests_per_min",
                self.requests_per_min,
                bounds::REQUESTS_PER_MIN,
            ),
            (
                "tokens_per_min",
                self.tokens_per_min,
                bounds::TOKENS_PER_MIN,
            ),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= max) {
                return Err(AnalystError::config(
                    field,
                    format!("must be a number above 0, at most {max}"),
                ));
            }
        }
        if !(1..=bounds::TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(AnalystError::config(
                "timeout_ms",
                format!("must be from 1 to {}", bounds::TIMEOUT_MS),
            ));
        }
        if self.max_retries > bounds::MAX_RETRIES {
            return Err(AnalystError::config(
                "max_retries",
                format!("must be at most {}", bounds::MAX_RETRIES),
            ));
        }
        if self.backoff_ms == 0 || self.backoff_max_ms < self.backoff_ms {
            return Err(AnalystError::config(
                "backoff_ms",
                "must be above 0 and at most backoff_max_ms",
            ));
        }
        if self.backoff_max_ms > bounds::TIMEOUT_MS {
            return Err(AnalystError::config(
                "backoff_max_ms",
                format!("must be at most {}", bounds::TIMEOUT_MS),
            ));
        }
        if self.max_retry_after_s > 3600 {
            return Err(AnalystError::config(
                "max_retry_after_s",
                "must be at most 3600",
            ));
        }
        if !(1..=bounds::MAX_OUTPUT_TOKENS).contains(&self.max_output_tokens) {
            return Err(AnalystError::config(
                "max_output_tokens",
                format!("must be from 1 to {}", bounds::MAX_OUTPUT_TOKENS),
            ));
        }
        if (self.max_output_tokens as f64) >= self.tokens_per_min {
            return Err(AnalystError::config(
                "tokens_per_min",
                "must be more than max_output_tokens (one request must fit in a minute)",
            ));
        }
        for (model, p) in &self.prices {
            for v in [p.input_per_mtok, p.output_per_mtok] {
                if !(v.is_finite() && (0.0..=1e6).contains(&v)) {
                    return Err(AnalystError::config(
                        &format!("prices.{model:?}"),
                        "prices must be USD per million tokens, from 0 to 1e6",
                    ));
                }
            }
        }
        if let Some(b) = self.daily_budget_usd {
            if !(b.is_finite() && (0.0..=1e6).contains(&b)) {
                return Err(AnalystError::config(
                    "daily_budget_usd",
                    "must be from 0 to 1e6",
                ));
            }
            if !self.prices.contains_key(&self.model) {
                return Err(AnalystError::config(
                    "daily_budget_usd",
                    format!(
                        "needs a price for model {:?}: add [analyst.prices.{:?}] with \
                         input_per_mtok and output_per_mtok",
                        self.model, self.model
                    ),
                ));
            }
        }
        if self.every_minutes > bounds::EVERY_MINUTES {
            return Err(AnalystError::config(
                "every_minutes",
                format!("must be at most {} (a week)", bounds::EVERY_MINUTES),
            ));
        }
        if self
            .on_prediction_score
            .is_some_and(|v| !(v.is_finite() && v > 0.0 && v <= 1.0))
        {
            return Err(AnalystError::config(
                "on_prediction_score",
                "must be a number above 0, at most 1",
            ));
        }
        if self.trigger_cooldown_s > 86_400 {
            return Err(AnalystError::config(
                "trigger_cooldown_s",
                "must be at most 86400",
            ));
        }
        if self.signals > bounds::SIGNALS {
            return Err(AnalystError::config(
                "signals",
                format!("must be at most {}", bounds::SIGNALS),
            ));
        }
        if self.retention_days == 0 || self.retention_per_symbol == 0 {
            return Err(AnalystError::config(
                "retention_days",
                "retention_days and retention_per_symbol must be at least 1",
            ));
        }
        Ok(())
    }

    /// The settings with the key and the prompt read.
    ///
    /// # Errors
    /// As [`AnalystConfig::validate`]; [`AnalystError::Key`] naming the
    /// variable or file (never the key); [`AnalystError::Prompt`].
    pub fn build(&self) -> Result<Settings, AnalystError> {
        self.validate()?;
        let base_url = check_base_url(&self.base_url)?;
        let api_key = match (&self.api_key_env, &self.api_key_file) {
            (Some(var), _) => Some(Secret::from_env(var).map_err(key_error)?),
            (None, Some(path)) => Some(Secret::from_file(path).map_err(key_error)?),
            (None, None) => None,
        };
        let prompt = match &self.prompt {
            Some(path) => read_prompt(path)?,
            None => DEFAULT_PROMPT.to_owned(),
        };
        Ok(Settings {
            base_url,
            model: self.model.clone(),
            api_key,
            concurrency: self.concurrency,
            requests_per_min: self.requests_per_min,
            tokens_per_min: self.tokens_per_min,
            timeout: Duration::from_millis(self.timeout_ms),
            max_retries: self.max_retries,
            retry: Retry {
                initial: Duration::from_millis(self.backoff_ms),
                max: Duration::from_millis(self.backoff_max_ms),
            },
            max_retry_after: Duration::from_secs(self.max_retry_after_s),
            max_output_tokens: self.max_output_tokens,
            daily_budget_usd: self.daily_budget_usd,
            price: self.prices.get(&self.model).copied(),
            prompt,
        })
    }
}

fn read_prompt(path: &Path) -> Result<String, AnalystError> {
    let refuse = |reason: String| AnalystError::Prompt {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| refuse(e.to_string()))?;
    if text.trim().is_empty() {
        return Err(refuse("is empty".to_owned()));
    }
    if text.len() > bounds::PROMPT_BYTES {
        return Err(refuse(format!(
            "is longer than {} bytes",
            bounds::PROMPT_BYTES
        )));
    }
    Ok(text)
}

/// The notifier's secret errors, reworded for the API key (the origin
/// names the variable or file; the key itself is never in them).
fn key_error(e: NotifyError) -> AnalystError {
    match e {
        NotifyError::Secret { origin, reason } => AnalystError::Key { origin, reason },
        other => AnalystError::Key {
            origin: "the configured source".to_owned(),
            reason: other.to_string(),
        },
    }
}

/// Checks `base_url` with the webhooks' rules
/// ([`candlewick_notify::webhook::check_url`]: `https`, or plain `http`
/// to a loopback address; a host; no user or password), and refuses a
/// query or fragment (`/chat/completions` is appended to the path).
///
/// ```
/// use candlewick_analyst::check_base_url;
/// assert!(check_base_url("https://api.openai.com/v1").is_ok());
/// assert!(check_base_url("http://127.0.0.1:8080/v1").is_ok());
/// assert!(check_base_url("http://api.example.com/v1").is_err());
/// assert!(check_base_url("https://user:pw@api.example.com/v1").is_err());
/// ```
///
/// # Errors
/// [`AnalystError::Url`] with the reason.
pub fn check_base_url(url: &str) -> Result<Url, AnalystError> {
    let parsed = candlewick_notify::webhook::check_url("analyst", url).map_err(|e| match e {
        NotifyError::Url { reason, .. } => AnalystError::Url {
            reason: reason.replace(
                "use the signing secret instead",
                "give the key as api_key_env or api_key_file",
            ),
        },
        other => AnalystError::Url {
            reason: other.to_string(),
        },
    })?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(AnalystError::Url {
            reason: "a query or fragment in base_url; give the API root only".to_owned(),
        });
    }
    Ok(parsed)
}

/// The analyst's settings, checked, the key and the prompt read. `Debug`
/// shows the key as `***`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: Url,
    pub model: String,
    /// `None`: no `Authorization` header (a local server without keys).
    pub api_key: Option<Secret>,
    pub concurrency: usize,
    pub requests_per_min: f64,
    pub tokens_per_min: f64,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry: Retry,
    pub max_retry_after: Duration,
    pub max_output_tokens: u32,
    pub daily_budget_usd: Option<f64>,
    /// The price of `model`, when the table has it.
    pub price: Option<Price>,
    /// The prompt template's text.
    pub prompt: String,
}

impl Settings {
    /// Settings for `base_url` and `model` with the defaults of
    /// [`AnalystConfig`], no key, no budget (tests, tools).
    ///
    /// # Errors
    /// [`AnalystError::Url`] when `base_url` fails the checks.
    pub fn new(base_url: &str, model: &str) -> Result<Settings, AnalystError> {
        let config = AnalystConfig {
            base_url: base_url.to_owned(),
            model: model.to_owned(),
            api_key_env: None,
            api_key_file: None,
            concurrency: d_concurrency(),
            requests_per_min: d_rpm(),
            tokens_per_min: d_tpm(),
            timeout_ms: d_timeout_ms(),
            max_retries: d_retries(),
            backoff_ms: d_backoff_ms(),
            backoff_max_ms: d_backoff_max_ms(),
            max_retry_after_s: d_retry_after(),
            max_output_tokens: d_out_tokens(),
            daily_budget_usd: None,
            prices: BTreeMap::new(),
            prompt: None,
            every_minutes: d_every(),
            on_signals: Vec::new(),
            on_prediction_score: None,
            trigger_cooldown_s: d_cooldown(),
            symbols: Vec::new(),
            signals: d_signals(),
            retention_days: d_retention_days(),
            retention_per_symbol: d_retention_count(),
            path: None,
        };
        config.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> AnalystConfig {
        toml::from_str(&format!(
            "base_url = \"https://api.openai.com/v1\"\nmodel = \"gpt-4o-mini\"\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn defaults_pass_and_a_budget_needs_the_models_price() {
        let c = parse("");
        c.validate().unwrap();
        assert_eq!((c.concurrency, c.every_minutes), (4, 60));
        let e = parse("daily_budget_usd = 1.0\n").validate().unwrap_err();
        assert!(
            e.to_string().contains("analyst.daily_budget_usd")
                && e.to_string().contains("gpt-4o-mini"),
            "{e}"
        );
        let priced = parse(
            "daily_budget_usd = 1.0\n[prices.\"gpt-4o-mini\"]\ninput_per_mtok = 0.15\noutput_per_mtok = 0.6\n",
        );
        priced.validate().unwrap();
        let s = priced.build().unwrap();
        let cost = s.price.unwrap().cost(1_000_000, 1_000_000);
        assert!((cost - 0.75).abs() < 1e-12, "{cost}");
    }

    #[test]
    fn the_readme_sample_is_a_valid_section() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("```toml\n[analyst]\n")
            .expect("README has the sample");
        let block = &readme[start + "```toml\n[analyst]\n".len()..];
        let block = &block[..block.find("```").unwrap()];
        let block = block.replace("[analyst.prices.", "[prices.");
        let c: AnalystConfig = toml::from_str(&block).unwrap();
        c.validate().unwrap();
        assert_eq!(c.on_signals, ["sma_cross"]);
        assert!(c.prices.contains_key("gpt-4o-mini"));
    }

    #[test]
    fn errors_name_the_field() {
        for (extra, field) in [
            ("concurrency = 0\n", "analyst.concurrency"),
            ("requests_per_min = 0\n", "analyst.requests_per_min"),
            ("tokens_per_min = 100\n", "analyst.tokens_per_min"),
            ("timeout_ms = 0\n", "analyst.timeout_ms"),
            ("max_retries = 99\n", "analyst.max_retries"),
            (
                "api_key_env = \"A\"\napi_key_file = \"f\"\n",
                "analyst.api_key_env",
            ),
            ("retention_days = 0\n", "analyst.retention_days"),
        ] {
            let e = parse(extra).validate().unwrap_err().to_string();
            assert!(e.starts_with(field), "{extra}: {e}");
        }
        let unknown = toml::from_str::<AnalystConfig>(
            "base_url = \"https://a.example/v1\"\nmodel = \"m\"\nmodle = \"x\"\n",
        );
        assert!(unknown.is_err());
    }

    #[test]
    fn base_url_follows_the_exchange_and_webhook_rules() {
        for (url, why) in [
            ("http://api.example.com/v1", "plain http"),
            ("https://sk-abc:x@api.example.com/v1", "credentials"),
            ("ftp://api.example.com/v1", "scheme"),
            ("https://api.example.com/v1?key=sk-abc", "query"),
            ("not a url", "not a URL"),
        ] {
            let e = check_base_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("sk-abc"), "{e}");
        }
        for url in [
            "https://api.openai.com/v1",
            "http://127.0.0.1:11434/v1",
            "http://localhost:8080/v1",
            "http://[::1]:8000/v1",
        ] {
            check_base_url(url).unwrap();
        }
    }

    #[test]
    fn the_key_is_read_from_its_source_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "sk-test-0123456789abcdef\n").unwrap();
        let mut c = parse("");
        c.api_key_file = Some(file);
        let s = c.build().unwrap();
        assert_eq!(
            s.api_key.as_ref().unwrap().expose(),
            b"sk-test-0123456789abcdef"
        );
        assert!(!format!("{s:?}").contains("sk-test"));
        c.api_key_file = None;
        c.api_key_env = Some("CANDLEWICK_TEST_SURELY_UNSET_KEY".into());
        let e = c.build().unwrap_err().to_string();
        assert!(
            e.contains("API key") && e.contains("CANDLEWICK_TEST_SURELY_UNSET_KEY"),
            "{e}"
        );
    }
}
