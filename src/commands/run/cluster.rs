//! `candlewick run` with `source.kind = "nats"`: the engine role of the
//! cluster (issue 12). Its partitions' candles come from CANDLES, one
//! supervised consumer per partition, acked after their checkpoint; the
//! pipeline and the feed are the single process's; signals also go to
//! SIGNALS when `nats.publish_signals` is set.
//!
//! With `nats.assignment = "lease"` the partitions are this engine's
//! share, held by leases ([`LeaseLink`]); each checkpoint is also shared
//! with the cluster, so that whoever takes a partition over continues it
//! exactly (ARCHITECTURE.md §7).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candlewick_cluster::consume::{ConsumeStats, PartitionSource};
use candlewick_cluster::lease::Leases;
use candlewick_cluster::publish::{publish_signals, republish_outbox, PublishStats, SignalFence};
use candlewick_cluster::shared::{state_bucket, SharedStats, SharedStore};
use candlewick_cluster::streams::{ensure_candles, ensure_signals};
use candlewick_cluster::tee::{PublishTap, SignalProgress};
use candlewick_cluster::{ClusterConfig, ClusterError, JetStream};
use candlewick_ingest::replay::ReplayReport;
use candlewick_pipeline::{supervise, Backoff, Clock, Health, Router, Sink, Strategy, StreamTable};
use candlewick_state::{StateStore, Store, StreamKey};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, NatsConfig};

/// An engine's partition leases, held across the runs of its pipeline:
/// renewed by a task of their own from the first run to the stop.
pub(super) struct LeaseLink {
    js: JetStream,
    leases: Arc<Leases>,
    stop: watch::Sender<bool>,
    renewing: JoinHandle<Result<(), ClusterError>>,
}

/// How long the engine rides out JetStream failures in a row (a server
/// restarting, a stream or bucket electing its leader) before it stops
/// with the last one: as long as a shared-state write waits (30 s). A
/// count of tries would depend on the backoff and the machine's speed; a
/// restarted node of a loaded 3-node cluster took longer than five.
const TRANSIENT_PATIENCE: Duration = Duration::from_secs(30);

/// The longest wait between two tries.
const TRANSIENT_WAIT_MAX: Duration = Duration::from_secs(5);

/// A streak of failed JetStream requests.
#[derive(Debug, Default)]
pub(super) struct Transient {
    failures: u32,
    since: Option<Instant>,
}

impl Transient {
    /// A request went through: the next failure starts a new streak.
    pub(super) fn reset(&mut self) {
        *self = Transient::default();
    }

    /// When `e` is a JetStream request that failed within
    /// [`TRANSIENT_PATIENCE`] of the streak's first: says so, waits
    /// (backoff) and returns true (try again).
    pub(super) async fn retry(&mut self, e: &anyhow::Error) -> bool {
        let transient = matches!(
            e.downcast_ref::<ClusterError>(),
            Some(ClusterError::JetStream { .. })
        );
        if !transient {
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= TRANSIENT_PATIENCE {
            return false;
        }
        self.failures += 1;
        let wait = Backoff::default()
            .wait(self.failures)
            .min(TRANSIENT_WAIT_MAX);
        tracing::warn!(cause = %format!("{e:#}"), attempt = self.failures, retry_in_ms = wait.as_millis() as u64, "the cluster failed a request; trying again");
        tokio::time::sleep(wait).await;
        true
    }
}

impl LeaseLink {
    /// Connects, opens the lease bucket, joins the cluster and starts
    /// renewing.
    pub(super) async fn start(n: &NatsConfig) -> anyhow::Result<LeaseLink> {
        let cfg = n.cluster()?;
        let js = candlewick_cluster::connect(&cfg, "candlewick-engine").await?;
        let id = n.engine_name();
        let mut transient = Transient::default();
        let leases = loop {
            let joined = async {
                let leases = Leases::open(&js, &cfg, &id).await?;
                leases.join().await?;
                Ok::<_, ClusterError>(leases)
            };
            match joined.await {
                Ok(leases) => break leases,
                Err(e) => {
                    let e = e.into();
                    if !transient.retry(&e).await {
                        return Err(e);
                    }
                }
            }
        };
        tracing::info!(engine = %id, partitions = cfg.partition_count, lease_ttl_s = cfg.lease_ttl.as_secs_f64(), "sharing the partitions by leases");
        let (stop, stopped) = watch::channel(false);
        let renewing = tokio::spawn(leases.clone().run(stopped));
        Ok(LeaseLink {
            js,
            leases,
            stop,
            renewing,
        })
    }

