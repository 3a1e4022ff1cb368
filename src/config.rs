//! Typed configuration, validated on load.
//!
//! Unknown keys are errors (a typo must not silently fall back to a
//! default), and every value is checked here, once, so the engine never
//! sees a symbol, interval, spec, URL or strategy it cannot use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candlewick_indicators::IndicatorSet;
use candlewick_market::{Interval, Symbol};
use candlewick_state::StreamKey;
use serde::Deserialize;

/// `config/default.toml`, compiled in so `candlewick run` needs no files.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

/// The candles shipped inside the binary, named `bundled:EURUSD-1h`.
pub const BUNDLED_EURUSD_1H: &str = include_str!("../data/EURUSD-1h.csv");

/// The embedded default's feed token. It is public (it is in the binary and
/// in the repository), so `run` may print it in the hint on how to watch;
/// any other token is a secret and is never logged.
pub const DEMO_TOKEN: &str = "candlewick-local-demo";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub engine: EngineConfig,
    pub source: SourceConfig,
    pub binance: Option<BinanceConfig>,
    pub indicators: IndicatorsConfig,
    #[serde(default)]
    pub strategies: Vec<StrategyConfig>,
    /// Models whose outputs strategies read (`[[models]]`).
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    pub state: StateConfig,
    pub feed: FeedConfig,
    /// Webhook notifications (`[notify]`); off when absent.
    pub notify: Option<NotifyConfig>,
    /// The LLM analyst (`[analyst]`); off when absent.
    pub analyst: Option<candlewick_analyst::AnalystConfig>,
    /// NATS JetStream (issue 12): `source.kind = "nats"` consumes the
    /// cluster's candles; absent, `run` is exactly the single process.
    pub nats: Option<NatsConfig>,
}

/// The pipeline's shape (see `candlewick_pipeline::PipelineConfig`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub workers: usize,
    pub queue_capacity: usize,
    pub max_batch: usize,
    pub tail_bars: usize,
    /// Checkpoint every this many ms (in the background, after emitting);
    /// 0 commits every batch before emitting it.
    pub checkpoint_interval_ms: u64,
    /// ... or after this many applied candles per shard, if sooner.
    pub checkpoint_max_candles: u64,
    /// Latency mode: µs a worker polls its queue before sleeping (0: sleep
    /// at once, no idle CPU). Only without `inline`.
    pub spin_us: u64,
    /// Latency mode: a source's thread runs a candle to completion itself
    /// (apply, strategies, emit) when its shard is idle, instead of waking
    /// the shard's worker. Needs background checkpoints.
    pub inline: bool,
    /// Latency mode: the process asks for 4 KiB pages instead of
    /// transparent huge pages, whose first touch stops a thread for
    /// milliseconds on a VM.
    pub small_pages: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 2,
            queue_capacity: 4096,
            max_batch: 1024,
            tail_bars: 256,
            checkpoint_interval_ms: 1000,
            checkpoint_max_candles: 100_000,
            spin_us: 200,
            inline: true,
            small_pages: true,
        }
    }
}

/// Most a duration setting may say (a day): beyond it is a typo.
const MAX_SETTING_MS: u64 = 86_400_000;

