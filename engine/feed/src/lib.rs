//! # The signal feed
//!
//! A WebSocket server at `/v1/feed` (DESIGN §7) with `/healthz`,
//! Prometheus `/metrics` and the dashboard (`/`, `/v1/status`,
//! `/v1/history`, see the `dashboard` module) and, with the analyst,
//! `POST /v1/ask` (the [`ask`] module) on the same port.
//!
//! ## A client's life
//!
//! 0. **Connection.** Every accepted socket gets `TCP_NODELAY`. At most
//!    [`FeedConfig::max_connections`] connections may be in the HTTP phase
//!    at once (more are closed), and one that has not sent its request head
//!    within [`FeedConfig::header_timeout`] is closed (slowloris, idle
//!    sockets). A browser `Origin` not on [`FeedConfig::allowed_origins`]
//!    is answered `403`.
//! 1. **Handshake.** The token comes as `Authorization: Bearer TOKEN` or
//!    `?token=TOKEN` and is compared in constant time with the configured
//!    ones. A missing or unknown token is answered `401` before any upgrade;
//!    a server at [`FeedConfig::max_clients`] answers `503`. Tokens are
//!    never logged.
//! 2. **Subscribe.** The client sends
//!    `{"op":"subscribe","symbols":["BTCUSDT"],"strategies":["sma_cross"]}`
//!    (`"*"` for all; an omitted list means all; `"candles":true` adds the
//!    applied candles of those symbols, `"predictions":true` the models'
//!    predictions for them). `unsubscribe` removes names added
//!    by name (`"*"` or an omitted list removes all); `ping` is
//!    answered `pong`. Until it subscribes a client receives nothing.
//!    Only names the engine runs are accepted (see [`FeedState::with_known`]):
//!    a subscribe naming another gets `{"type":"error","code":
//!    "unknown_symbol"` (or `"unknown_strategy"`) `,"name":...}` and changes
//!    nothing; one that would take the client past
//!    [`FeedConfig::max_subscriptions`] names gets `too_many_subscriptions`.
//!    A client sending more than [`FeedConfig::ops_burst`] messages at once,
//!    or more than [`FeedConfig::ops_per_second`] sustained, is closed with
//!    1008 ("rate limit").
//! 3. **Frames.** Each `signal`, `candle` and `prediction` frame (an
//!    extension of DESIGN §7: `{"type":"prediction","seq":N,"symbol":...,
//!    "interval":...,"model":...,"time":...,"p_up":...,"p_flat":...,
//!    "p_down":...,"score":...}`, one per model per candle with a full
//!    window) carries `seq`, numbered
//!    per connection from 1 with no gap. A signal's `id` is deterministic
//!    (strategy, symbol, interval, candle time), so a consumer dedupes
//!    across reconnects and engine restarts.
//! 4. **Lag.** Workers publish into one bounded ring ([`Hub`], a tokio
//!    `broadcast` of [`FeedConfig::client_queue`] frames). Publishing never
//!    waits. A client that falls more than the ring behind loses the oldest
//!    frames and is told so, once per gap, by
//!    `{"type":"error","code":"lagged","dropped":N}`; `seq` stays gapless
//!    over the frames it does get. A client that does not take a frame for
//!    [`FeedConfig::send_timeout`] is disconnected.
//! 5. **Liveness.** The server pings every [`FeedConfig::ping_interval`] and
//!    drops a client silent for [`FeedConfig::idle_timeout`].
//! 6. **Shutdown.** When the engine stops, each client gets a close frame
//!    (1001, "engine shutting down") after the frames already queued for it.
#![forbid(unsafe_code)]

pub mod ask;
mod client;
mod dashboard;
mod guard;
mod history;
mod hub;
mod listener;
mod prometheus;
mod resume;
mod server;

pub use dashboard::{DashboardConfig, HISTORY_BARS, HISTORY_TOTAL};
pub use guard::Known;
pub use history::History;
pub use hub::{FeedItem, Hub};
pub use prometheus::render;
pub use server::{serve, ExtraHealth, ExtraMetrics, FeedConfig, FeedError, FeedState};

/// For the fuzz targets (`fuzz/`): applies client messages to one
/// subscription under the default bound and a small known set; the
/// names held at the end (never above the bound).
#[doc(hidden)]
pub fn fuzz_client_ops<'a>(messages: impl IntoIterator<Item = &'a str>) -> usize {
    client::fuzz_ops(messages)
}