    /// Takes this engine's share (see [`Leases::rebalance`]).
    pub(super) async fn rebalance(&self) -> Result<Vec<u32>, ClusterError> {
        self.leases.rebalance().await
    }

    /// Changes when the partition set should be rebuilt.
    pub(super) fn changes(&self) -> watch::Receiver<u64> {
        self.leases.changes()
    }

    /// Resolves at the next change.
    pub(super) async fn changed(&self) {
        let _ = self.changes().changed().await;
    }

    /// The streams of the partitions held now.
    pub(super) fn streams(&self, config: &Config) -> anyhow::Result<Vec<StreamKey>> {
        let n = config
            .nats
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("source: nats needs a [nats] section"))?;
        Ok(n.engine_streams_of(&self.leases.held()))
    }

    /// Stops renewing and releases every lease, so that the other engines
    /// take the partitions over at once.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.renewing.await;
        self.leases.release_all().await;
    }
}

/// The task publishing the tee's signals to SIGNALS.
pub(super) type Publisher = JoinHandle<Result<(), ClusterError>>;

/// The engine's link to the cluster.
pub(super) struct Cluster {
    js: JetStream,
    cfg: ClusterConfig,
    partitions: Vec<u32>,
    leases: Option<Arc<Leases>>,
    publish_signals: bool,
    signal_queue: usize,
    consumed: Arc<ConsumeStats>,
    published: Arc<PublishStats>,
    progress: Arc<SignalProgress>,
    shared: Option<Arc<SharedStats>>,
}

impl Cluster {
    /// Connects (or, with leases, uses the leases' connection) and
    /// verifies (or creates) the streams it reads and writes.
    pub(super) async fn start(
        n: &NatsConfig,
        lease: Option<&LeaseLink>,
    ) -> anyhow::Result<Cluster> {
        let cfg = n.cluster()?;
        let js = match lease {
            Some(l) => l.js.clone(),
            None => candlewick_cluster::connect(&cfg, "candlewick-engine").await?,
        };
        let partitions = match lease {
            Some(l) => l.leases.held(),
            None => n.partitions.clone(),
        };
        ensure_candles(&js, &cfg).await?;
        if n.publish_signals {
            ensure_signals(&js, &cfg).await?;
        }
        tracing::info!(
            servers = %cfg.servers_text(),
            partitions = ?partitions,
            of = cfg.partition_count,
            publish_signals = n.publish_signals,
            "consuming the cluster's candles from JetStream"
        );
        Ok(Cluster {
            js,
            cfg,
            partitions,
            leases: lease.map(|l| l.leases.clone()),
            publish_signals: n.publish_signals,
            signal_queue: n.signal_queue,
            consumed: Arc::default(),
            published: Arc::default(),
            progress: Arc::default(),
            shared: None,
        })
    }

    /// The pipeline's store with leases: the partitions' shared state
    /// taken over into `local`, and each checkpoint shared from now on.
    pub(super) async fn take_over(
        &mut self,
        lease: &LeaseLink,
        local: Arc<Store>,
        streams: &[StreamKey],
    ) -> anyhow::Result<Arc<dyn StateStore>> {
        let kv = state_bucket(&self.js, &self.cfg).await?;
        let (store, stats) = SharedStore::take_over(
            kv,
            local,
            lease.leases.clone(),
            self.cfg.partition_count,
            streams,
            self.publish_signals.then(|| self.progress.clone()),
        )
        .await?;
        self.shared = Some(stats);
        Ok(Arc::new(store))
    }

