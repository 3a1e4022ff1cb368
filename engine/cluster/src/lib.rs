//! # Scale-out on NATS JetStream (issue 12)
//!
//! Roles, one process each, any number of machines:
//!
//! ```text
//! candlewick ingest ──publish──▶ CANDLES  candles.<partition>.<SYMBOL>.<interval>
//!   (Binance adapter:             │          Nats-Msg-Id = SYMBOL:interval:open_time
//!    reconnect, backfill,         │
//!    validation)                  ▼ one durable pull consumer per partition
//!                        candlewick run  (source kind = "nats"; static partitions,
//!                          │               or leases with failover)
//!                          router ▸ shard workers ▸ feed   (the normal pipeline)
//!                                 │ ack a candle only after the checkpoint holding it
//!                                 ▼ (opt-in)
//!                              SIGNALS  signals.<strategy>.<SYMBOL>   Nats-Msg-Id = signal id
//!                                 │
//!                                 ▼
//!                        candlewick feed   (the WebSocket feed, for every engine)
//! ```
//!
//! - [`subjects`]: subject names and the documented partition hash
//!   (FNV-1a 64 of the symbol, mod the partition count).
//! - [`streams`]: creates or verifies CANDLES and SIGNALS (duplicate
//!   window, replicas) idempotently.
//! - [`publish`]: the candle publisher (the ingest role's
//!   [`candlewick_ingest::Destination`]) and the signal publisher.
//! - [`consume`]: a partition's consumer feeding the engine's router, with
//!   ack after checkpoint.
//! - [`tee`]: the engine's sink plus a copy of each signal for SIGNALS.
//! - [`lease`]: partition leases in a key-value bucket, with failover and
//!   fencing; [`shared`]: each checkpoint shared per partition, so that a
//!   partition's new owner continues its state exactly.
//! - [`signal_feed`]: the feed role's source (SIGNALS into the hub).
//! - [`metrics`]: the counters of each role for `/metrics`.
//!
//! Not built yet: JWT/NKey credentials files, TLS client certificates
//! (ARCHITECTURE.md §7).
#![forbid(unsafe_code)]

pub mod config;
pub mod consume;
mod error;
pub mod lease;
pub mod metrics;
pub mod payload;
pub mod publish;
pub mod shared;
pub mod signal_feed;
pub mod streams;
pub mod subjects;
pub mod tee;

pub use config::{Auth, ClusterConfig, Secret, TlsFiles};
pub use error::ClusterError;

/// The JetStream context every role works through.
pub use async_nats::jetstream::Context as JetStream;

/// Connects to the servers with the configured credentials, and returns
/// the JetStream context. Fails at once (no background retry) when no
/// server answers, so that a wrong address is a clear error at start;
/// once connected, the client reconnects by itself.
///
/// # Errors
/// [`ClusterError::Connect`] naming the servers (never a credential).
pub async fn connect(cfg: &ClusterConfig, name: &str) -> Result<JetStream, ClusterError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(cfg.connect_timeout);
    match &cfg.auth {
        Auth::None => {}
        Auth::Token(t) => options = options.token(t.expose().to_owned()),
        Auth::UserPassword { user, password } => {
            options = options.user_and_password(user.clone(), password.expose().to_owned());
        }
        Auth::NKey(seed) => options = options.nkey(seed.expose().to_owned()),
        Auth::CredentialsFile(path) => {
            // The error names the file; the file's content never appears.
            options = options
                .credentials_file(path)
                .await
                .map_err(|e| ClusterError::Config {
                    key: "credentials_file",
                    reason: format!("{}: {}", path.display(), e.kind()),
                })?;
        }
    }
    if let Some(ca) = &cfg.tls.ca {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &cfg.tls.client {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    if cfg.tls.is_set() || cfg.servers.iter().any(|s| s.starts_with("tls://")) {
        options = options.require_tls(true);
    }
    let client =
        options
            .connect(cfg.servers.as_slice())
            .await
            .map_err(|e| ClusterError::Connect {
                servers: cfg.servers_text(),
                message: e.to_string(),
            })?;
    Ok(async_nats::jetstream::new(client))
}
