//! `candlewick ingest`: the cluster's ingest role (issue 12).
//!
//! The Binance adapter, unchanged (reconnect with backoff, REST backfill
//! of every gap, validation of every kline), hands each closed kline to a
//! [`CandlePublisher`] instead of a local pipeline: it is published to
//! the CANDLES stream on NATS JetStream with `Nats-Msg-Id =
//! SYMBOL:interval:open_time` and taken once the stream acknowledged it.
//! The stream is the role's only state: at each (re)start a stream resumes
//! after the last candle CANDLES holds for it (or from
//! `binance.start_from_ms` when it holds none). Two ingest processes on
//! the same streams store each candle once (within the duplicate window).

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candlewick_cluster::publish::{last_published, CandlePublisher, PublishStats};
use candlewick_cluster::streams::ensure_candles;
use candlewick_cluster::{ClusterConfig, JetStream};
use candlewick_ingest::binance::Connection;
use candlewick_market::time::format_ms;
use candlewick_pipeline::{supervise, Backoff, Clock, Health, Metrics, StreamTable};
use tokio::sync::watch;

use crate::config::IngestConfig;

/// Publish the exchange's closed candles to the cluster's CANDLES stream
/// on NATS JetStream, for engines (`candlewick run` with source kind
/// "nats") to consume. Runs until SIGINT or SIGTERM.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Configuration file (TOML) with [binance] and [nats].
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

pub fn run(args: IngestArgs) -> anyhow::Result<()> {
    let config = IngestConfig::load(&args.config)?;
    let runtime = super::io_runtime("cw-ingest")?;
    runtime.block_on(ingest(config))
}

async fn ingest(config: IngestConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = config.nats.cluster()?;
    let js = candlewick_cluster::connect(&cluster, "candlewick-ingest").await?;
    ensure_candles(&js, &cluster).await?;
    let b = &config.binance;
    let table = Arc::new(StreamTable::new(b.streams(), 1));
    let metrics = Arc::new(Metrics::detached());
    let health = Arc::new(Health::new());
    let bc = Arc::new(b.adapter()?);
    let publisher = CandlePublisher::new(js.clone(), &cluster, table.clone(), metrics.clone());
    let stats = publisher.stats().clone();
    tracing::info!(
        streams = table.len(),
        servers = %cluster.servers_text(),
        stream = %cluster.candles_stream,
        partitions = cluster.partition_count,
        "ingest: publishing closed candles to JetStream"
    );

    let (stop_tx, stop) = watch::channel(false);
    let (done_tx, mut done) = tokio::sync::mpsc::channel::<anyhow::Error>(4);
    let chunks = bc.connections(&table);
    let mut tasks = Vec::with_capacity(chunks.len());
    for (i, streams) in chunks.into_iter().enumerate() {
        let (bc, js, cluster, health, metrics, stop, publisher, done_tx) = (
            bc.clone(),
            js.clone(),
            cluster.clone(),
            health.clone(),
            metrics.clone(),
            stop.clone(),
            publisher.clone(),
            done_tx.clone(),
        );
        let clock = Clock::new();
        tasks.push(tokio::spawn(async move {
            let name = format!("binance-{i}");
            let result = supervise(&name, &health, &metrics, &Backoff::default(), || {
                let (bc, js, cluster, stop, streams, publisher) = (
                    bc.clone(),
                    js.clone(),
                    cluster.clone(),
                    stop.clone(),
                    streams.clone(),
                    publisher.clone(),
                );
                async move {
                    let offsets = resume_points(&js, &cluster, &publisher, &streams)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    let conn = Connection::new(i, bc, streams, offsets, publisher, clock)
                        .map_err(|e| e.to_string())?;
                    conn.run(stop).await.map_err(|e| e.to_string())
                }
            })
            .await;
            // Only a task that gave up ends before the stop.
            if let Err(e) = result {
                let _ = done_tx.send(e.into()).await;
            }
        }));
    }
    drop(done_tx);

    let signal = crate::commands::run::shutdown_signal();
    tokio::pin!(signal);
    let failed = tokio::select! {
        s = &mut signal => {
            tracing::info!("{s}: stopping");
            None
        }
        Some(e) = done.recv() => Some(e),
    };
    let _ = stop_tx.send(true);
    for task in tasks {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("a connection did not stop within 10 s");
        }
    }
    summary(&stats, started);
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Per stream, the last candle CANDLES holds (the adapter backfills after
/// it).
async fn resume_points(
    js: &JetStream,
    cluster: &ClusterConfig,
    publisher: &CandlePublisher,
    streams: &[candlewick_pipeline::StreamId],
) -> anyhow::Result<Vec<Option<i64>>> {
    use candlewick_ingest::Destination;
    let table = publisher.table();
    let mut offsets = vec![None; table.len()];
    for &id in streams {
        let key = table.key(id);
        let last = last_published(js, cluster, key).await?;
        if let Some(t) = last {
            tracing::info!(stream = %key, "resuming after the candle of {}", format_ms(t));
        }
        offsets[id.0 as usize] = last;
    }
    Ok(offsets)
}

fn summary(stats: &PublishStats, started: Instant) {
    tracing::info!(
        stored = stats.stored.load(Relaxed),
        duplicates = stats.duplicates.load(Relaxed),
        publish_failures = stats.failures.load(Relaxed),
        seconds = started.elapsed().as_secs_f64(),
        "ingest stopped"
    );
}
