//! `candlewick run` with `source.kind = "nats"`: the engine role of the
//! cluster (issue 12). Its partitions' candles come from CANDLES, one
//! supervised consumer per partition, acked after their checkpoint; the
//! pipeline and the feed are the single process's; signals also go to
//! SIGNALS when `nats.publish_signals` is set.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use candlewick_cluster::consume::{ConsumeStats, PartitionSource};
use candlewick_cluster::publish::{publish_signals, republish_outbox, PublishStats};
use candlewick_cluster::streams::{ensure_candles, ensure_signals};
use candlewick_cluster::tee::SignalTee;
use candlewick_cluster::{ClusterConfig, ClusterError, JetStream};
use candlewick_ingest::replay::ReplayReport;
use candlewick_pipeline::{supervise, Backoff, Clock, Health, Router, Sink, Strategy, StreamTable};
use candlewick_state::{StateStore, StreamKey};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::NatsConfig;

/// The task publishing the tee's signals to SIGNALS.
pub(super) type Publisher = JoinHandle<Result<(), ClusterError>>;

/// The engine's link to the cluster.
pub(super) struct Cluster {
    js: JetStream,
    cfg: ClusterConfig,
    partitions: Vec<u32>,
    publish_signals: bool,
    signal_queue: usize,
    consumed: Arc<ConsumeStats>,
    published: Arc<PublishStats>,
}

impl Cluster {
    /// Connects and verifies (or creates) the streams it reads and writes.
    pub(super) async fn start(n: &NatsConfig) -> anyhow::Result<Cluster> {
        let cfg = n.cluster()?;
        let js = candlewick_cluster::connect(&cfg, "candlewick-engine").await?;
        ensure_candles(&js, &cfg).await?;
        if n.publish_signals {
            ensure_signals(&js, &cfg).await?;
        }
        tracing::info!(
            servers = %cfg.servers_text(),
            partitions = ?n.partitions,
            of = cfg.partition_count,
            publish_signals = n.publish_signals,
            "consuming the cluster's candles from JetStream"
        );
        Ok(Cluster {
            js,
            cfg,
            partitions: n.partitions.clone(),
            publish_signals: n.publish_signals,
            signal_queue: n.signal_queue,
            consumed: Arc::default(),
            published: Arc::default(),
        })
    }

    /// The pipeline's sink: the hub, teed to SIGNALS when asked, with the
    /// publisher task that drains the tee.
    pub(super) fn sink(&self, hub: Arc<dyn Sink>) -> (Arc<dyn Sink>, Option<Publisher>) {
        if !self.publish_signals {
            return (hub, None);
        }
        let (tee, rx) = SignalTee::new(hub, self.signal_queue);
        let task = tokio::spawn(publish_signals(self.js.clone(), rx, self.published.clone()));
        (Arc::new(tee), Some(task))
    }

    /// Publishes again what the outbox holds and SIGNALS may lack (see
    /// [`republish_outbox`]), before any new signal.
    pub(super) async fn republish(
        &self,
        store: &dyn StateStore,
        strategies: &[Strategy],
        table: &StreamTable,
    ) -> anyhow::Result<()> {
        if !self.publish_signals {
            return Ok(());
        }
        let streams: Vec<(String, StreamKey)> = strategies
            .iter()
            .flat_map(|s| {
                table
                    .ids()
                    .map(|id| (s.name.to_string(), table.key(id).clone()))
            })
            .collect();
        let r = republish_outbox(&self.js, &self.cfg, store, &streams).await?;
        if r.sent > r.duplicates {
            tracing::info!(
                published = r.sent - r.duplicates,
                "signals of the outbox that SIGNALS lacked published (the last run stopped before publishing them)"
            );
        }
        Ok(())
    }

    /// One supervised consumer per partition; returns how many.
    pub(super) fn start_sources(
        &self,
        router: Router,
        clock: Clock,
        health: &Arc<Health>,
        stop: watch::Receiver<bool>,
        done: mpsc::Sender<anyhow::Result<Option<ReplayReport>>>,
    ) -> usize {
        for &partition in &self.partitions {
            let (js, cfg, router, health, stop, done, stats) = (
                self.js.clone(),
                self.cfg.clone(),
                router.clone(),
                health.clone(),
                stop.clone(),
                done.clone(),
                self.consumed.clone(),
            );
            tokio::spawn(async move {
                let name = format!("nats-p{partition}");
                let metrics = router.metrics().clone();
                let result = supervise(&name, &health, &metrics, &Backoff::default(), || {
                    let source = PartitionSource {
                        js: js.clone(),
                        cfg: cfg.clone(),
                        partition,
                        router: router.clone(),
                        clock,
                        stats: stats.clone(),
                    };
                    source.run(stop.clone())
                })
                .await;
                let _ = done.send(result.map(|()| None).map_err(Into::into)).await;
            });
        }
        self.partitions.len()
    }

    pub(super) fn summary(&self) {
        let (c, p) = (&self.consumed, &self.published);
        tracing::info!(
            routed = c.routed.load(Relaxed),
            acked = c.acked.load(Relaxed),
            malformed = c.malformed.load(Relaxed),
            not_served = c.unknown.load(Relaxed),
            signals_published = p.stored.load(Relaxed),
            signals_already_in_stream = p.duplicates.load(Relaxed),
            "cluster: candles consumed and signals published"
        );
    }
}

/// Waits for the signal publisher to drain (the tee is gone with the
/// workers), up to a bound: a bus that is down at a stop must not hold
/// the engine forever. What it could not publish is still in the outbox.
pub(super) async fn finish_publisher(task: Publisher) {
    match tokio::time::timeout(Duration::from_secs(30), task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::error!(cause = %e, "signal publisher failed"),
        Ok(Err(e)) => tracing::error!(cause = %e, "signal publisher panicked"),
        Err(_) => {
            tracing::warn!("signals still queued for SIGNALS after 30 s; stopping without them")
        }
    }
}
