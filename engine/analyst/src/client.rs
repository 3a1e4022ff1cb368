//! One chat-completions request to an OpenAI-compatible server.
//!
//! `POST {base_url}/chat/completions` with `Authorization: Bearer KEY`
//! (when a key is configured), the model, a system message (the prompt),
//! a user message (the context JSON), `max_tokens`, `temperature: 0` and
//! `response_format: {"type":"json_schema", ...}` ([`crate::json_schema`]).
//! The client follows no redirect: `base_url` was checked, not wherever a
//! redirect would lead (and the key would go along).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::{AnalystError, Cause, Settings};

/// What the server said, when it answered with a completion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Completion {
    /// The message content (the answer to validate).
    pub content: String,
    /// `usage.prompt_tokens` / `usage.completion_tokens`, when given.
    pub usage: Option<(u64, u64)>,
}

/// One failed request.
#[derive(Debug, Clone)]
pub(crate) struct CallError {
    pub cause: Cause,
    /// In words, for the record (no key, no URL path).
    pub detail: String,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// Tokens the server reported for a body it answered (a malformed one).
    pub usage: Option<(u64, u64)>,
}

impl CallError {
    fn new(cause: Cause, detail: impl Into<String>) -> Self {
        CallError {
            cause,
            detail: detail.into(),
            retry_after: None,
            usage: None,
        }
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// The HTTP side: a client without redirects and the endpoint.
pub(crate) struct Client {
    http: reqwest::Client,
    endpoint: Url,
    settings: Settings,
}

impl Client {
    pub(crate) fn new(settings: &Settings) -> Result<Client, AnalystError> {
        let mut endpoint = settings.base_url.clone();
        let path = format!("{}/chat/completions", endpoint.path().trim_end_matches('/'));
        endpoint.set_path(&path);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| AnalystError::Client(e.without_url().to_string()))?;
        Ok(Client {
            http,
            endpoint,
            settings: settings.clone(),
        })
    }

    /// The request body.
    pub(crate) fn body(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: serde_json::Value,
    ) -> Vec<u8> {
        serde_json::json!({
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": self.settings.max_output_tokens,
            "temperature": 0,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": true, "schema": schema},
            },
        })
        .to_string()
        .into_bytes()
    }

    /// Sends one request.
    pub(crate) async fn complete(&self, body: Vec<u8>) -> Result<Completion, CallError> {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &self.settings.api_key {
            let mut value = b"Bearer ".to_vec();
            value.extend_from_slice(key.expose());
            let mut value = reqwest::header::HeaderValue::from_bytes(&value).map_err(|_| {
                CallError::new(Cause::Refused, "the API key is not a valid header value")
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
        let bytes = response.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let cause = if status == StatusCode::TOO_MANY_REQUESTS {
                Cause::RateLimited
            } else if status.is_server_error() {
                Cause::Server
            } else {
                Cause::Refused
            };
            // A 401/403 message may quote part of the key ("Incorrect API
            // key provided: sk-...abcd"): it is not repeated.
            let message = if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                String::new()
            } else {
                server_message(&bytes, self.settings.api_key.as_ref())
            };
            let mut e = CallError::new(cause, format!("HTTP {status}{message}"));
            e.retry_after = retry_after;
            return Err(e);
        }
        let parsed: ChatResponse = serde_json::from_slice(&bytes).map_err(|e| {
            CallError::new(
                Cause::Malformed,
                format!("the body is not a chat completion: {e}"),
            )
        })?;
        let usage = parsed.usage.map(|u| (u.prompt_tokens, u.completion_tokens));
        match parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
        {
            Some(content) => Ok(Completion { content, usage }),
            None => {
                let mut e =
                    CallError::new(Cause::Malformed, "the completion has no message content");
                e.usage = usage;
                Err(e)
            }
        }
    }
}

/// A transport error in words, without the URL.
fn transport(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        CallError::new(Cause::Timeout, "no answer within timeout_ms")
    } else if e.is_connect() {
        CallError::new(Cause::Connect, "cannot connect to base_url's host")
    } else {
        CallError::new(Cause::Server, e.without_url().to_string())
    }
}

/// `: MESSAGE` from an OpenAI-style error body (`{"error":{"message":..}}`),
/// cut to 200 characters, the key masked should the server quote it;
/// nothing when there is none.
fn server_message(body: &[u8], key: Option<&candlewick_notify::Secret>) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let Some(m) = v["error"]["message"].as_str() else {
        return String::new();
    };
    let mut m = m.to_owned();
    if let Some(k) = key.and_then(|k| std::str::from_utf8(k.expose()).ok()) {
        m = m.replace(k, "***");
    }
    format!(": {}", m.chars().take(200).collect::<String>())
}
