//! # The analyst: LLM market analysis off the hot path
//!
//! The analyst asks an OpenAI-compatible chat-completions server
//! (OpenAI, or a local llama.cpp, Ollama or vLLM) for a structured view of
//! a symbol, from what the engine already knows about it, and stores the
//! answer. It is off unless the config has an `[analyst]` section, and it
//! never touches the signal path: it reads the engine's state store and
//! is told of signals by a `try_send` that never waits.
//!
//! Inside `candlewick run` a [`Service`] does it on a schedule and on
//! [`Triggers`] (signals of chosen strategies, decided model predictions)
//! that the workers' sink ([`AnalystSink`]) hands over with a `try_send`;
//! [`ask`] answers questions from the stored records only.
//!
//! ```text
//! state store ──▶ context (JSON) ──▶ Analyst ──POST /chat/completions──▶ server
//! (tail, signals)                    permits (concurrency), request and
//!                                    token buckets, daily budget, retries
//!                                         │
//!                                         ▼
//!                                 Results (RocksDB, state.path/analyst)
//! ```
//!
//! - **Bounded.** At most `concurrency` analyses at once
//!   ([`Analyst::analyze_all`]: N symbols take about the time of one); a
//!   token bucket each for requests and tokens a minute; `Retry-After` on
//!   429; retries with exponential backoff and jitter on 5xx, timeouts and
//!   refused connections, at most `max_retries`; a per-request timeout.
//! - **Priced.** Each call's cost comes from the server's `usage` and the
//!   `[analyst.prices]` table. Before a call its worst case (the request's
//!   estimated tokens, plus `max_output_tokens`) is reserved against the
//!   daily budget (UTC day; kept in the store, so a restart does not reset
//!   it). When nothing is left, no call is made ([`AnalystError::Budget`];
//!   a budget that runs out between the attempts of one analysis stores
//!   it as failed, [`Cause::Budget`])
//!   until 00:00 UTC; `/healthz` and `/metrics` say so and the log says
//!   so once.
//! - **Never invented.** An answer is [`Analysis::parse`]d strictly; one
//!   that fails is asked for once more, then the analysis is stored as
//!   failed with its [`Cause`] and reason. No default stands in for it.
//! - **The key stays secret.** It is a [`Secret`] (prints `***`), sent
//!   only as a sensitive `Authorization` header; errors and records never
//!   hold it, and `base_url` must pass [`check_base_url`] (TLS unless
//!   loopback, no credentials) and is called without following redirects.
#![forbid(unsafe_code)]

mod analyst;
mod answer;
pub mod ask;
mod client;
mod config;
pub mod context;
mod error;
mod limits;
mod results;
mod service;
mod stats;

pub use analyst::{Analyst, Job, Spent};
pub use answer::{json_schema, Analysis, Bias};
pub use candlewick_notify::Secret;
pub use config::{
    bounds, check_base_url, AnalystConfig, Price, Settings, DEFAULT_PROMPT, RESULTS_DIR,
};
pub use error::{AnalystError, Cause};
pub use limits::{utc_day, BudgetReached};
pub use results::{Record, Results, RESULTS_VERSION};
pub use service::{
    frame_body, service, AnalystSink, AnalystTap, Plan, Publish, Service, Trigger, Triggers,
    TRIGGER_QUEUE,
};
pub use stats::Stats;