impl EngineConfig {
    /// The pipeline's checkpoint policy.
    pub fn checkpoint(&self) -> candlewick_pipeline::CheckpointPolicy {
        use candlewick_pipeline::CheckpointPolicy;
        match self.checkpoint_interval_ms {
            0 => CheckpointPolicy::EveryBatch,
            ms => CheckpointPolicy::Every {
                interval: std::time::Duration::from_millis(ms),
                max_candles: self.checkpoint_max_candles.max(1),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum SourceKind {
    Replay,
    Binance,
    /// The cluster's CANDLES stream on NATS JetStream (`[nats]`).
    Nats,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Replay: the candle file.
    pub data: Option<DataRef>,
    /// Replay: the stream's symbol and interval.
    pub symbol: Option<Symbol>,
    pub interval: Option<Interval>,
    /// Replay: speed-up over real time; 0 replays as fast as the workers go.
    #[serde(default)]
    pub speed: f64,
    /// Stop the engine when the replay reaches the end of its data.
    #[serde(default)]
    pub exit_at_end: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinanceConfig {
    pub ws_url: String,
    pub rest_url: String,
    /// Exact host names requests may go to.
    pub allowed_hosts: Vec<String>,
    /// Allow plain ws/http to loopback (the simulator in tests).
    #[serde(default)]
    pub allow_loopback: bool,
    pub symbols: Vec<Symbol>,
    pub intervals: Vec<Interval>,
    #[serde(default = "default_streams_per_connection")]
    pub max_streams_per_connection: usize,
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: f64,
    /// For streams never applied before: backfill from this open time (ms).
    pub start_from_ms: Option<i64>,
}

impl BinanceConfig {
    /// Every (symbol, interval) stream the section names.
    pub fn streams(&self) -> Vec<StreamKey> {
        self.symbols
            .iter()
            .flat_map(|s| self.intervals.iter().map(|&i| StreamKey::new(s.clone(), i)))
            .collect()
    }

    /// The adapter's settings: its URLs checked against the allowlist, the
    /// connections' shape, where a new stream's backfill starts.
    pub fn adapter(&self) -> anyhow::Result<candlewick_ingest::binance::BinanceConfig> {
        let allow =
            candlewick_ingest::Allowlist::new(self.allowed_hosts.clone(), self.allow_loopback);
        let mut bc =
            candlewick_ingest::binance::BinanceConfig::new(&self.ws_url, &self.rest_url, &allow)?;
        bc.max_streams_per_connection = self.max_streams_per_connection;
        bc.idle_timeout = std::time::Duration::from_secs_f64(self.idle_timeout_s);
        bc.start_from = self.start_from_ms;
        Ok(bc)
    }
}

/// `[nats]`: the servers and the shape of the cluster's streams, then the
/// keys of each role. See ARCHITECTURE.md §7.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` or `tls://host:port`, never with a user or
    /// password in them.
    pub servers: Vec<String>,
    /// `"env:NAME"` or `"file:PATH"`; a literal credential is refused.
    pub token: Option<String>,
    pub user: Option<String>,
    /// `"env:NAME"` or `"file:PATH"`, with `user`.
    pub password: Option<String>,
    /// A `.creds` file (a user JWT and its NKey seed), read at connect.
    pub credentials_file: Option<PathBuf>,
    /// An NKey seed (`SU...`): `"env:NAME"` or `"file:PATH"`.
    pub nkey_seed: Option<String>,
    /// PEM file of the CAs the servers' certificates chain to (default:
    /// the public roots). Any `tls_*` key, or a `tls://` server, makes
    /// TLS required.
    pub tls_ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// N of the partition hash (FNV-1a of the symbol mod N); ingest and
    /// every engine must agree. Default 16.
    #[serde(default = "default_partition_count")]
    pub partition_count: u32,
    #[serde(default = "default_candles_stream")]
    pub candles_stream: String,
    #[serde(default = "default_signals_stream")]
    pub signals_stream: String,
    /// Copies of each stream (1, 3 or 5). Default 1.
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// How long a `Nats-Msg-Id` is remembered (seconds). Default 600.
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_s: f64,
    /// How long messages are kept (hours); 0 (default) keeps them.
    #[serde(default)]
    pub max_age_h: f64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_s: f64,
    // Engine role (`candlewick run`, source.kind = "nats").
    /// The partitions this engine consumes (static assignment).
    #[serde(default)]
    pub partitions: Vec<u32>,
    /// "static" (default: `partitions` says which) or "lease" (engines
    /// share the partitions by leases, with failover; ARCHITECTURE.md §7).
    #[serde(default = "default_assignment")]
    pub assignment: String,
    /// With leases: seconds a lease lasts unrenewed (a dead engine's
    /// partitions move within about this). Default 10.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl_s: f64,
    /// With leases: the key-value buckets of leases and shared state.
    #[serde(default = "default_lease_bucket")]
    pub lease_bucket: String,
    #[serde(default = "default_state_bucket")]
    pub state_bucket: String,
    /// With leases: this engine's name in the lease bucket
    /// ([A-Za-z0-9_-]); default `engine-<host>-<pid>`.
    pub engine_id: Option<String>,
    /// The streams of the cluster: this engine serves those whose symbol
    /// hashes to one of its partitions.
    #[serde(default)]
    pub symbols: Vec<Symbol>,
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// Durable consumer of partition P: `<consumer_prefix>-p<P>`.
    #[serde(default = "default_consumer_prefix")]
    pub consumer_prefix: String,
    /// Seconds a delivered candle may wait for its checkpoint before the
    /// server delivers it again. Default 30.
    #[serde(default = "default_ack_wait")]
    pub ack_wait_s: f64,
    /// Candles delivered and not yet acked per partition. Default 20000.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Also publish every signal to SIGNALS. Default false.
    #[serde(default)]
    pub publish_signals: bool,
    /// Signals queued for SIGNALS before the workers wait. Default 65536.
    #[serde(default = "default_signal_queue")]
    pub signal_queue: usize,
    // Feed role (`candlewick feed`).
    /// Seconds of SIGNALS replayed into the feed at start, for clients
    /// resuming with `since`. Default 600.
    pub feed_replay_s: Option<f64>,
}

fn default_partition_count() -> u32 {
    16
}
fn default_candles_stream() -> String {
    "CANDLES".to_owned()
}
fn default_signals_stream() -> String {
    "SIGNALS".to_owned()
}
fn default_replicas() -> usize {
    1
}
fn default_duplicate_window() -> f64 {
    600.0
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_assignment() -> String {
    "static".to_owned()
}
fn default_lease_ttl() -> f64 {
    10.0
}
fn default_lease_bucket() -> String {
    "candlewick-leases".to_owned()
}
fn default_state_bucket() -> String {
    "candlewick-state".to_owned()
}
fn default_consumer_prefix() -> String {
    "candlewick-engine".to_owned()
}
fn default_ack_wait() -> f64 {
    30.0
}
fn default_max_ack_pending() -> i64 {
    20_000
}
fn default_signal_queue() -> usize {
    65_536
}

impl NatsConfig {
    /// The cluster crate's settings, credentials resolved (their values
    /// never appear in an error).
    ///
    /// # Errors
    /// A bad value, named; an unset variable or unreadable file; a part
    /// of issue 12 that is not built yet.
    pub fn cluster(&self) -> anyhow::Result<candlewick_cluster::ClusterConfig> {
        use candlewick_cluster::{Auth, Secret, TlsFiles};
        use std::time::Duration;
        if !matches!(self.assignment.as_str(), "static" | "lease") {
            bail!("nats.assignment must be \"static\" or \"lease\"");
        }
        let given = (
            &self.token,
            &self.user,
            &self.password,
            &self.nkey_seed,
            &self.credentials_file,
        );
        let auth = match given {
            (None, None, None, None, None) => Auth::None,
            (Some(t), None, None, None, None) => Auth::Token(Secret::resolve("token", t)?),
            (None, Some(u), Some(p), None, None) => Auth::UserPassword {
                user: u.clone(),
                password: Secret::resolve("password", p)?,
            },
            (None, None, None, Some(seed), None) => Auth::NKey(Secret::resolve("nkey_seed", seed)?),
            (None, None, None, None, Some(path)) => {
                if !path.is_file() {
                    bail!("nats.credentials_file: {} is not a file", path.display());
                }
                Auth::CredentialsFile(path.clone())
            }
            _ => bail!("nats: give one of token, user and password, nkey_seed or credentials_file"),
        };
        let tls = TlsFiles {
            ca: self.tls_ca_file.clone(),
            client: match (&self.tls_cert_file, &self.tls_key_file) {
                (None, None) => None,
                (Some(c), Some(k)) => Some((c.clone(), k.clone())),
                _ => bail!("nats.tls_cert_file and nats.tls_key_file go together"),
            },
        };
        for path in tls
            .ca
            .iter()
            .chain(tls.client.iter().flat_map(|(c, k)| [c, k]))
        {
            if !path.is_file() {
                bail!("nats: TLS file {} is not a file", path.display());
            }
        }
        within(
            "nats.duplicate_window_s",
            self.duplicate_window_s,
            bounds::SECONDS,
        )?;
        within("nats.ack_wait_s", self.ack_wait_s, bounds::SECONDS)?;
        within(
            "nats.connect_timeout_s",
            self.connect_timeout_s,
            bounds::SECONDS,
        )?;
        if !(self.max_age_h.is_finite() && (0.0..=24.0 * 365.0 * 10.0).contains(&self.max_age_h)) {
            bail!("nats.max_age_h must be between 0 (keep) and ten years");
        }
        if self.signal_queue == 0 || self.signal_queue > bounds::QUEUE {
            bail!("nats.signal_queue must be between 1 and {}", bounds::QUEUE);
        }
        let c = candlewick_cluster::ClusterConfig {
            servers: self.servers.clone(),
            auth,
            tls,
            candles_stream: self.candles_stream.clone(),
            signals_stream: self.signals_stream.clone(),
            partition_count: self.partition_count,
            replicas: self.replicas,
            duplicate_window: Duration::from_secs_f64(self.duplicate_window_s),
            max_age: Duration::from_secs_f64(self.max_age_h * 3600.0),
            ack_wait: Duration::from_secs_f64(self.ack_wait_s),
            max_ack_pending: self.max_ack_pending,
            connect_timeout: Duration::from_secs_f64(self.connect_timeout_s),
            consumer_prefix: self.consumer_prefix.clone(),
            lease_bucket: self.lease_bucket.clone(),
            state_bucket: self.state_bucket.clone(),
            lease_ttl: Duration::from_secs_f64(self.lease_ttl_s.clamp(0.0, 1e6)),
        };
        c.validate()?;
        Ok(c)
    }

    /// The engine role's keys (`candlewick run` with source.kind = "nats").
    fn validate_engine(&self) -> anyhow::Result<()> {
        let c = self.cluster()?;
        if self.feed_replay_s.is_some() {
            bail!("nats.feed_replay_s is a key of the feed role (`candlewick feed`), not of the engine");
        }
        if self.leased() {
            if !self.partitions.is_empty() {
                bail!("nats.partitions must be left out with assignment = \"lease\" (the leases decide)");
            }
            if let Some(id) = &self.engine_id {
                let ok = !id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
                if !ok {
                    bail!("nats.engine_id must be 1-64 of [A-Za-z0-9_-]");
                }
            }
        } else if self.partitions.is_empty() {
            bail!(
                "nats.partitions must list the partitions this engine consumes (static assignment)"
            );
        }
        for (i, p) in self.partitions.iter().enumerate() {
            if *p >= c.partition_count {
                bail!(
                    "nats.partitions: {p} is not below nats.partition_count ({})",
                    c.partition_count
                );
            }
            if self.partitions[..i].contains(p) {
                bail!("nats.partitions: {p} is given twice");
            }
        }
        if self.symbols.is_empty() || self.intervals.is_empty() {
            bail!("nats.symbols and nats.intervals must not be empty (the cluster's streams; this engine serves those of its partitions)");
        }
        Ok(())
    }

    /// The ingest role's keys: the engine's and the feed's are refused.
    pub fn validate_ingest(&self) -> anyhow::Result<()> {
        self.cluster()?;
        if self.feed_replay_s.is_some() {
            bail!("nats.feed_replay_s is a key of the feed role (`candlewick feed`), not of `candlewick ingest`");
        }
        self.refuse_engine_keys(
            "`candlewick ingest` (its streams are [binance] symbols x intervals)",
        )
    }

    /// Refuses the engine role's keys in the config of another role
    /// (`role`, with why it needs none), so that a config meant for one
    /// role is not silently half-used by another.
    fn refuse_engine_keys(&self, role: &str) -> anyhow::Result<()> {
        let engine_keys = [
            ("partitions", !self.partitions.is_empty()),
            ("symbols", !self.symbols.is_empty()),
            ("intervals", !self.intervals.is_empty()),
            ("publish_signals", self.publish_signals),
            ("engine_id", self.engine_id.is_some()),
        ];
        match engine_keys.iter().find(|(_, given)| *given) {
            Some((key, _)) => {
                bail!("nats.{key} is a key of the engine role (`candlewick run`), not of {role}")
            }
            None => Ok(()),
        }
    }

    /// Seconds of SIGNALS the feed role replays at start.
    pub fn feed_replay(&self) -> f64 {
        self.feed_replay_s.unwrap_or(600.0)
    }

    /// The feed role's keys: the engine's are refused, as the ingest
    /// role's are.
    pub fn validate_feed(&self) -> anyhow::Result<()> {
        self.cluster()?;
        within("nats.feed_replay_s", self.feed_replay(), bounds::SECONDS)?;
        self.refuse_engine_keys("`candlewick feed` (it serves every signal on SIGNALS)")
    }

    /// Partitions are shared by leases (`assignment = "lease"`).
    pub fn leased(&self) -> bool {
        self.assignment == "lease"
    }

    /// This engine's name in the lease bucket.
    pub fn engine_name(&self) -> String {
        self.engine_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let host: String = host
                .trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect();
            format!("engine-{host}-{}", std::process::id())
        })
    }

    /// The streams of the engine's partitions, in configured order.
    pub fn engine_streams(&self) -> Vec<StreamKey> {
        self.engine_streams_of(&self.partitions)
    }

    /// The streams of `partitions`, in configured order.
    pub fn engine_streams_of(&self, partitions: &[u32]) -> Vec<StreamKey> {
        let n = self.partition_count;
        self.symbols
            .iter()
            .filter(|s| {
                partitions.contains(&candlewick_cluster::subjects::partition_of(s.as_str(), n))
            })
            .flat_map(|s| self.intervals.iter().map(|&i| StreamKey::new(s.clone(), i)))
            .collect()
    }
}

/// Reads a cluster role's config file and parses and checks it
/// ([`parse_checked`]).
fn load_role<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl Fn(&T) -> anyhow::Result<()>,
) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_checked(&text, &path.display().to_string(), validate)
}

/// Parses a config's `text` (an error names `origin`, the line and the
/// key) and checks it with `validate` (an error names `origin`).
fn parse_checked<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    validate: impl Fn(&T) -> anyhow::Result<()>,
) -> anyhow::Result<T> {
    let config: T =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}{}", one_line(&e, text)))?;
    validate(&config).with_context(|| origin.to_owned())?;
    Ok(config)
}

