//! The HTTP side: routes, the handshake's auth, graceful shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use candlewick_core::SignalOutbox;
use candlewick_core::{Health, Metrics};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::guard::{origin_allowed, public_reason, Known};
use crate::Hub;
use candlewick_core::LogLimiter;

/// The feed's settings. Each default is stated on its field.
#[derive(Clone)]
pub struct FeedConfig {
    /// Accepted tokens. Empty refuses every client.
    pub tokens: Vec<String>,
    /// Most clients at once; more are answered 503. Default 1024.
    pub max_clients: usize,
    /// Frames the hub's ring holds: how far a client may fall behind
    /// before it gets `lagged`. Larger absorbs longer stalls, costs memory
    /// per frame in flight, and never slows the engine. Default 4096.
    pub client_queue: usize,
    /// Whether candle frames are published at all. Default true.
    pub candles: bool,
    /// Server ping period. Default 20 s.
    pub ping_interval: Duration,
    /// A client silent (no frame, no pong) this long is dropped. Default 60 s.
    pub idle_timeout: Duration,
    /// A client that does not take one frame within this is dropped.
    /// Default 30 s.
    pub send_timeout: Duration,
    /// TCP connections at once that have not (yet) upgraded to the feed:
    /// handshakes, `/healthz`, `/metrics`. More are closed at once.
    /// Default 256.
    pub max_connections: usize,
    /// A connection that has not sent a whole request head within this is
    /// closed (slowloris; an idle keep-alive socket too). Default 10 s.
    pub header_timeout: Duration,
    /// Browser origins allowed to open the feed, e.g.
    /// `https://dash.example.com`. A handshake with another `Origin` gets
    /// 403 (see [`crate::guard`]: loopback pages of the engine itself
    /// pass). Default: none.
    pub allowed_origins: Vec<String>,
    /// Names (symbols plus strategies) one client may subscribe to.
    /// Default 1024.
    pub max_subscriptions: usize,
    /// Client messages per second, sustained; a client over it is closed
    /// with 1008. Default 20.
    pub ops_per_second: f64,
    /// Client messages at once before the rate applies. Default 100.
    pub ops_burst: u32,
    /// The page at `/` and its JSON endpoints.
    pub dashboard: crate::DashboardConfig,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            tokens: Vec::new(),
            max_clients: 1024,
            client_queue: 4096,
            candles: true,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            allowed_origins: Vec::new(),
            max_subscriptions: 1024,
            ops_per_second: 20.0,
            ops_burst: 100,
            dashboard: crate::DashboardConfig::default(),
        }
    }
}

impl std::fmt::Debug for FeedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens are secrets: never printed, not even in debug output.
        f.debug_struct("FeedConfig")
            .field("tokens", &format_args!("[{} redacted]", self.tokens.len()))
            .field("max_clients", &self.max_clients)
            .field("client_queue", &self.client_queue)
            .field("candles", &self.candles)
            .field("max_connections", &self.max_connections)
            .field("header_timeout", &self.header_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("ops_per_second", &self.ops_per_second)
            .field("ops_burst", &self.ops_burst)
            .finish_non_exhaustive()
    }
}

/// Appends Prometheus text to `/metrics` (see [`FeedState::with_extra_metrics`]).
pub type ExtraMetrics = Arc<dyn Fn(&mut String) + Send + Sync>;

/// A part's own entry in `/healthz` (see [`FeedState::with_extra_health`]).
pub type ExtraHealth = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct FeedState {
    pub config: Arc<FeedConfig>,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub shutdown: watch::Receiver<bool>,
    /// The engine's signal outbox, for clients that resume with `since`.
    pub outbox: Option<Arc<dyn SignalOutbox>>,
    /// The names clients may subscribe to; `None` checks none (each
    /// client's set is still bounded by `max_subscriptions`).
    pub known: Option<Arc<Known>>,
    /// More `/metrics` lines from parts beside the pipeline (the notifier).
    pub extra_metrics: Option<ExtraMetrics>,
    /// More `/healthz` members, by name (the analyst's budget).
    pub extra_health: Vec<(String, ExtraHealth)>,
    /// Answers `POST /v1/ask` (the analyst); `None`: 404.
    pub ask: Option<crate::ask::AskHandler>,
    clients: Arc<AtomicUsize>,
    refusals: Arc<LogLimiter>,
}

