//! [`ClusterConfig`]: the servers, the credentials, the streams' shape.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::ClusterError;

/// A credential read from the environment or a file. It never prints:
/// `Debug` shows `<redacted>` and there is no `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Resolves `env:NAME` (the variable NAME) or `file:PATH` (the file's
    /// first line). A literal value is refused: a credential written in a
    /// config file ends up in backups and reviews.
    ///
    /// # Errors
    /// [`ClusterError::Config`] naming the variable or file, never a value.
    pub fn resolve(key: &'static str, spec: &str) -> Result<Secret, ClusterError> {
        let bad = |reason: String| ClusterError::Config { key, reason };
        let value = if let Some(var) = spec.strip_prefix("env:") {
            std::env::var(var).map_err(|_| bad(format!("environment variable {var} is not set")))?
        } else if let Some(path) = spec.strip_prefix("file:") {
            let text = std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read {path}: {}", e.kind())))?;
            text.lines().next().unwrap_or_default().trim().to_owned()
        } else {
            return Err(bad(
                "must be \"env:NAME\" or \"file:PATH\" (a credential is never written in the config)"
                    .to_owned(),
            ));
        };
        if value.is_empty() {
            return Err(bad(format!("{spec} is empty")));
        }
        Ok(Secret(value))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to authenticate to the servers.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Token(Secret),
    UserPassword {
        user: String,
        password: Secret,
    },
    /// An NKey seed (`SU...`): the server knows the public key.
    NKey(Secret),
    /// A `.creds` file (a user JWT and its NKey seed), read at connect.
    CredentialsFile(PathBuf),
}

/// TLS beyond the defaults (`tls://` servers verified against the
/// public roots).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// PEM certificates of the CAs the servers' certificates chain to.
    pub ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client.is_some()
    }
}

/// Everything a cluster role needs to reach and shape JetStream.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `nats://host:port` or `tls://host:port`, no user or password in them.
    pub servers: Vec<String>,
    pub auth: Auth,
    pub tls: TlsFiles,
    /// Name of the stream of closed candles (subjects `candles.>`).
    pub candles_stream: String,
    /// Name of the stream of signals (subjects `signals.>`).
    pub signals_stream: String,
    /// N of the partition hash; ingest and every engine must agree.
    pub partition_count: u32,
    /// Copies of each stream's data (1, 3 or 5 on a cluster of servers).
    pub replicas: usize,
    /// How long a `Nats-Msg-Id` is remembered for deduplication.
    pub duplicate_window: Duration,
    /// How long messages are kept; zero keeps them until the limits.
    pub max_age: Duration,
    /// How long a delivered candle may stay unacknowledged (waiting for
    /// its checkpoint) before the server delivers it again.
    pub ack_wait: Duration,
    /// Candles delivered and not yet acknowledged, per partition, before
    /// the server waits: at least a checkpoint interval's worth.
    pub max_ack_pending: i64,
    pub connect_timeout: Duration,
    /// Durable consumer of partition P: `<prefix>-p<P>` (static
    /// assignment) or `<prefix>-p<P>-e<epoch>` (leases).
    pub consumer_prefix: String,
    /// Key-value bucket of partition leases (`crate::lease`).
    pub lease_bucket: String,
    /// Key-value bucket of the partitions' shared state (`crate::shared`).
    pub state_bucket: String,
    /// How long a lease lasts without renewal: a dead engine's partitions
    /// move within about this long.
    pub lease_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            auth: Auth::None,
            tls: TlsFiles::default(),
            candles_stream: "CANDLES".to_owned(),
            signals_stream: "SIGNALS".to_owned(),
            partition_count: 16,
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
            max_age: Duration::ZERO,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            connect_timeout: Duration::from_secs(10),
            consumer_prefix: "candlewick-engine".to_owned(),
            lease_bucket: "candlewick-leases".to_owned(),
            state_bucket: "candlewick-state".to_owned(),
            lease_ttl: Duration::from_secs(10),
        }
    }
}

