//! `candlewick feed`: the cluster's feed role (issue 12).
//!
//! The WebSocket feed of `candlewick run` (same protocol, tokens, limits,
//! dashboard, `/healthz`, `/metrics`), fed by the SIGNALS stream on NATS
//! JetStream instead of an in-process pipeline: one feed for every engine
//! of the cluster, scaled apart from them. It holds no state of its own:
//! at start it replays the last `nats.feed_replay_s` of SIGNALS into its
//! hub, so that a client resuming with `since` within that window gets
//! what it missed (an older `since` is answered `resume_truncated`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use candlewick_cluster::signal_feed::{follow_signals, FeedStats};
use candlewick_cluster::streams::ensure_signals;
use candlewick_feed::{FeedState, Hub};
use candlewick_pipeline::{supervise, Backoff, Health, Metrics, TaskState};
use tokio::sync::watch;

use crate::config::FeedRoleConfig;

/// Serve the WebSocket signal feed of the whole cluster from its SIGNALS
/// stream on NATS JetStream (every engine's signals, with `publish_signals
/// = true`). Runs until SIGINT or SIGTERM.
#[derive(Debug, clap::Args)]
pub struct FeedArgs {
    /// Configuration file (TOML) with [nats] and [feed].
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Feed address (overrides feed.listen); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// Signals the hub keeps in memory for resuming clients.
const RECENT_SIGNALS: usize = 65_536;

pub fn run(args: FeedArgs) -> anyhow::Result<()> {
    let mut config = FeedRoleConfig::load(&args.config)?;
    if let Some(listen) = args.listen {
        config.feed.listen = listen;
    }
    let runtime = super::io_runtime("cw-feed")?;
    runtime.block_on(feed(config))
}

async fn feed(config: FeedRoleConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.feed.listen)
        .await
        .map_err(|e| crate::config::listen_error(config.feed.listen, e))?;
    let addr = listener.local_addr()?;
    let server_config = config.feed.server_config()?;
    let cluster = config.nats.cluster()?;
    let js = candlewick_cluster::connect(&cluster, "candlewick-feed").await?;
    // A reader takes SIGNALS as the engines made it; it creates it only
    // when it is started first.
    if js.get_stream(&cluster.signals_stream).await.is_err() {
        ensure_signals(&js, &cluster).await?;
    }
    let hub = Hub::new(config.feed.client_queue, false).keep_recent(RECENT_SIGNALS);
    let metrics = Arc::new(Metrics::detached());
    let health = Arc::new(Health::new());
    let stats = Arc::new(FeedStats::default());
    let (stop_tx, stop) = watch::channel(false);
    let rendered = stats.clone();
    let (broker, servers) = (js.clone(), cluster.servers_text());
    let state = FeedState::new(
        server_config,
        hub.clone(),
        metrics.clone(),
        health.clone(),
        stop.clone(),
    )
    .with_extra_metrics(Arc::new(move |out: &mut String| {
        rendered.render_prometheus(out)
    }))
    .with_extra_health(
        "nats",
        Arc::new(move || candlewick_cluster::metrics::connection_health(&broker, &servers)),
    );
    let feed_health = health.clone();
    let mut server = tokio::spawn(async move {
        feed_health.set("feed", TaskState::Running);
        candlewick_feed::serve(listener, state).await
    });
    let replay = Duration::from_secs_f64(config.nats.feed_replay());
    let (sink, follower_health, follower_metrics) =
        (Arc::new(hub), health.clone(), metrics.clone());
    let mut follower = tokio::spawn(async move {
        supervise(
            "signals",
            &follower_health,
            &follower_metrics,
            &Backoff::default(),
            || {
                follow_signals(
                    js.clone(),
                    cluster.clone(),
                    replay,
                    sink.clone(),
                    stats.clone(),
                    stop.clone(),
                )
            },
        )
        .await
    });
    tracing::info!("signal feed on ws://{addr}/v1/feed, from the cluster's SIGNALS (health: http://{addr}/healthz, metrics: http://{addr}/metrics)");

    let signal = crate::commands::run::shutdown_signal();
    let failed = tokio::select! {
        s = signal => {
            tracing::info!("{s}: stopping");
            None
        }
        r = &mut follower => Some(match r {
            Ok(Err(e)) => e.into(),
            Ok(Ok(())) => anyhow!("the SIGNALS follower stopped"),
            Err(e) => anyhow!("the SIGNALS follower panicked: {e}"),
        }),
        r = &mut server => Some(match r {
            Ok(Err(e)) => e.into(),
            Ok(Ok(())) => anyhow!("the feed server stopped"),
            Err(e) => anyhow!("the feed server panicked: {e}"),
        }),
    };
    let _ = stop_tx.send(true);
    let bound = Duration::from_secs(10);
    if !follower.is_finished() && tokio::time::timeout(bound, follower).await.is_err() {
        tracing::warn!("the SIGNALS follower did not stop within 10 s");
    }
    if !server.is_finished() && tokio::time::timeout(bound, server).await.is_err() {
        tracing::warn!("feed clients did not close within 10 s");
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