impl FeedState {
    pub fn new(
        config: FeedConfig,
        hub: Hub,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        hub.history().enable(config.dashboard.history);
        hub.history()
            .declare_strategies(&config.dashboard.strategies);
        FeedState {
            config: Arc::new(config),
            hub,
            metrics,
            health,
            shutdown,
            outbox: None,
            known: None,
            extra_metrics: None,
            extra_health: Vec::new(),
            ask: None,
            clients: Arc::new(AtomicUsize::new(0)),
            refusals: Arc::new(LogLimiter::new(Duration::from_secs(1))),
        }
    }

    /// Accepts subscriptions only to these symbols and strategies; another
    /// name gets an `unknown_symbol` / `unknown_strategy` error frame.
    pub fn with_known(
        mut self,
        symbols: impl IntoIterator<Item = String>,
        strategies: impl IntoIterator<Item = String>,
    ) -> Self {
        self.known = Some(Arc::new(Known {
            symbols: symbols.into_iter().collect(),
            strategies: strategies.into_iter().collect(),
        }));
        self
    }

    /// Logs a refused handshake, at most one line a second (the rest are
    /// counted in the next line and in `feed_refused`).
    fn refused(&self, status: StatusCode, reason: &str) {
        self.metrics.add(&self.metrics.counters.feed_refused, 1);
        if let Some(held_back) = self.refusals.admit(std::time::Instant::now()) {
            tracing::info!(
                status = status.as_u16(),
                reason,
                held_back,
                "feed client refused"
            );
        }
    }

    /// Adds `render`'s lines to `/metrics` after the pipeline's: how a part
    /// the feed does not know (the notifier) shows its counters.
    pub fn with_extra_metrics(mut self, render: ExtraMetrics) -> Self {
        self.extra_metrics = Some(render);
        self
    }

    /// Adds a member `name` to `/healthz`, its value from `report` (the
    /// analyst's budget): information beside the tasks, which does not
    /// change `status`.
    pub fn with_extra_health(mut self, name: &str, report: ExtraHealth) -> Self {
        self.extra_health.push((name.to_owned(), report));
        self
    }

    /// Answers `POST /v1/ask` with `handler` (see [`crate::ask`]).
    pub fn with_ask(mut self, handler: crate::ask::AskHandler) -> Self {
        self.ask = Some(handler);
        self
    }

