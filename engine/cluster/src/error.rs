//! [`ClusterError`]: why a cluster role could not start or go on.
//!
//! No variant carries a credential: secrets are resolved into
//! [`crate::config::Secret`], which never prints, and server URLs with a
//! user or password in them are refused when the config is read.

/// Why talking to the NATS servers failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A setting that cannot work (named, with what was expected).
    #[error("nats.{key}: {reason}")]
    Config { key: &'static str, reason: String },
    /// A part of issue 12 this build does not have yet.
    #[error("{what} is not built yet (issue 12: this slice has static partitions only)")]
    NotBuilt { what: &'static str },
    #[error("cannot connect to the NATS servers {servers}: {message}")]
    Connect { servers: String, message: String },
    /// A JetStream request (stream or consumer management) failed.
    #[error("JetStream {what}: {message}")]
    JetStream { what: String, message: String },
    /// A stream exists with settings that differ from the configured ones:
    /// never changed behind the operator's back.
    #[error("stream {stream} exists with {field} = {have}, but the config says {want}; change one of them (`nats stream edit {stream}`)")]
    StreamMismatch {
        stream: String,
        field: &'static str,
        have: String,
        want: String,
    },
    #[error("publishing to {subject}: {message}")]
    Publish { subject: String, message: String },
    /// A partition's shared state could not be read or taken over.
    #[error("partition {partition}'s shared state: {source}")]
    State {
        partition: u32,
        source: candlewick_state::StateError,
    },
    #[error("the pipeline stopped: {0}")]
    Route(#[from] candlewick_pipeline::RouteError),
}

impl ClusterError {
    pub(crate) fn js(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        ClusterError::JetStream {
            what: what.into(),
            message: e.to_string(),
        }
    }
}