/// `candlewick feed --config FILE`: the WebSocket feed of the cluster's
/// SIGNALS stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRoleConfig {
    pub nats: NatsConfig,
    pub feed: FeedConfig,
}

impl FeedRoleConfig {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        load_role(path, |c: &FeedRoleConfig| {
            c.nats.validate_feed()?;
            c.feed.server_config().map(drop)
        })
    }
}

/// `candlewick ingest --config FILE`: the Binance adapter publishing to
/// the cluster's CANDLES stream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub binance: BinanceConfig,
    pub nats: NatsConfig,
}

impl IngestConfig {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        load_role(path, IngestConfig::validate)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let b = &self.binance;
        if b.symbols.is_empty() || b.intervals.is_empty() {
            bail!("binance.symbols and binance.intervals must not be empty");
        }
        within("binance.idle_timeout_s", b.idle_timeout_s, bounds::SECONDS)?;
        if b.max_streams_per_connection == 0
            || b.max_streams_per_connection > bounds::STREAMS_PER_CONNECTION
        {
            bail!(
                "binance.max_streams_per_connection must be between 1 and {}",
                bounds::STREAMS_PER_CONNECTION
            );
        }
        let allow = candlewick_ingest::Allowlist::new(b.allowed_hosts.clone(), b.allow_loopback);
        allow.check(&b.ws_url).context("binance.ws_url")?;
        allow.check(&b.rest_url).context("binance.rest_url")?;
        self.nats.validate_ingest()
    }
}

fn default_streams_per_connection() -> usize {
    1024
}

fn default_idle_timeout() -> f64 {
    60.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// A `.wasm` file. A bare or relative name that is not found as given
    /// is looked up where `scripts/build-plugins` puts modules.
    pub wasm: PathBuf,
    /// The name signals carry; default: the manifest's.
    pub name: Option<String>,
    /// Parameter overrides, checked against the manifest.
    #[serde(default)]
    pub params: toml::Table,
    /// Wall-time deadline of one plugin call (ms); missing it quarantines
    /// the plugin. Default: the host's (1 ms).
    pub deadline_ms: Option<f64>,
}

/// A model artifact strategies may read (DESIGN §9), verified when the
/// engine starts (`candlewick_inference::NamedModel::load`): hash, version,
/// tensors, scaler, and that this engine computes its features.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The artifact directory (`manifest.json`, `model.safetensors`), as
    /// written by `candlewick train`.
    pub dir: PathBuf,
    /// The name strategies ask for (a plugin manifest's `models`);
    /// default: the name in the artifact's manifest.
    pub name: Option<String>,
}

/// Where candles come from: a file, or data bundled in the binary.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum DataRef {
    Bundled(Bundled),
    File(PathBuf),
}

/// Candle files compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub enum Bundled {
    EurUsd1h,
}

impl Bundled {
    pub fn name(self) -> &'static str {
        match self {
            Bundled::EurUsd1h => "bundled:EURUSD-1h",
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            Bundled::EurUsd1h => BUNDLED_EURUSD_1H,
        }
    }
}

impl TryFrom<String> for DataRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.strip_prefix("bundled:") {
            Some("EURUSD-1h") => Ok(DataRef::Bundled(Bundled::EurUsd1h)),
            Some(other) => Err(format!(
                "unknown bundled data {other:?}; bundled: EURUSD-1h"
            )),
            None => Ok(DataRef::File(PathBuf::from(s))),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorsConfig {
    pub spec: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub sync: bool,
    /// Hours of candle time the signal outbox keeps (feed resume with
    /// `since`). Default 168 (7 days).
    #[serde(default = "default_outbox_hours")]
    pub outbox_retention_h: u64,
}

fn default_outbox_hours() -> u64 {
    168
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub listen: SocketAddr,
    /// Accepted tokens; `"env:NAME"` reads the token from variable NAME.
    pub tokens: Vec<String>,
    #[serde(default = "default_client_queue")]
    pub client_queue: usize,
    #[serde(default = "default_max_clients")]
    pub max_clients: usize,
    #[serde(default = "default_true")]
    pub candles: bool,
    #[serde(default = "default_send_timeout")]
    pub send_timeout_s: f64,
    /// Browser origins allowed to open the feed (`https://host[:port]`);
    /// others get 403. Default none (programs send no `Origin`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// TCP connections at once before the WebSocket upgrade. Default 256.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds a connection may take to send its request head. Default 10.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_s: f64,
    /// Names one client may subscribe to. Default 1024.
    #[serde(default = "default_max_subscriptions")]
    pub max_subscriptions: usize,
    /// Client messages per second, sustained (over it: closed with 1008).
    /// Default 20.
    #[serde(default = "default_ops_per_second")]
    pub ops_per_second: f64,
    /// Client messages at once before the rate applies. Default 100.
    #[serde(default = "default_ops_burst")]
    pub ops_burst: u32,
}

fn default_max_connections() -> usize {
    256
}

fn default_header_timeout() -> f64 {
    10.0
}

fn default_max_subscriptions() -> usize {
    1024
}

fn default_ops_per_second() -> f64 {
    20.0
}

fn default_ops_burst() -> u32 {
    100
}

/// Shortest feed token accepted: a guessable token is no gate.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Upper bounds on sizes and durations: beyond them a value is a typo (or
/// would exhaust memory, or panic converting to a `Duration`).
pub mod bounds {
    pub const WORKERS: usize = 1024;
    pub const QUEUE: usize = 1 << 22;
    pub const BATCH: usize = 1 << 20;
    pub const TAIL_BARS: usize = 1 << 20;
    pub const CLIENTS: usize = 1 << 20;
    pub const SUBSCRIPTIONS: usize = 1 << 20;
    /// Binance allows 1024 streams per connection.
    pub const STREAMS_PER_CONNECTION: usize = 1024;
    /// A day, in seconds.
    pub const SECONDS: f64 = 86_400.0;
    /// A plugin call's deadline, ms.
    pub const DEADLINE_MS: f64 = 60_000.0;
    pub const OPS_PER_SECOND: f64 = 1e6;
    pub const SPEED: f64 = 1e9;
}

/// `[notify]`: where notifications go (see README "Notifications").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Notifications the hand-off channel holds; beyond it they are dropped
    /// and counted (a worker never waits). Default 4096.
    #[serde(default = "default_notify_queue")]
    pub queue: usize,
    /// Records one webhook's outbox holds before new ones are dropped
    /// (counted). Default 100,000.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// At stop, seconds the notifier may go on delivering. Default 5.
    #[serde(default = "default_drain")]
    pub drain_s: f64,
    /// A task (the exchange connection, the feed, a shard) down this many
    /// seconds is told as a `health` notification (then its recovery). A
    /// shorter blip is not. Default 30.
    #[serde(default = "default_down_after")]
    pub down_after_s: f64,
    /// The outbox's RocksDB directory. Default: `notify` in state.path.
    pub outbox_path: Option<PathBuf>,
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

/// `[[notify.webhooks]]`: one receiver.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the webhook in the outbox and in listings; keep it when the
    /// URL changes. Default: the URL's host.
    pub name: Option<String>,
    pub url: String,
    /// The request's shape: `candlewick` (signed JSON, the default), or a
    /// chat service's incoming webhook: `slack`, `discord`, `telegram`
    /// (`url` = `https://api.telegram.org/bot<TOKEN>/sendMessage`, with
    /// `chat_id`). A chat webhook's URL is its credential.
    pub preset: Option<String>,
    /// The chat a `telegram` bot posts to.
    pub chat_id: Option<String>,
    /// For an email destination (`url = "smtp://HOST[:PORT]"`, STARTTLS
    /// required beyond loopback, or `smtps://` for TLS from the start):
    /// the addresses and the relay's login.
    pub email: Option<EmailToml>,
    /// The signing secret: the name of an environment variable holding it,
    /// or a file holding it (one of the two; chat presets need none).
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// Kinds sent: `signal`, `quarantine`, `engine`, `health`, `reload`,
    /// `analysis`.
    /// Default: all.
    #[serde(default = "default_notify_events")]
    pub events: Vec<String>,
    /// Filters; an empty list accepts all.
    #[serde(default)]
    pub strategies: Vec<String>,
    #[serde(default)]
    pub symbols: Vec<Symbol>,
    #[serde(default)]
    pub actions: Vec<String>,
    /// Signals with |strength| below this are not sent.
    pub min_strength: Option<f64>,
    /// Analyses (`analysis` events) with a confidence below this are not
    /// sent.
    pub min_confidence: Option<f64>,
    /// Attempts before a notification goes to the dead letters. Default 8.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Requests a minute at most. Default 60.
    #[serde(default = "default_rate_per_min")]
    pub rate_per_min: f64,
    /// One request's limit, seconds. Default 10.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_s: f64,
    /// First retry after this many ms, doubling (with jitter). Default 1000.
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    /// ... up to this many seconds. Default 600.
    #[serde(default = "default_retry_max")]
    pub retry_max_s: f64,
}