    /// Serves `since` resumes from `store`'s outbox (and the hub's recent
    /// signals, see [`Hub::keep_recent`]).
    pub fn with_outbox(mut self, store: Arc<dyn SignalOutbox>) -> Self {
        self.outbox = Some(store);
        self
    }
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    #[error("feed server: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `/v1/feed`, `/healthz` and `/metrics` on `listener` until
/// `state.shutdown` turns true; then closes every client and returns.
///
/// # Errors
/// [`FeedError::Io`] when accepting fails for good.
pub async fn serve(listener: TcpListener, state: FeedState) -> Result<(), FeedError> {
    let shutdown = state.shutdown.clone();
    let limits = crate::listener::Limits {
        max_connections: state.config.max_connections,
        header_timeout: state.config.header_timeout,
    };
    let refused = state.clone();
    let sampler = tokio::spawn(crate::dashboard::sample(state.clone()));
    let app = axum::Router::new()
        .route("/v1/feed", get(feed))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/", get(crate::dashboard::index))
        .route("/dashboard.js", get(crate::dashboard::script))
        .route("/dashboard.css", get(crate::dashboard::style))
        .route("/THIRD_PARTY_NOTICES.txt", get(crate::dashboard::notices))
        .route("/v1/status", get(crate::dashboard::status))
        .route("/v1/history", get(crate::dashboard::history))
        .route("/v1/ask", axum::routing::post(crate::ask::ask))
        .with_state(state);
    let served = crate::listener::serve(
        listener,
        app,
        limits,
        shutdown,
        move || refused.refused(StatusCode::SERVICE_UNAVAILABLE, "too many connections"),
        |_| {},
    )
    .await;
    // The sampler ends on the same shutdown; if serving failed instead,
    // it is stopped here.
    sampler.abort();
    let _ = sampler.await;
    served?;
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn feed(
    State(state): State<FeedState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(query.token.as_deref());
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("?"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin_allowed(origin, host, &state.config.allowed_origins) {
        state.refused(StatusCode::FORBIDDEN, "origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let known = given.is_some_and(|t| state.config.tokens.iter().any(|k| same(k, t)));
    if !known {
        let why = if given.is_none() {
            "missing token"
        } else {
            "unknown token"
        };
        state.refused(StatusCode::UNAUTHORIZED, why);
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            why,
        )
            .into_response();
    }
    let clients = state.clients.clone();
    if clients.fetch_add(1, Ordering::SeqCst) >= state.config.max_clients {
        clients.fetch_sub(1, Ordering::SeqCst);
        state.refused(StatusCode::SERVICE_UNAVAILABLE, "too many clients");
        return (StatusCode::SERVICE_UNAVAILABLE, "too many clients").into_response();
    }
    let slot = ClientSlot(clients);
    // Subscribe before the upgrade completes: nothing published after the
    // handshake is missed.
    let rx = state.hub.subscribe();
    // Clients only send small JSON requests: a small read buffer (the
    // default is 128 KiB per connection) and a cap on what one message may
    // make us hold.
    ws.read_buffer_size(CLIENT_READ_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            let _slot = slot;
            crate::client::run(socket, rx, state).await;
        })
}

/// Read buffer per feed connection.
const CLIENT_READ_BUFFER: usize = 4 << 10;
/// Largest message a feed client may send (a subscription to a few
/// thousand symbols fits).
const MAX_CLIENT_MESSAGE: usize = 64 << 10;

/// Frees a client slot when the connection ends, however it ends.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Equality in time independent of where the first difference is: the
/// time taken does not reveal how much of a token matched.
pub(crate) fn same(a: &str, b: &str) -> bool {
    // The length may leak; the contents may not.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

async fn healthz(State(state): State<FeedState>) -> Response {
    let tasks = public_tasks(&state.health);
    let healthy = state.health.is_healthy();
    let mut body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "tasks": tasks,
        "queue_depths": state.metrics.queue_depths(),
        "feed_clients": state.hub.clients(),
    });
    for (name, report) in &state.extra_health {
        body[name.as_str()] = report();
    }
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Each task's state for `/healthz`, which anyone who reaches the port may
/// read: a code and a short reason, with paths, URLs and addresses taken
/// out of error texts (the log has them in full).
fn public_tasks(health: &Health) -> serde_json::Map<String, serde_json::Value> {
    use candlewick_core::TaskState;
    use serde_json::json;
    health
        .snapshot()
        .into_iter()
        .map(|(task, s)| {
            let v = match s {
                TaskState::Running => json!({"state": "running"}),
                TaskState::Finished => json!({"state": "finished"}),
                TaskState::Restarting {
                    failures,
                    last_error,
                } => json!({
                    "state": "restarting",
                    "code": "task_restarting",
                    "failures": failures,
                    "reason": public_reason(&last_error),
                }),
                TaskState::Failed { error } => json!({
                    "state": "failed",
                    "code": "task_failed",
                    "reason": public_reason(&error),
                }),
            };
            (task, v)
        })
        .collect()
}

async fn metrics(State(state): State<FeedState>) -> Response {
    let mut text = crate::render(&state.metrics, &state.health);
    if let Some(extra) = &state.extra_metrics {
        extra(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_carry_the_extra_lines_after_the_pipelines() {
        let (_stop, shutdown) = watch::channel(false);
        let state = FeedState::new(
            FeedConfig::default(),
            Hub::new(16, false),
            Arc::new(Metrics::detached()),
            Arc::new(Health::new()),
            shutdown,
        )
        .with_extra_metrics(Arc::new(|out: &mut String| {
            out.push_str("candlewick_notify_pending 3\n");
        }));
        let body = axum::body::to_bytes(metrics(State(state)).await.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("candlewick_events_ingested_total 0\n"),
            "{text}"
        );
        assert!(text.ends_with("candlewick_notify_pending 3\n"), "{text}");
    }

    #[tokio::test]
    async fn healthz_carries_the_extra_members_without_changing_the_status() {
        let (_stop, shutdown) = watch::channel(false);
        let state = FeedState::new(
            FeedConfig::default(),
            Hub::new(16, false),
            Arc::new(Metrics::detached()),
            Arc::new(Health::new()),
            shutdown,
        )
        .with_extra_health(
            "analyst",
            Arc::new(|| serde_json::json!({"budget_reached": true})),
        );
        let response = healthz(State(state)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["analyst"]["budget_reached"], true);
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(same("s3cret", "s3cret"));
        for other in ["s3cre", "s3cret!", "S3cret", "", "s3cres"] {
            assert!(!same("s3cret", other), "{other}");
        }
        assert!(!same("", "x"));
        assert!(same("", ""));
    }
}
