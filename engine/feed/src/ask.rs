//! `POST /v1/ask`: a question for the analyst, answered from its stored
//! records (see `candlewick_analyst::ask`). The feed only checks the
//! caller and the request; the engine supplies the answer
//! ([`FeedState::with_ask`]).
//!
//! The request wants `Authorization: Bearer TOKEN` (one of the feed's
//! tokens) and a JSON body `{"question": "...", "symbol": "BTCUSDT"}`
//! (`symbol` optional; the question at most [`MAX_QUESTION`] characters).
//! Answers: the handler's status and JSON; `401` without a known token;
//! `400` for a body that is not such a request; `404` when the engine runs
//! no analyst. Error bodies carry a code, never an internal error's text.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::dashboard::{json, refuse_unless_authorized};
use crate::FeedState;

/// Longest question, in characters.
pub const MAX_QUESTION: usize = 2000;

/// A checked `POST /v1/ask` body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    pub question: String,
    pub symbol: Option<String>,
}

/// The engine's answer to an [`AskRequest`]: an HTTP status and a JSON body.
pub type AskHandler = Arc<
    dyn Fn(AskRequest) -> Pin<Box<dyn Future<Output = (u16, serde_json::Value)> + Send>>
        + Send
        + Sync,
>;

pub(crate) async fn ask(
    State(state): State<FeedState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_unless_authorized(&state, &headers) {
        return refused;
    }
    let Some(handler) = state.ask.clone() else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "no_analyst", "message": "the engine runs no [analyst]"}),
        );
    };
    let request = match serde_json::from_slice::<AskRequest>(&body) {
        Ok(r) if !r.question.trim().is_empty() && r.question.chars().count() <= MAX_QUESTION => r,
        Ok(_) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "bad_request", "message": format!("question must be 1 to {MAX_QUESTION} characters")}),
            )
        }
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "bad_request", "message": e.to_string()}),
            )
        }
    };
    let (code, body) = handler(request).await;
    json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &body,
    )
}