    /// The pipeline's sink: the hub, teed to SIGNALS when asked, with the
    /// publisher task that drains the tee.
    pub(super) fn sink(&self, hub: Arc<dyn Sink>) -> (Arc<dyn Sink>, Option<Publisher>) {
        if !self.publish_signals {
            return (hub, None);
        }
        let (tee, rx) = PublishTap::wrap(hub, self.signal_queue, self.progress.clone());
        let fence = self.leases.as_ref().map(|leases| SignalFence {
            leases: leases.clone(),
            partition_count: self.cfg.partition_count,
        });
        let task = tokio::spawn(publish_signals(
            self.js.clone(),
            rx,
            self.published.clone(),
            fence,
            self.progress.clone(),
        ));
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
            let (js, cfg, router, health, stop, done, stats, leases) = (
                self.js.clone(),
                self.cfg.clone(),
                router.clone(),
                health.clone(),
                stop.clone(),
                done.clone(),
                self.consumed.clone(),
                self.leases.clone(),
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
                        leases: leases.clone(),
                    };
                    source.run(stop.clone())
                })
                .await;
                let _ = done.send(result.map(|()| None).map_err(Into::into)).await;
            });
        }
        self.partitions.len()
    }

    /// The cluster's counters for `/metrics`.
    pub(super) fn render_metrics(&self) -> candlewick_feed::ExtraMetrics {
        let (consumed, published) = (self.consumed.clone(), self.published.clone());
        let (leases, shared) = (self.leases.clone(), self.shared.clone());
        Arc::new(move |out: &mut String| {
            consumed.render_prometheus(out);
            published.render_prometheus("signals", out);
            if let Some(l) = &leases {
                l.stats().render_prometheus(out);
            }
            if let Some(s) = &shared {
                s.render_prometheus(out);
            }
        })
    }

    /// The broker connection for `/healthz`.
    pub(super) fn health(&self) -> candlewick_feed::ExtraHealth {
        let (js, servers) = (self.js.clone(), self.cfg.servers_text());
        Arc::new(move || candlewick_cluster::metrics::connection_health(&js, &servers))
    }

    pub(super) fn summary(&self) {
        let (c, p) = (&self.consumed, &self.published);
        tracing::info!(
            routed = c.routed.load(Relaxed),
            acked = c.acked.load(Relaxed),
            malformed = c.malformed.load(Relaxed),
            not_served = c.unknown.load(Relaxed),
            delivery_gaps = c.delivery_gaps.load(Relaxed),
            signals_published = p.stored.load(Relaxed),
            signals_already_in_stream = p.duplicates.load(Relaxed),
            signals_fenced = p.fenced.load(Relaxed),
            shared_state_writes = self.shared.as_ref().map_or(0, |s| s.writes.load(Relaxed)),
            shared_state_fenced = self.shared.as_ref().map_or(0, |s| s.fenced.load(Relaxed)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jetstream() -> anyhow::Error {
        ClusterError::JetStream {
            what: "lease heartbeat".into(),
            message: "no stream found for given subject".into(),
        }
        .into()
    }

    #[tokio::test]
    async fn jetstream_failures_are_ridden_out_for_the_patience_then_not() {
        let mut streak = Transient::default();
        assert!(streak.retry(&jetstream()).await, "within the patience");
        assert!(!streak.retry(&anyhow::anyhow!("not a bus error")).await);
        // A streak older than the patience ends, however few its tries.
        streak.since = Instant::now().checked_sub(TRANSIENT_PATIENCE);
        assert!(!streak.retry(&jetstream()).await);
        streak.reset();
        assert!(streak.retry(&jetstream()).await, "a new streak");
    }
}