/// `[notify.webhooks.email]`: who sends, who receives, the relay's login
/// (the password from an environment variable or a file, never inline).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailToml {
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl EmailToml {
    /// The settings, the password read now when `read_password`.
    fn settings(&self, read_password: bool) -> anyhow::Result<candlewick_notify::EmailConfig> {
        use candlewick_notify::Secret;
        let password = match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => bail!("give password_env or password_file, not both"),
            _ if !read_password => None,
            (Some(var), None) => Some(Secret::from_env(var)?),
            (None, Some(path)) => Some(Secret::from_file(path)?),
            (None, None) => None,
        };
        let has_password = self.password_env.is_some() || self.password_file.is_some();
        if self.username.is_some() != has_password {
            bail!("give username and password_env (or password_file) together, or neither");
        }
        Ok(candlewick_notify::EmailConfig {
            from: self.from.clone(),
            to: self.to.clone(),
            username: self.username.clone().filter(|_| read_password),
            password,
        })
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL's path may be a credential: origin only.
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &candlewick_notify::redact_url(&self.url))
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

fn default_notify_queue() -> usize {
    4096
}

fn default_max_pending() -> usize {
    100_000
}

fn default_drain() -> f64 {
    5.0
}

fn default_down_after() -> f64 {
    30.0
}

fn default_notify_events() -> Vec<String> {
    candlewick_notify::Kind::ALL
        .iter()
        .map(|k| k.as_str().to_owned())
        .collect()
}

fn default_max_attempts() -> u32 {
    8
}

fn default_rate_per_min() -> f64 {
    60.0
}

fn default_webhook_timeout() -> f64 {
    10.0
}

fn default_retry_initial() -> u64 {
    1000
}

fn default_retry_max() -> f64 {
    600.0
}

/// Signal actions a webhook may filter on.
const ACTIONS: [&str; 4] = ["buy", "sell", "exit", "hold"];

impl NotifyConfig {
    /// The outbox directory: `outbox_path`, or `notify` in `state_path`.
    pub fn outbox(&self, state_path: &Path) -> PathBuf {
        self.outbox_path
            .clone()
            .unwrap_or_else(|| state_path.join(candlewick_notify::OUTBOX_DIR))
    }

    /// Every value checked, each error naming its key. Secrets are not read
    /// here (a variable may be set only where the engine runs).
    fn validate(&self) -> anyhow::Result<()> {
        use candlewick_notify::bounds;
        if self.queue == 0 || self.queue > bounds::QUEUE {
            bail!("notify.queue must be between 1 and {}", bounds::QUEUE);
        }
        if self.max_pending == 0 || self.max_pending > bounds::MAX_PENDING {
            bail!(
                "notify.max_pending must be between 1 and {}",
                bounds::MAX_PENDING
            );
        }
        if !(self.drain_s.is_finite() && self.drain_s >= 0.0 && self.drain_s <= 600.0) {
            bail!("notify.drain_s must be a number from 0 to 600");
        }
        within("notify.down_after_s", self.down_after_s, 86_400.0)?;
        if self.webhooks.is_empty() {
            bail!("notify: give at least one [[notify.webhooks]] (or remove [notify])");
        }
        let mut names: Vec<String> = Vec::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let name = w.validate(i)?;
            if names.contains(&name) {
                bail!("notify.webhooks[{i}].name {name:?} is given twice; give each webhook its own name");
            }
            names.push(name);
        }
        Ok(())
    }

    /// The notifier's settings, secrets read.
    ///
    /// # Errors
    /// A secret that cannot be read (named: the variable or file, never
    /// the value).
    pub fn build(&self) -> anyhow::Result<candlewick_notify::NotifyConfig> {
        use std::time::Duration;
        let webhooks = self
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| w.build(i))
            .collect::<anyhow::Result<_>>()?;
        Ok(candlewick_notify::NotifyConfig {
            webhooks,
            queue: self.queue,
            max_pending: self.max_pending,
            drain: Duration::from_secs_f64(self.drain_s),
        })
    }
}

