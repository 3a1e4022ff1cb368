//! The dashboard: a single page served at `/` on the feed's port, and the
//! two JSON endpoints it reads.
//!
//! - `/` (and its script, style and notices): the page shell. Static, no
//!   data, no token needed. Built from `dashboard/` by
//!   `scripts/build-dashboard` into `engine/feed/assets/` and embedded
//!   here, so the engine never needs node.
//! - `/v1/status`: strategies (signals today, last signal, quarantines and
//!   their cause, reloads) and the engine (rates, ingest->emit quantiles
//!   from the same hdrhistogram data as `/metrics`, queue depths, feed
//!   clients and lag drops, task states, checkpoint age), plus the engine
//!   samples taken after `?since=MS`.
//! - `/v1/history?symbol=S`: each stream of `S` with its last candles and
//!   signals, kept by the hub ([`History`]).
//!
//! # Auth
//! Both JSON endpoints want `Authorization: Bearer TOKEN` with one of the
//! feed's tokens (401 otherwise). The page asks for the token, or takes it
//! once from the URL fragment `#token=...` (never sent to the server) and
//! then removes it from the address bar; it keeps it in `sessionStorage`.
//! A browser cannot set headers on a WebSocket, so the page opens the feed
//! with the feed's `?token=` parameter, over the same origin; the engine
//! logs no request URL.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::history::Sample;
use crate::FeedState;

/// Candles (and signals) the hub keeps per stream for the charts, unless
/// [`DashboardConfig::history`] says otherwise.
pub const HISTORY_BARS: usize = 500;

/// Candles the hub keeps across all streams (48 bytes each, about 46 MiB):
/// [`HISTORY_BARS`] each up to 2,000 streams, fewer each beyond, so that
/// an engine of 10,000 streams does not carry 240 MB of chart history.
pub const HISTORY_TOTAL: usize = 1_000_000;

/// What the dashboard needs that the feed does not otherwise know.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// The configured strategies' names: listed before they signal.
    pub strategies: Vec<String>,
    /// Candles and signals kept per stream (0: none, the charts stay
    /// empty until candles arrive live). Default [`HISTORY_BARS`].
    pub history: usize,
}

impl DashboardConfig {
    /// For an engine of `streams` streams running `strategies`: each
    /// stream keeps its share of [`HISTORY_TOTAL`], at most
    /// [`HISTORY_BARS`] and at least one.
    pub fn for_streams(strategies: Vec<String>, streams: usize) -> Self {
        DashboardConfig {
            strategies,
            history: (HISTORY_TOTAL / streams.max(1)).clamp(1, HISTORY_BARS),
        }
    }
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            strategies: Vec::new(),
            history: HISTORY_BARS,
        }
    }
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/dashboard.js");
const APP_CSS: &str = include_str!("../assets/dashboard.css");
const NOTICES: &str = include_str!("../assets/THIRD_PARTY_NOTICES.txt");

/// The page's policy: its own script and style only, data from its own
/// origin (and the feed's WebSocket), never framed. The one inline style
/// allowed, by its hash, is the chart library's attribution logo's (a
/// constant of lightweight-charts 5.2.1; the browser test fails on any CSP
/// violation, so an upgrade that changes it is caught).
const CSP: &str = "default-src 'none'; script-src 'self'; \
style-src 'self' 'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='; img-src 'self' data:; \
connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    let mut r = asset("text/html; charset=utf-8", INDEX_HTML);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(crate) async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub(crate) async fn notices() -> Response {
    asset("text/plain; charset=utf-8", NOTICES)
}

/// A JSON reply that no cache keeps.
pub(crate) fn json(code: StatusCode, body: &serde_json::Value) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `None` when the request carries a known bearer token; else the 401.
pub(crate) fn refuse_unless_authorized(state: &FeedState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let known = given.is_some_and(|t| {
        state
            .config
            .tokens
            .iter()
            .any(|k| crate::server::same(k, t))
    });
    if known {
        return None;
    }
    let why = if given.is_none() {
        "missing token"
    } else {
        "unknown token"
    };
    let mut r = json(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "error": why }),
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    /// Only samples taken after this (ms since the epoch).
    since: Option<i64>,
}

pub(crate) async fn status(
    State(state): State<FeedState>,
    headers: HeaderMap,
    Query(q): Query<StatusQuery>,
) -> Response {
    if let Some(refused) = refuse_unless_authorized(&state, &headers) {
        return refused;
    }
    json(StatusCode::OK, &status_body(&state, q.since.unwrap_or(0)))
}