impl ClusterConfig {
    /// Checks what the servers would refuse, or what would leak or break.
    ///
    /// # Errors
    /// [`ClusterError::Config`] naming the key.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |key, reason: &str| {
            Err(ClusterError::Config {
                key,
                reason: reason.to_owned(),
            })
        };
        if self.servers.is_empty() {
            return bad("servers", "must name at least one server");
        }
        for s in &self.servers {
            let rest = s
                .strip_prefix("nats://")
                .or_else(|| s.strip_prefix("tls://"));
            let Some(rest) = rest else {
                return bad("servers", "each must start with nats:// or tls://");
            };
            if rest.contains('@') {
                // The URL would carry a credential into logs and errors.
                return bad(
                    "servers",
                    "a server URL must not hold a user or password; use nats.token or nats.user/password (\"env:NAME\")",
                );
            }
        }
        for (key, name) in [
            ("candles_stream", &self.candles_stream),
            ("signals_stream", &self.signals_stream),
            ("consumer_prefix", &self.consumer_prefix),
            ("lease_bucket", &self.lease_bucket),
            ("state_bucket", &self.state_bucket),
        ] {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !ok {
                return bad(key, "must be 1-64 of [A-Za-z0-9_-]");
            }
        }
        if self.lease_bucket == self.state_bucket {
            return bad("state_bucket", "must differ from lease_bucket");
        }
        if self.lease_ttl < Duration::from_secs(1) || self.lease_ttl > Duration::from_secs(600) {
            return bad("lease_ttl_s", "must be between 1 and 600 seconds");
        }
        if self.candles_stream == self.signals_stream {
            return bad("signals_stream", "must differ from candles_stream");
        }
        if self.partition_count == 0 || self.partition_count > 4096 {
            return bad("partition_count", "must be between 1 and 4096");
        }
        if !matches!(self.replicas, 1 | 3 | 5) {
            return bad("replicas", "must be 1, 3 or 5");
        }
        if self.max_ack_pending < 1 {
            return bad("max_ack_pending", "must be at least 1");
        }
        if self.duplicate_window.is_zero() || self.ack_wait.is_zero() {
            return bad(
                "duplicate_window_s",
                "duplicate_window_s and ack_wait_s must be positive",
            );
        }
        Ok(())
    }

    /// The servers, for messages (they hold no credential: see
    /// [`ClusterConfig::validate`]).
    pub fn servers_text(&self) -> String {
        self.servers.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_env_or_file_and_never_print() {
        std::env::set_var("CW_CLUSTER_TEST_SECRET", "s3cr3t-value");
        let s = Secret::resolve("token", "env:CW_CLUSTER_TEST_SECRET").unwrap();
        assert_eq!(s.expose(), "s3cr3t-value");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let e = Secret::resolve("token", "s3cr3t-value")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "from-file\n").unwrap();
        let s = Secret::resolve("token", &format!("file:{}", path.display())).unwrap();
        assert_eq!(s.expose(), "from-file");
        let e = Secret::resolve("token", "env:CW_CLUSTER_TEST_UNSET").unwrap_err();
        assert!(e.to_string().contains("CW_CLUSTER_TEST_UNSET"), "{e}");
    }

    #[test]
    fn validation_refuses_credentials_in_urls_and_bad_shapes() {
        ClusterConfig::default().validate().unwrap();
        let with = |f: fn(&mut ClusterConfig)| {
            let mut c = ClusterConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        let e = with(|c| c.servers = vec!["nats://u:hunter2@h:4222".into()]);
        assert!(e.contains("must not hold") && !e.contains("hunter2"), "{e}");
        assert!(with(|c| c.servers = vec!["http://h".into()]).contains("nats://"));
        assert!(with(|c| c.partition_count = 0).contains("partition_count"));
        assert!(with(|c| c.replicas = 2).contains("replicas"));
        assert!(with(|c| c.candles_stream = "A.B".into()).contains("candles_stream"));
    }
}