impl WebhookConfig {
    /// The webhook's name, given or from the URL's host.
    fn name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .map(|h| h.replace([':', '[', ']'], ""))
            .unwrap_or_default()
    }

    fn preset(&self) -> anyhow::Result<candlewick_notify::Preset> {
        let name = self.preset.as_deref().unwrap_or("candlewick");
        candlewick_notify::Preset::parse(name, self.chat_id.as_deref()).map_err(anyhow::Error::msg)
    }

    /// Checks the entry; returns its name.
    fn validate(&self, i: usize) -> anyhow::Result<String> {
        use candlewick_notify::bounds;
        let key = |k: &str| format!("notify.webhooks[{i}].{k}");
        let name = self.name();
        if !candlewick_notify::is_name(&name) {
            bail!(
                "{} {name:?} must be 1-64 of [a-z0-9_.-] (set `name` when the URL's host is not)",
                key("name")
            );
        }
        if let Some(email) = &self.email {
            let settings = email.settings(false).with_context(|| key("email"))?;
            let timeout = std::time::Duration::from_secs(1);
            candlewick_notify::email::Mailer::new(&name, &self.url, &settings, timeout)
                .with_context(|| key("url"))?;
        } else if candlewick_notify::email::is_email_url(&self.url) {
            bail!(
                "{}: an smtp:// URL needs [notify.webhooks.email] (from, to)",
                key("email")
            );
        } else {
            candlewick_notify::webhook::check_url(&name, &self.url).with_context(|| key("url"))?;
        }
        let preset = self.preset().with_context(|| key("preset"))?;
        match (&self.secret_env, &self.secret_file) {
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) if !preset.signs() || self.email.is_some() => {}
            _ => bail!(
                "{}: give secret_env or secret_file (one of them)",
                key("secret_env")
            ),
        }
        for e in &self.events {
            if candlewick_notify::Kind::parse(e).is_none() {
                bail!(
                    "{} {e:?} is not one of {:?}",
                    key("events"),
                    candlewick_notify::Kind::ALL.map(|k| k.as_str())
                );
            }
        }
        for a in &self.actions {
            if !ACTIONS.contains(&a.as_str()) {
                bail!("{} {a:?} is not one of {ACTIONS:?}", key("actions"));
            }
        }
        for s in &self.strategies {
            if !candlewick_plugins::is_strategy_name(s) {
                bail!(
                    "{} {s:?} is not a strategy name (1-64 of [a-z0-9_-])",
                    key("strategies")
                );
            }
        }
        if self
            .min_strength
            .is_some_and(|m| !(m.is_finite() && (0.0..=1.0).contains(&m)))
        {
            bail!("{} must be a number from 0 to 1", key("min_strength"));
        }
        if self
            .min_confidence
            .is_some_and(|m| !(m.is_finite() && (0.0..=1.0).contains(&m)))
        {
            bail!("{} must be a number from 0 to 1", key("min_confidence"));
        }
        if self.max_attempts == 0 || self.max_attempts > bounds::MAX_ATTEMPTS {
            bail!(
                "{} must be between 1 and {}",
                key("max_attempts"),
                bounds::MAX_ATTEMPTS
            );
        }
        within(
            &key("rate_per_min"),
            self.rate_per_min,
            bounds::RATE_PER_MIN,
        )?;
        within(&key("timeout_s"), self.timeout_s, 300.0)?;
        within(
            &key("retry_max_s"),
            self.retry_max_s,
            crate::config::bounds::SECONDS,
        )?;
        if self.retry_initial_ms == 0 || self.retry_initial_ms as f64 > self.retry_max_s * 1000.0 {
            bail!(
                "{} must be at least 1 and at most retry_max_s",
                key("retry_initial_ms")
            );
        }
        Ok(name)
    }

    fn build(&self, i: usize) -> anyhow::Result<candlewick_notify::WebhookConfig> {
        use candlewick_notify::{Filter, Kind, Retry, Secret};
        use std::time::Duration;
        let secret = match (&self.secret_env, &self.secret_file) {
            (Some(var), _) => Some(Secret::from_env(var)),
            (None, Some(path)) => Some(Secret::from_file(path)),
            (None, None) => None,
        }
        .transpose()
        .with_context(|| format!("notify.webhooks[{i}]"))?;
        let preset = self
            .preset()
            .with_context(|| format!("notify.webhooks[{i}].preset"))?;
        let mut w = candlewick_notify::WebhookConfig::preset(&self.name(), &self.url, preset);
        w.secret = secret;
        w.email = self
            .email
            .as_ref()
            .map(|e| e.settings(true))
            .transpose()
            .with_context(|| format!("notify.webhooks[{i}].email"))?;
        w.filter = Filter {
            kinds: self.events.iter().filter_map(|e| Kind::parse(e)).collect(),
            strategies: self.strategies.clone(),
            symbols: self.symbols.iter().map(|s| s.as_str().to_owned()).collect(),
            actions: self.actions.clone(),
            min_strength: self.min_strength,
            min_confidence: self.min_confidence,
        };
        w.max_attempts = self.max_attempts;
        w.rate_per_min = self.rate_per_min;
        w.timeout = Duration::from_secs_f64(self.timeout_s);
        w.retry = Retry {
            initial: Duration::from_millis(self.retry_initial_ms),
            max: Duration::from_secs_f64(self.retry_max_s),
        };
        Ok(w)
    }
}

fn default_client_queue() -> usize {
    4096
}

fn default_max_clients() -> usize {
    1024
}

fn default_true() -> bool {
    true
}

fn default_send_timeout() -> f64 {
    30.0
}

impl FeedConfig {
    /// The tokens, with `env:NAME` resolved.
    ///
    /// # Errors
    /// A variable that is not set or empty (named; its value never shown).
    pub fn resolved_tokens(&self) -> anyhow::Result<Vec<String>> {
        self.tokens
            .iter()
            .map(|t| match t.strip_prefix("env:") {
                Some(var) => match std::env::var(var) {
                    Ok(v) if v.len() >= MIN_TOKEN_BYTES => Ok(v),
                    Ok(v) if !v.is_empty() => bail!(
                        "feed.tokens: the token in {var} is shorter than {MIN_TOKEN_BYTES} bytes"
                    ),
                    _ => bail!("feed.tokens: environment variable {var} is not set"),
                },
                None => Ok(t.clone()),
            })
            .collect()
    }

    /// The feed server's settings from this section (tokens resolved).
    /// `run` is to build its feed from this (today it sets a few fields
    /// inline, so the new limits take their defaults there).
    ///
    /// # Errors
    /// As [`FeedConfig::resolved_tokens`].
    pub fn server_config(&self) -> anyhow::Result<candlewick_feed::FeedConfig> {
        use std::time::Duration;
        Ok(candlewick_feed::FeedConfig {
            tokens: self.resolved_tokens()?,
            max_clients: self.max_clients,
            client_queue: self.client_queue,
            candles: self.candles,
            send_timeout: Duration::from_secs_f64(self.send_timeout_s),
            max_connections: self.max_connections,
            header_timeout: Duration::from_secs_f64(self.header_timeout_s),
            allowed_origins: self.allowed_origins.clone(),
            max_subscriptions: self.max_subscriptions,
            ops_per_second: self.ops_per_second,
            ops_burst: self.ops_burst,
            ..candlewick_feed::FeedConfig::default()
        })
    }

    /// The checks on who may reach the feed and how (see SECURITY.md).
    fn validate(&self) -> anyhow::Result<()> {
        use bounds::*;
        for t in &self.tokens {
            if !t.starts_with("env:") && t.len() < MIN_TOKEN_BYTES {
                // The token itself is never shown.
                bail!("feed.tokens: a token is shorter than {MIN_TOKEN_BYTES} bytes");
            }
        }
        let exposed = !self.listen.ip().is_loopback();
        if exposed && self.tokens.iter().any(|t| t == DEMO_TOKEN) {
            bail!(
                "feed.listen {} is not a loopback address, and feed.tokens holds the public demo \
                 token: anyone could read the feed. Use a secret token (\"env:NAME\")",
                self.listen
            );
        }
        if exposed {
            tracing::warn!(
                listen = %self.listen,
                "the feed listens beyond loopback without TLS: tokens and signals cross the \
                 network in clear; put a TLS-terminating proxy in front or bind 127.0.0.1"
            );
        }
        for o in &self.allowed_origins {
            let rest = o
                .strip_prefix("https://")
                .or_else(|| o.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.contains('/') || r.contains('*')) {
                bail!("feed.allowed_origins: {o:?} is not an origin (scheme://host[:port], no path, no wildcard)");
            }
        }
        let sizes = [
            ("client_queue", self.client_queue, QUEUE),
            ("max_clients", self.max_clients, CLIENTS),
            ("max_connections", self.max_connections, CLIENTS),
            ("max_subscriptions", self.max_subscriptions, SUBSCRIPTIONS),
        ];
        for (key, v, max) in sizes {
            if v == 0 || v > max {
                bail!("feed.{key} must be between 1 and {max}");
            }
        }
        within("feed.send_timeout_s", self.send_timeout_s, SECONDS)?;
        within("feed.header_timeout_s", self.header_timeout_s, SECONDS)?;
        within("feed.ops_per_second", self.ops_per_second, OPS_PER_SECOND)?;
        if self.ops_burst == 0 {
            bail!("feed.ops_burst must be at least 1");
        }
        Ok(())
    }
}

