//! [`IngestError`]: why a source stopped or a session ended.

use candlewick_core::RouteError;

/// Why a source could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A URL the allowlist refuses (see [`crate::Allowlist`]).
    #[error("exchange URL {url:?} refused: {reason}")]
    UrlRefused { url: String, reason: String },
    #[error(transparent)]
    Data(#[from] candlewick_market::DataError),
    #[error("the pipeline stopped: {0}")]
    Route(#[from] RouteError),
    #[error("websocket {url}: {message}")]
    WebSocket { url: String, message: String },
    #[error("REST {url}: {message}")]
    Rest { url: String, message: String },
    /// The exchange refused with 429/418 longer than the client may wait.
    #[error("REST {url}: rate limited (HTTP {status}): {detail}")]
    RateLimited {
        url: String,
        status: u16,
        detail: String,
    },
    /// A kline that is malformed, out of order, or not what was asked for.
    #[error("REST {url}: bad kline: {reason}")]
    BadKline { url: String, reason: String },
    /// A bus the candles are published to did not take one (its cause has
    /// no credentials in it). The source reconnects and backfills.
    #[error("publishing candles: {message}")]
    Publish { message: String },
    /// The streams' committed offsets could not be read, so the source does
    /// not know where to resume (the store's error, whatever the store).
    #[error("reading the committed offsets: {0}")]
    Offsets(#[source] Box<dyn std::error::Error + Send + Sync>),
}
