//! An OpenAI-compatible stub server on loopback for the analyst's tests
//! (this crate's and the binary's `tests/analyst_cli.rs`): it answers,
//! delays, returns 429 with `Retry-After`, 500, 401, a redirect, malformed
//! JSON or a schema-violating answer, as scripted, and counts requests,
//! requests in flight and the tokens it reports.
#![allow(dead_code)] // each test file uses its own part

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// A valid analysis, as the content of an answer.
pub const GOOD: &str = r#"{"bias":"bullish","confidence":0.7,"horizon":"1-3 days","rationale":"close above sma(20) and rising","risks":["a reversal below the 20-bar low"]}"#;
/// An answer that breaks the schema (a bias it does not allow).
pub const BAD: &str = r#"{"bias":"up","confidence":0.7,"horizon":"1d","rationale":"x","risks":[]}"#;

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A completion with `content`, after `delay_ms`.
    Answer { content: String, delay_ms: u64 },
    /// 429 with `Retry-After: S`.
    TooMany { retry_after_s: u64 },
    /// 500 with an OpenAI-style error body.
    ServerError,
    /// 401 whose message quotes the key it was sent (as OpenAI's does).
    Unauthorized,
    /// 302 to `/elsewhere` on this server.
    Redirect,
    /// 200 with a body that is not JSON.
    Malformed,
}

impl Reply {
    pub fn good(delay_ms: u64) -> Reply {
        Reply::Answer {
            content: GOOD.to_owned(),
            delay_ms,
        }
    }

    pub fn bad() -> Reply {
        Reply::Answer {
            content: BAD.to_owned(),
            delay_ms: 0,
        }
    }
}

/// What the stub saw; its replies.
#[derive(Debug)]
pub struct Seen {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    /// Requests to /v1/chat/completions.
    pub requests: AtomicU64,
    /// Requests to /elsewhere (where the redirect points).
    pub redirected: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Tokens reported in `usage` (prompt, completion).
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
    /// `Authorization` headers received.
    pub auth: Mutex<Vec<String>>,
    /// Request bodies.
    pub bodies: Mutex<Vec<serde_json::Value>>,
    /// Arrival times.
    pub arrivals: Mutex<Vec<Instant>>,
}

impl Seen {
    pub fn requests(&self) -> u64 {
        self.requests.load(SeqCst)
    }
}

/// A running stub; dropped, it stops.
pub struct Stub {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// A stub that answers `default` to every request not scripted.
    pub async fn start(default: Reply) -> Stub {
        let seen = Arc::new(Seen {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            requests: AtomicU64::new(0),
            redirected: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
            auth: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(completions))
            .route("/elsewhere", axum::routing::post(elsewhere))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Stub { addr, seen, task }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The next requests get these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.seen.script.lock().unwrap().extend(replies);
    }
}

async fn elsewhere(State(seen): State<Arc<Seen>>) -> StatusCode {
    seen.redirected.fetch_add(1, SeqCst);
    StatusCode::OK
}

struct InFlight<'a>(&'a Seen);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

async fn completions(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> Response {
    seen.requests.fetch_add(1, SeqCst);
    seen.arrivals.lock().unwrap().push(Instant::now());
    let now = seen.in_flight.fetch_add(1, SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, SeqCst);
    let _guard = InFlight(&seen);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    seen.auth.lock().unwrap().push(auth.clone());
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    seen.bodies.lock().unwrap().push(request);
    let reply = {
        let next = seen.script.lock().unwrap().pop_front();
        next.unwrap_or_else(|| seen.default.lock().unwrap().clone())
    };
    match reply {
        Reply::Answer { content, delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            // About what a tokenizer would count: a token per 4 bytes.
            let (tin, tout) = (body.len() as u64 / 4, content.len() as u64 / 4);
            seen.tokens_in.fetch_add(tin, SeqCst);
            seen.tokens_out.fetch_add(tout, SeqCst);
            let answer = serde_json::json!({
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout},
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                answer.to_string(),
            )
                .into_response()
        }
        Reply::TooMany { retry_after_s } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after_s.to_string())],
            r#"{"error":{"message":"Rate limit reached"}}"#,
        )
            .into_response(),
        Reply::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":{"message":"The server had an error"}}"#,
        )
            .into_response(),
        Reply::Unauthorized => {
            let key = auth.strip_prefix("Bearer ").unwrap_or("");
            let body = serde_json::json!({"error": {"message": format!("Incorrect API key provided: {key}.")}});
            (StatusCode::UNAUTHORIZED, body.to_string()).into_response()
        }
        Reply::Redirect => (StatusCode::FOUND, [("location", "/elsewhere")], "").into_response(),
        Reply::Malformed => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"choices\": [ this is not json",
        )
            .into_response(),
    }
}
