//! What can go wrong setting up the analyst, and why one analysis failed.

use std::path::PathBuf;

/// An error setting up or running the analyst. Messages name the setting,
/// file or variable concerned, never the API key (and never a URL's path
/// or query: the checks refuse credentials in it anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnalystError {
    /// The API key could not be read or is unfit.
    #[error("analyst: API key from {origin}: {reason}")]
    Key { origin: String, reason: String },

    /// `base_url` fails the checks (scheme, credentials, host).
    #[error("analyst.base_url refused: {reason}")]
    Url { reason: String },

    /// A setting is missing or out of its range.
    #[error("analyst.{field}: {reason}")]
    Config { field: String, reason: String },

    /// The prompt template cannot be read or lacks its placeholder.
    #[error("analyst.prompt {}: {reason}", path.display())]
    Prompt { path: PathBuf, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("analyst: cannot build the HTTP client: {0}")]
    Client(String),

    /// The engine's state has nothing to analyse for this symbol.
    #[error("no data for {symbol}: {reason}")]
    NoData { symbol: String, reason: String },

    /// The daily budget is spent: no call is made until the next UTC day.
    #[error("analyst: the daily budget is spent ({spent:.4} of {limit} USD today); no calls until 00:00 UTC")]
    Budget { spent: f64, limit: f64 },

    /// Reading the engine's state failed.
    #[error("analyst: reading the engine's state: {0}")]
    State(#[from] candlewick_state::StateError),

    /// RocksDB failed under the results store.
    #[error(
        "analyst results {}: {source}; check the path, its permissions and free disk, \
         and that no other Candlewick process holds it open",
        path.display()
    )]
    Rocks {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// The results store holds something this build did not write.
    #[error("analyst results {}: {detail}; move the directory aside", path.display())]
    Corrupt { path: PathBuf, detail: String },
}

impl AnalystError {
    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        AnalystError::Config {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Why an analysis failed, as counted in `/metrics`
/// (`candlewick_analyst_failures_total{cause=...}`) and stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// No answer within `timeout_ms`.
    Timeout,
    /// The server could not be reached.
    Connect,
    /// HTTP 429 (too many requests), retries spent.
    RateLimited,
    /// HTTP 5xx, retries spent.
    Server,
    /// Another HTTP status (4xx): not retried.
    Refused,
    /// The body is not a chat completion (not JSON, no choices).
    Malformed,
    /// The answer is not the analysis the schema asks for, after one retry.
    Invalid,
    /// One request is larger than `tokens_per_min` allows in a minute.
    TooLarge,
    /// The daily budget ran out between the attempts of one analysis
    /// (one refused before its first attempt is not stored at all).
    Budget,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::Timeout,
        Cause::Connect,
        Cause::RateLimited,
        Cause::Server,
        Cause::Refused,
        Cause::Malformed,
        Cause::Invalid,
        Cause::TooLarge,
        Cause::Budget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Timeout => "timeout",
            Cause::Connect => "connect",
            Cause::RateLimited => "rate_limited",
            Cause::Server => "server",
            Cause::Refused => "refused",
            Cause::Malformed => "malformed",
            Cause::Invalid => "invalid",
            Cause::TooLarge => "too_large",
            Cause::Budget => "budget",
        }
    }

    /// Whether another attempt may succeed (with a backoff).
    pub(crate) fn is_transient(self) -> bool {
        matches!(
            self,
            Cause::Timeout | Cause::Connect | Cause::RateLimited | Cause::Server
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_small_enough_to_return_by_value() {
        assert!(std::mem::size_of::<AnalystError>() <= 128);
    }

    #[test]
    fn every_cause_has_its_own_label() {
        let mut labels: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Cause::ALL.len());
    }
}