impl Config {
    /// Reads `path`, or the embedded default when `None`.
    ///
    /// # Errors
    /// An unreadable file, a TOML or type error (with its key), or a value
    /// that fails validation.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (
                EMBEDDED_DEFAULT.to_owned(),
                "embedded config/default.toml".to_owned(),
            ),
        };
        parse_checked(&text, &origin, Config::validate)
    }

    fn validate(&self) -> anyhow::Result<()> {
        IndicatorSet::parse(&self.indicators.spec).context("indicators.spec")?;
        let e = &self.engine;
        if e.workers == 0 || e.queue_capacity == 0 || e.max_batch == 0 {
            bail!("engine.workers, engine.queue_capacity and engine.max_batch must be at least 1");
        }
        if e.checkpoint_interval_ms > MAX_SETTING_MS || e.spin_us > MAX_SETTING_MS {
            bail!("engine.checkpoint_interval_ms and engine.spin_us must be at most a day ({MAX_SETTING_MS} ms)");
        }
        if self.state.outbox_retention_h > 24 * 365 * 10 {
            bail!("state.outbox_retention_h must be at most ten years");
        }
        match self.source.kind {
            SourceKind::Replay => {
                if self.source.data.is_none()
                    || self.source.symbol.is_none()
                    || self.source.interval.is_none()
                {
                    bail!("source: kind = \"replay\" needs data, symbol and interval");
                }
                if !(self.source.speed.is_finite() && self.source.speed >= 0.0) {
                    bail!("source.speed must be a number >= 0 (0 = as fast as possible)");
                }
            }
            SourceKind::Binance => {
                let Some(b) = &self.binance else {
                    bail!("source: kind = \"binance\" needs a [binance] section");
                };
                if b.symbols.is_empty() || b.intervals.is_empty() {
                    bail!("binance.symbols and binance.intervals must not be empty");
                }
                if !(b.idle_timeout_s.is_finite() && b.idle_timeout_s > 0.0) {
                    bail!("binance.idle_timeout_s must be positive");
                }
                let allow =
                    candlewick_ingest::Allowlist::new(b.allowed_hosts.clone(), b.allow_loopback);
                allow.check(&b.ws_url).context("binance.ws_url")?;
                allow.check(&b.rest_url).context("binance.rest_url")?;
            }
            SourceKind::Nats => {
                let Some(n) = &self.nats else {
                    bail!("source: kind = \"nats\" needs a [nats] section");
                };
                n.validate_engine()?;
            }
        }
        if let (Some(n), false) = (&self.nats, self.source.kind == SourceKind::Nats) {
            // Checked all the same: a [nats] section that is ignored must
            // still not be wrong.
            n.cluster()?;
            if n.publish_signals {
                bail!("nats.publish_signals needs source.kind = \"nats\" (publishing the signals of a single-process run is not built yet)");
            }
        }
        for s in &self.strategies {
            if s.deadline_ms.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
                bail!("strategies: deadline_ms must be positive");
            }
        }
        self.validate_models()?;
        self.validate_bounds()?;
        if self.feed.tokens.is_empty() {
            bail!("feed.tokens must name at least one token");
        }
        if !(self.feed.send_timeout_s.is_finite() && self.feed.send_timeout_s > 0.0) {
            bail!("feed.send_timeout_s must be positive");
        }
        self.feed.validate()?;
        if let Some(n) = &self.notify {
            n.validate()?;
        }
        if let Some(a) = &self.analyst {
            a.validate()?;
        }
        Ok(())
    }

    /// Upper bounds on the engine's sizes and durations ([`bounds`]).
    fn validate_bounds(&self) -> anyhow::Result<()> {
        use bounds::*;
        let e = &self.engine;
        let sizes = [
            ("engine.workers", e.workers, WORKERS),
            ("engine.queue_capacity", e.queue_capacity, QUEUE),
            ("engine.max_batch", e.max_batch, BATCH),
            ("engine.tail_bars", e.tail_bars, TAIL_BARS),
        ];
        for (key, v, max) in sizes {
            if v > max {
                bail!("{key} must be at most {max}");
            }
        }
        if self.source.speed > SPEED {
            bail!("source.speed must be at most {SPEED}");
        }
        if let Some(b) = &self.binance {
            within("binance.idle_timeout_s", b.idle_timeout_s, SECONDS)?;
            if b.max_streams_per_connection == 0
                || b.max_streams_per_connection > STREAMS_PER_CONNECTION
            {
                bail!("binance.max_streams_per_connection must be between 1 and {STREAMS_PER_CONNECTION}");
            }
        }
        for (i, s) in self.strategies.iter().enumerate() {
            if let Some(d) = s.deadline_ms {
                within("strategies: deadline_ms", d, DEADLINE_MS)?;
            }
            if let Some(name) = &s.name {
                if !candlewick_plugins::is_strategy_name(name) {
                    bail!("strategies[{i}].name {name:?} must be 1-64 of [a-z0-9_-]");
                }
                let again = self.strategies[..i]
                    .iter()
                    .any(|o| o.name.as_deref() == Some(name.as_str()));
                if again {
                    bail!("strategies: the name {name:?} is given twice");
                }
            }
        }
        Ok(())
    }

    /// `[[models]]`: a directory each, explicit names unique. The artifacts
    /// themselves are verified when the engine starts.
    fn validate_models(&self) -> anyhow::Result<()> {
        for (i, m) in self.models.iter().enumerate() {
            if m.dir.as_os_str().is_empty() {
                bail!("models[{i}].dir must name an artifact directory");
            }
            if let Some(name) = &m.name {
                let again = self.models[..i]
                    .iter()
                    .any(|o| o.name.as_deref() == Some(name.as_str()));
                if again {
                    bail!("models: the name {name:?} is given twice");
                }
            }
        }
        Ok(())
    }
}

/// `value` must be a finite number in `(0, max]`.
fn within(key: &str, value: f64, max: f64) -> anyhow::Result<()> {
    if !(value.is_finite() && value > 0.0 && value <= max) {
        bail!("{key} must be a number above 0 and at most {max}");
    }
    Ok(())
}

/// toml's errors span several lines with a source excerpt; keep the gist.
/// Why the signal feed cannot listen on `addr`, in words: for a busy port,
/// what is likely on it and how to choose another.
pub fn listen_error(addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let port = addr.port();
    match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "the signal feed cannot listen on {addr}: port {port} is in use, most likely by \
             another `candlewick run` (`ss -ltnp 'sport = :{port}'` shows which process); \
             stop it, or pick another port with `--listen 127.0.0.1:{}` (or `[feed] listen` in \
             the config; port 0 takes any free one)",
            port.wrapping_add(1).max(1024)
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "the signal feed cannot listen on {addr}: permission denied (ports below 1024 need \
             privileges); pick another with `--listen 127.0.0.1:8765`"
        ),
        _ => anyhow::anyhow!("the signal feed cannot listen on {addr}: {e}"),
    }
}

/// A TOML or type error as `:LINE:COLUMN: message`, with the closest valid
/// key named when a key is unknown (a typo must say what was meant).
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let mut message = e.message().trim().replace('\n', " ");
    if let Some(hint) = did_you_mean(&message) {
        message.push_str(&hint);
    }
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!(":{line}:{column}: {message}")
        }
        None => format!(": {message}"),
    }
}