fn status_body(state: &FeedState, since: i64) -> serde_json::Value {
    let m = &state.metrics;
    let c = &m.counters;
    let history = state.hub.history();
    let now = wall_ms();
    let latency = m.latency();
    let us = |ns: u64| ns as f64 / 1e3;
    let samples = history.samples_since(since);
    let last = history.last_sample().unwrap_or_default();
    let checkpoint_ms = history.checkpoint_seen_ms();
    let streams: Vec<serde_json::Value> = history
        .streams()
        .into_iter()
        .map(|(symbol, interval, kept, last)| {
            serde_json::json!({"symbol": symbol, "interval": interval, "candles": kept, "last_time": last})
        })
        .collect();
    serde_json::json!({
        "now_ms": now,
        "healthy": state.health.is_healthy(),
        "strategies": history.strategies(now.div_euclid(86_400_000)),
        "streams": streams,
        "engine": {
            "candles_applied": c.candles_applied.load(Relaxed),
            "signals_emitted": c.signals_emitted.load(Relaxed),
            "candles_per_s": last.candles_per_s,
            "signals_per_s": last.signals_per_s,
            "latency_us": {
                "count": latency.count,
                "p50": us(latency.p50),
                "p99": us(latency.p99),
                "p999": us(latency.p999),
                "max": us(latency.max),
            },
            "queue_depths": m.queue_depths(),
            "feed_clients": c.feed_clients.load(Relaxed),
            "feed_lag_dropped": c.feed_lag_dropped.load(Relaxed),
            "feed_refused": c.feed_refused.load(Relaxed),
            "quarantines": m.quarantines(),
            "checkpoints": c.checkpoints.load(Relaxed),
            "checkpoint_age_s": (checkpoint_ms > 0).then(|| (now - checkpoint_ms) as f64 / 1e3),
            "tasks": state.health.snapshot(),
        },
        "samples": samples,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    symbol: Option<String>,
}

pub(crate) async fn history(
    State(state): State<FeedState>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if let Some(refused) = refuse_unless_authorized(&state, &headers) {
        return refused;
    }
    let symbol = match q.symbol.as_deref().map(valid_symbol) {
        Some(Ok(s)) => s,
        Some(Err(why)) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": why }),
            )
        }
        None => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "symbol is required: /v1/history?symbol=BTCUSDT"}),
            )
        }
    };
    let streams = state.hub.history().of_symbol(symbol);
    json(
        StatusCode::OK,
        &serde_json::json!({ "symbol": symbol, "streams": streams }),
    )
}

/// A symbol as exchanges write them: 1 to 32 ASCII letters, digits and
/// `-_.`.
fn valid_symbol(s: &str) -> Result<&str, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "symbol {:?}: expected 1 to 32 letters, digits, '-', '_' or '.'",
            s.chars().take(40).collect::<String>()
        ))
    }
}

/// Samples the engine's counters and latency once a second into the
/// hub's [`History`] until the feed shuts down, so the page can draw
/// rates and latency over time (including before it was opened).
pub(crate) async fn sample(state: FeedState) {
    let mut shutdown = state.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let c = &state.metrics.counters;
    let read = || {
        (
            wall_ms(),
            c.candles_applied.load(Relaxed),
            c.signals_emitted.load(Relaxed),
            c.checkpoints.load(Relaxed),
        )
    };
    let mut prev = read();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tick.tick() => {}
        }
        let now = read();
        let history = state.hub.history();
        if now.3 != prev.3 {
            history.set_checkpoint_seen(now.0);
        }
        let dt = ((now.0 - prev.0) as f64 / 1e3).max(1e-3);
        let latency = state.metrics.latency();
        history.push_sample(Sample {
            t_ms: now.0,
            candles_per_s: (now.1 - prev.1) as f64 / dt,
            signals_per_s: (now.2 - prev.2) as f64 / dt,
            p50_us: latency.p50 as f64 / 1e3,
            p99_us: latency.p99 as f64 / 1e3,
            p999_us: latency.p999 as f64 / 1e3,
            queued: state.metrics.queue_depths().iter().sum::<usize>() as u64,
            feed_clients: c.feed_clients.load(Relaxed),
            lag_dropped: c.feed_lag_dropped.load(Relaxed),
        });
        prev = now;
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::{valid_symbol, DashboardConfig, HISTORY_BARS, HISTORY_TOTAL};

    #[test]
    fn chart_history_shares_one_budget_across_streams() {
        let kept = |streams| DashboardConfig::for_streams(Vec::new(), streams).history;
        assert_eq!(kept(0), HISTORY_BARS);
        assert_eq!(kept(2_000), HISTORY_BARS);
        assert_eq!(kept(10_000), 100);
        assert!(kept(10_000) * 10_000 <= HISTORY_TOTAL);
        assert_eq!(kept(HISTORY_TOTAL * 3), 1);
    }

    #[test]
    fn symbols_are_checked_at_the_boundary() {
        for ok in ["BTCUSDT", "EURUSD", "BRK.B", "ETH-PERP", "a_1"] {
            assert_eq!(valid_symbol(ok), Ok(ok));
        }
        for bad in ["", "BTC/USDT", "<script>", "a b", &"X".repeat(33), "é"] {
            assert!(valid_symbol(bad).is_err(), "{bad:?}");
        }
    }
}