/// For serde's "unknown field `X`, expected one of `a`, `b`" (or "expected
/// `a` or `b`"): "; did you mean `a`?" naming the nearest valid key by edit
/// distance, when one is near enough to be a typo.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (typed, rest) = rest.split_once('`')?;
    let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (best, distance) = valid
        .iter()
        .map(|v| (*v, edit_distance(typed, v)))
        .min_by_key(|(_, d)| *d)?;
    (distance <= typed.len().max(best.len()) / 2).then(|| format!("; did you mean `{best}`?"))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.source.symbol.as_ref().unwrap().as_str(), "EURUSD");
        assert!(matches!(c.source.data, Some(DataRef::Bundled(_))));
        assert_eq!(c.feed.tokens, [DEMO_TOKEN]);
        assert_eq!(c.feed.listen.to_string(), "127.0.0.1:8765");
        assert!(!c.strategies.is_empty());
    }

    #[test]
    fn the_binance_config_is_valid() {
        let text = include_str!("../config/binance.toml");
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.source.kind, SourceKind::Binance);
    }

    #[test]
    fn a_misspelt_key_names_the_closest_valid_one_and_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let typo = EMBEDDED_DEFAULT.replace("max_batch", "max_bacth");
        std::fs::write(&path, &typo).unwrap();
        let e = format!("{:#}", Config::load(Some(&path)).unwrap_err());
        let line = typo.lines().position(|l| l.contains("max_bacth")).unwrap() + 1;
        assert!(
            e.contains(&format!("c.toml:{line}:1: unknown field `max_bacth`")),
            "{e}"
        );
        assert!(e.ends_with("did you mean `max_batch`?"), "{e}");
        assert_eq!(
            did_you_mean("unknown field `zzzzzzzz`, expected `path` or `sync`"),
            None
        );
        assert_eq!(edit_distance("synk", "sync"), 1);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values() {
        let bad_key = EMBEDDED_DEFAULT.replace("sync = false", "synk = false");
        let e = toml::from_str::<Config>(&bad_key).unwrap_err();
        assert!(e.message().contains("unknown field `synk`"), "{e}");
        let bad_interval = EMBEDDED_DEFAULT.replace("interval = \"1h\"", "interval = \"7m\"");
        assert!(toml::from_str::<Config>(&bad_interval)
            .unwrap_err()
            .message()
            .contains("unknown interval"));
    }

    #[test]
    fn reads_models_and_refuses_repeated_names_and_unknown_keys() {
        let with = |extra: &str| format!("{EMBEDDED_DEFAULT}\n{extra}");
        let text =
            with("[[models]]\ndir = \"models/artifacts/eurusd-1h-lstm\"\nname = \"prediction\"\n");
        let c: Config = toml::from_str(&text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.models[0].name.as_deref(), Some("prediction"));
        let twice =
            with("[[models]]\ndir = \"a\"\nname = \"p\"\n[[models]]\ndir = \"b\"\nname = \"p\"\n");
        let c: Config = toml::from_str(&twice).unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(e.contains("\"p\" is given twice"), "{e}");
        let typo = with("[[models]]\npath = \"a\"\n");
        let e = toml::from_str::<Config>(&typo).unwrap_err();
        assert!(e.message().contains("unknown field `path`"), "{e}");
    }

    #[test]
    fn refuses_exchange_urls_off_the_allowlist() {
        let text = include_str!("../config/binance.toml").replace(
            "wss://stream.binance.com:9443",
            "wss://stream.binance.co:9443",
        );
        let c: Config = toml::from_str(&text).unwrap();
        let e = format!("{:#}", c.validate().unwrap_err());
        assert!(
            e.contains("binance.ws_url") && e.contains("not in allowed_hosts"),
            "{e}"
        );
    }

    fn validated(text: &str) -> anyhow::Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        c.validate()?;
        Ok(c)
    }

    fn err(text: &str) -> String {
        format!("{:#}", validated(text).unwrap_err())
    }

    #[test]
    fn the_demo_token_is_refused_beyond_loopback() {
        let open = EMBEDDED_DEFAULT.replace("127.0.0.1:8765", "0.0.0.0:8765");
        let e = err(&open);
        assert!(e.contains("public demo token"), "{e}");
        let secret = open.replace(
            "tokens = [\"candlewick-local-demo\"]",
            "tokens = [\"env:CW_FEED_TOKEN\"]",
        );
        validated(&secret).unwrap();
    }

    #[test]
    fn short_tokens_are_refused_and_never_shown() {
        let short = EMBEDDED_DEFAULT.replace("candlewick-local-demo", "hunter2");
        let e = err(&short);
        assert!(e.contains("shorter than 16 bytes"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let empty = EMBEDDED_DEFAULT.replace("candlewick-local-demo", "");
        assert!(err(&empty).contains("shorter than"));
    }

    #[test]
    fn origins_must_be_origins() {
        let with = |o: &str| {
            EMBEDDED_DEFAULT.replace(
                "send_timeout_s = 30.0",
                &format!("send_timeout_s = 30.0\nallowed_origins = [{o:?}]"),
            )
        };
        let c = validated(&with("https://dash.example.com")).unwrap();
        let server = c.feed.server_config().unwrap();
        assert_eq!(server.allowed_origins, ["https://dash.example.com"]);
        for bad in [
            "*",
            "https://*.example.com",
            "dash.example.com",
            "https://x/y",
        ] {
            assert!(err(&with(bad)).contains("allowed_origins"), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations_have_upper_bounds() {
        let cases = [
            (
                "send_timeout_s = 30.0",
                "send_timeout_s = 1e300",
                "feed.send_timeout_s",
            ),
            (
                "send_timeout_s = 30.0",
                "send_timeout_s = inf",
                "send_timeout_s",
            ),
            (
                "client_queue = 4096",
                "client_queue = 1000000000",
                "feed.client_queue",
            ),
            ("max_clients = 1024", "max_clients = 0", "feed.max_clients"),
        ];
        for (from, to, key) in cases {
            let e = err(&EMBEDDED_DEFAULT.replace(from, to));
            assert!(e.contains(key), "{to}: {e}");
        }
        let engine =
            |body: &str| EMBEDDED_DEFAULT.replace("[engine]", &format!("[engine]\n{body}"));
        for (body, key) in [
            ("queue_capacity = 1000000000000", "engine.queue_capacity"),
            ("max_batch = 1000000000000", "engine.max_batch"),
            ("workers = 100000", "engine.workers"),
            ("tail_bars = 1000000000000", "engine.tail_bars"),
        ] {
            // The key is given twice: drop the file's own line.
            let key_name = body.split(' ').next().unwrap();
            let text: String = engine(body)
                .lines()
                .filter(|l| !(l.starts_with(key_name) && *l != body))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = err(&text);
            assert!(e.contains(key), "{body}: {e}");
        }
        let binance = include_str!("../config/binance.toml");
        let e = err(&binance.replace("idle_timeout_s = ", "idle_timeout_s = 1e300 #"));
        assert!(e.contains("binance.idle_timeout_s"), "{e}");
    }

    #[test]
    fn strategy_names_are_checked_and_unique() {
        let with = |extra: &str| format!("{EMBEDDED_DEFAULT}\n{extra}");
        let entry = |name: &str| format!("[[strategies]]\nwasm = \"x.wasm\"\nname = \"{name}\"\n");
        for bad in ["@tail", "@model:lstm", "Upper", ""] {
            let e = err(&with(&entry(bad)));
            assert!(e.contains("must be 1-64"), "{bad}: {e}");
        }
        let e = err(&with(&format!("{}{}", entry("twin"), entry("twin"))));
        assert!(e.contains("given twice"), "{e}");
        validated(&with(&entry("sma_cross_fast"))).unwrap();
    }

    const WEBHOOK: &str = "[notify]\n[[notify.webhooks]]\nurl = \"https://hooks.example.com/cw/T0K3N\"\nsecret_env = \"CW_HOOK_SECRET\"\n";

    #[test]
    fn notify_is_off_when_absent_and_reads_a_webhook_with_defaults() {
        assert!(Config::load(None).unwrap().notify.is_none());
        let c = validated(&format!("{EMBEDDED_DEFAULT}\n{WEBHOOK}")).unwrap();
        let n = c.notify.as_ref().unwrap();
        let w = &n.webhooks[0];
        assert_eq!(
            (w.name(), w.max_attempts, w.events.len()),
            ("hooks.example.com".to_owned(), 8, 6)
        );
        assert_eq!(
            n.outbox(Path::new("var/state")),
            Path::new("var/state/notify")
        );
        // The URL's path (a credential here) stays out of Debug.
        assert!(!format!("{c:?}").contains("T0K3N"));
    }

    #[test]
    fn notify_errors_name_the_field() {
        let with = |extra: &str| format!("{EMBEDDED_DEFAULT}\n{WEBHOOK}{extra}");
        for (extra, key) in [
            ("secret_file = \"k\"\n", "notify.webhooks[0].secret_env"),
            ("events = [\"signals\"]\n", "notify.webhooks[0].events"),
            ("actions = [\"short\"]\n", "notify.webhooks[0].actions"),
            ("min_strength = 2.0\n", "notify.webhooks[0].min_strength"),
            ("min_confidence = -1\n", "notify.webhooks[0].min_confidence"),
            ("max_attempts = 0\n", "notify.webhooks[0].max_attempts"),
            ("rate_per_min = 1e12\n", "notify.webhooks[0].rate_per_min"),
            ("timeout_s = 0\n", "notify.webhooks[0].timeout_s"),
            ("events = [\"healthy\"]\n", "notify.webhooks[0].events"),
            (
                "strategies = [\"Bad Name\"]\n",
                "notify.webhooks[0].strategies",
            ),
            (&WEBHOOK[9..], "given twice"),
        ] {
            let e = err(&with(extra));
            assert!(e.contains(key), "{extra}: {e}");
        }
        let plain = with("").replace("https://hooks", "http://hooks");
        let e = err(&plain);
        assert!(
            e.contains("notify.webhooks[0].url") && e.contains("plain http"),
            "{e}"
        );
        assert!(!e.contains("T0K3N"), "{e}");
        let creds = with("").replace("https://hooks", "https://me:pw@hooks");
        assert!(err(&creds).contains("credentials"));
        let e = toml::from_str::<Config>(&with("max_attempt = 3\n")).unwrap_err();
        assert!(
            did_you_mean(e.message()).unwrap().contains("max_attempts"),
            "{e}"
        );
    }

    #[test]
    fn chat_presets_need_no_secret_and_telegram_needs_its_chat() {
        let chat = |extra: &str| {
            format!("{EMBEDDED_DEFAULT}\n{WEBHOOK}{extra}")
                .replace("secret_env = \"CW_HOOK_SECRET\"\n", "")
        };
        let c = validated(&chat("preset = \"slack\"\n")).unwrap();
        let built = c.notify.as_ref().unwrap().build().unwrap();
        let w = &built.webhooks[0];
        assert_eq!((w.preset.name(), w.secret.is_none()), ("slack", true));
        let e = err(&chat(""));
        assert!(e.contains("notify.webhooks[0].secret_env"), "{e}");
        let e = err(&chat("preset = \"telegram\"\n"));
        assert!(
            e.contains("notify.webhooks[0].preset") && e.contains("chat_id"),
            "{e}"
        );
        validated(&chat("preset = \"telegram\"\nchat_id = \"-100123\"\n")).unwrap();
        let e = err(&chat("preset = \"teams\"\n"));
        assert!(e.contains("\"teams\" is not one of"), "{e}");
    }

    #[test]
    fn email_destinations_need_their_addresses_and_keep_the_password_out_of_sight() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("smtp.pw");
        std::fs::write(&pw, "an-smtp-password-nobody-sees\n").unwrap();
        let mail = |url: &str, email: &str| {
            format!(
                "{EMBEDDED_DEFAULT}\n[notify]\n[[notify.webhooks]]\nname = \"mail\"\nurl = \"{url}\"\n{email}"
            )
        };
        let email = format!(
            "[notify.webhooks.email]\nfrom = \"cw@example.com\"\nto = [\"desk@example.com\"]\nusername = \"cw\"\npassword_file = {:?}\n",
            pw.display().to_string()
        );
        let c = validated(&mail("smtp://smtp.example.com", &email)).unwrap();
        let built = c.notify.as_ref().unwrap().build().unwrap();
        let e = built.webhooks[0].email.as_ref().unwrap();
        assert_eq!(
            e.password.as_ref().map(|p| p.expose()),
            Some(&b"an-smtp-password-nobody-sees"[..])
        );
        assert!(!format!("{built:?}{c:?}").contains("nobody-sees"));
        let e = err(&mail("smtp://smtp.example.com", ""));
        assert!(e.contains("notify.webhooks[0].email"), "{e}");
        let e = err(&mail(
            "smtp://smtp.example.com",
            &email.replace("desk@example.com", "desk"),
        ));
        assert!(
            e.contains("notify.webhooks[0].url") && e.contains("\"desk\""),
            "{e}"
        );
        let e = err(&mail(
            "smtp://smtp.example.com",
            &email.replace("username = \"cw\"\n", ""),
        ));
        assert!(e.contains("username and password_env"), "{e}");
        let e = err(&mail("smtp://me:pw@smtp.example.com", &email));
        assert!(e.contains("credentials in the URL"), "{e}");
    }

    const CLUSTER_ENGINE: &str = include_str!("../config/cluster-engine.toml");
    const CLUSTER_INGEST: &str = include_str!("../config/cluster-ingest.toml");

    fn ingest_err(text: &str) -> String {
        let c: IngestConfig = toml::from_str(text).unwrap();
        format!("{:#}", c.validate().unwrap_err())
    }

    #[test]
    fn the_cluster_configs_are_valid() {
        let c = validated(CLUSTER_ENGINE).unwrap();
        assert_eq!(c.source.kind, SourceKind::Nats);
        let n = c.nats.as_ref().unwrap();
        assert_eq!(n.engine_streams().len(), 4, "16 partitions: every stream");
        let i: IngestConfig = toml::from_str(CLUSTER_INGEST).unwrap();
        i.validate().unwrap();
        assert_eq!(i.nats.cluster().unwrap().partition_count, 16);
    }

    #[test]
    fn lease_and_credential_keys_are_checked() {
        let lease = CLUSTER_ENGINE.replace(
            "publish_signals = true",
            "publish_signals = true\nassignment = \"lease\"",
        );
        let e = err(&lease);
        assert!(
            e.contains("nats.partitions must be left out") && e.contains("lease"),
            "{e}"
        );
        let partitions = "partitions = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]";
        assert!(CLUSTER_ENGINE.contains(partitions));
        let leased = CLUSTER_ENGINE.replace(partitions, "assignment = \"lease\"");
        assert!(validated(&leased).unwrap().nats.unwrap().leased());
        let bad_id = leased.replace(
            "assignment = \"lease\"",
            "assignment = \"lease\"\nengine_id = \"a b\"",
        );
        let e = err(&bad_id);
        assert!(e.contains("nats.engine_id"), "{e}");
        let creds = CLUSTER_INGEST.replace(
            "partition_count = 16",
            "partition_count = 16\ncredentials_file = \"no/such.creds\"",
        );
        let e = ingest_err(&creds);
        assert!(
            e.contains("credentials_file") && e.contains("no/such.creds is not a file"),
            "{e}"
        );
        let two = CLUSTER_INGEST.replace(
            "partition_count = 16",
            "partition_count = 16\ntoken = \"env:X\"\nnkey_seed = \"env:Y\"",
        );
        assert!(ingest_err(&two).contains("give one of"));
        let half = CLUSTER_INGEST.replace(
            "partition_count = 16",
            "partition_count = 16\ntls_cert_file = \"c.pem\"",
        );
        assert!(ingest_err(&half).contains("go together"));
    }

    #[test]
    fn notify_secrets_are_read_at_build_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("hook.key");
        std::fs::write(&key, "a-very-secret-signing-key\n").unwrap();
        let text = format!("{EMBEDDED_DEFAULT}\n{WEBHOOK}").replace(
            "secret_env = \"CW_HOOK_SECRET\"",
            &format!("secret_file = {:?}", key.display().to_string()),
        );
        let c = validated(&text).unwrap();
        let built = c.notify.as_ref().unwrap().build().unwrap();
        assert_eq!(
            built.webhooks[0].secret.as_ref().map(|s| s.expose()),
            Some(&b"a-very-secret-signing-key"[..])
        );
        assert!(!format!("{built:?}").contains("a-very-secret"));
        let missing = validated(&format!("{EMBEDDED_DEFAULT}\n{WEBHOOK}")).unwrap();
        let e = format!(
            "{:#}",
            missing.notify.as_ref().unwrap().build().unwrap_err()
        );
        assert!(
            e.contains("CW_HOOK_SECRET") && e.contains("notify.webhooks[0]"),
            "{e}"
        );
    }

    #[test]
    fn cluster_credentials_are_never_literal_and_roles_keep_their_keys() {
        let literal = CLUSTER_INGEST.replace(
            "# token = \"env:NATS_TOKEN\"",
            "token = \"hunter2-hunter2\"",
        );
        let e = ingest_err(&literal);
        assert!(e.contains("nats.token") && !e.contains("hunter2"), "{e}");
        let in_url = CLUSTER_INGEST.replace("nats://127.0.0.1", "nats://me:hunter2@127.0.0.1");
        let e = ingest_err(&in_url);
        assert!(e.contains("must not hold") && !e.contains("hunter2"), "{e}");
        let engine_key = CLUSTER_INGEST.replace(
            "partition_count = 16",
            "partition_count = 16\npartitions = [1]",
        );
        assert!(ingest_err(&engine_key).contains("engine role"));
        let out_of_range = CLUSTER_ENGINE.replace("partitions = [0, 1,", "partitions = [16, 1,");
        assert!(err(&out_of_range).contains("not below nats.partition_count"));
        let typo = CLUSTER_ENGINE.replace("publish_signals", "publish_signal");
        let e = toml::from_str::<Config>(&typo).unwrap_err();
        assert!(
            e.message().contains("unknown field `publish_signal`"),
            "{e}"
        );
        let e = did_you_mean(e.message().trim()).unwrap_or_default();
        assert!(e.contains("publish_signals"), "{e}");
    }
}
