//! [`Leases`]: which engine owns which partition, by leases in a JetStream
//! key-value bucket, with failover and fencing.
//!
//! # The bucket
//!
//! `nats.lease_bucket` holds two kinds of keys, all under the bucket's
//! `max_age` = `nats.lease_ttl_s`, so a key its writer stops renewing
//! disappears by itself:
//! - `e.<engine id>`: an engine is alive (its heartbeat);
//! - `p<P>`: partition P is owned by the engine named in the value.
//!
//! # Acquiring, renewing, losing
//!
//! An engine's fair share is ⌈partitions / live engines⌉. It takes a free
//! partition with a create (which fails when the key exists: two engines
//! can never both take one), renews each of its leases every third of the
//! TTL with an update that names the revision it last wrote (which fails
//! once the key expired or was taken), and releases what is over its share
//! when another engine joins.
//!
//! A lease is *valid* only until its last renewal's send time plus the TTL
//! less a margin ([`Leases::valid`], on the monotonic clock): the server
//! expires the key no earlier than that, so while a lease is valid here no
//! other engine can hold it. Validity never comes back: a renewal that
//! returns after the lease lapsed here does not revive it (what was
//! skipped meanwhile, such as a shared state write, stays skipped). A
//! lease that stops being valid (the process was paused, the network cut)
//! or whose renewal is refused is lost for good: this engine stops
//! routing, acknowledging, writing state and publishing signals for the
//! partition at once (fencing), and rebuilds its partition set
//! ([`Leases::changes`]).
//!
//! The epoch of a lease (the revision that created it) names the
//! partition's consumer, so an engine that comes back after its partition
//! moved pulls from a consumer that no longer exists.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, UpdateErrorKind};
use async_nats::jetstream::Context;
use futures_util::TryStreamExt;
use tokio::sync::watch;

use crate::{ClusterConfig, ClusterError};

/// One lease this engine holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The revision that created it: constant while it is held.
    epoch: u64,
    /// The revision of its last renewal (what the next one must name).
    revision: u64,
    /// When it stops being valid here (see the module docs).
    valid_until: Instant,
}

/// What the leases did, for `/metrics`.
#[derive(Debug, Default)]
pub struct LeaseStats {
    pub acquired: AtomicU64,
    pub released: AtomicU64,
    /// Leases lost: expired here, or taken (renewal refused).
    pub lost: AtomicU64,
    pub renewals: AtomicU64,
    /// Renewals that failed for a reason other than loss (retried).
    pub renew_failures: AtomicU64,
    /// Leases held now.
    pub held: AtomicU64,
}

/// Who is alive and who holds what, as the lease bucket says.
#[derive(Debug, Default)]
struct Census {
    members: Vec<String>,
    owners: BTreeMap<u32, String>,
}

impl Census {
    /// How many of `partitions` engine `me` should hold: at most
    /// ⌈partitions / engines⌉; but only ⌊partitions / engines⌋ while
    /// another engine holds fewer than that, so that an engine that joins
    /// a cluster whose partitions are all taken gets its share.
    fn share(&self, me: &str, partitions: usize) -> usize {
        let engines = self.members.len().max(1);
        let (floor, ceil) = (partitions / engines, partitions.div_ceil(engines));
        let held = |id: &str| self.owners.values().filter(|o| *o == id).count();
        let starved = self.members.iter().any(|id| id != me && held(id) < floor);
        if starved && held(me) >= floor {
            floor
        } else {
            ceil
        }
    }
}

/// This engine's partition leases.
pub struct Leases {
    kv: kv::Store,
    id: String,
    ttl: Duration,
    partitions: u32,
    held: Mutex<BTreeMap<u32, Held>>,
    /// Bumped whenever the engine should rebuild its partition set.
    changes: watch::Sender<u64>,
    stats: LeaseStats,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("id", &self.id)
            .field("held", &self.held())
            .finish_non_exhaustive()
    }
}

/// [`Leases::extend`] at time `now`.
fn extend(
    held: &mut BTreeMap<u32, Held>,
    p: u32,
    revision: u64,
    valid_until: Instant,
    now: Instant,
) -> bool {
    match held.get_mut(&p) {
        Some(h) if now < h.valid_until => {
            h.revision = revision;
            h.valid_until = valid_until;
            true
        }
        _ => false,
    }
}

/// The partition's key in the bucket.
fn partition_key(p: u32) -> String {
    format!("p{p}")
}

fn member_key(id: &str) -> String {
    format!("e.{id}")
}

impl Leases {
    /// Opens (or creates) the lease bucket for engine `id`.
    ///
    /// # Errors
    /// [`ClusterError::JetStream`] when the bucket cannot be had.
    pub async fn open(
        js: &Context,
        cfg: &ClusterConfig,
        id: &str,
    ) -> Result<Arc<Leases>, ClusterError> {
        let what = || format!("lease bucket {}", cfg.lease_bucket);
        let kv = match js.get_key_value(&cfg.lease_bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: cfg.lease_bucket.clone(),
                    description: "candlewick partition leases".to_owned(),
                    history: 1,
                    max_age: cfg.lease_ttl,
                    num_replicas: cfg.replicas,
                    ..kv::Config::default()
                })
                .await
                .map_err(|e| ClusterError::js(what(), e))?,
        };
        let status = kv.status().await.map_err(|e| ClusterError::js(what(), e))?;
        if status.max_age() != cfg.lease_ttl {
            return Err(ClusterError::StreamMismatch {
                stream: format!("KV_{}", cfg.lease_bucket),
                field: "max_age (nats.lease_ttl_s)",
                have: format!("{:?}", status.max_age()),
                want: format!("{:?}", cfg.lease_ttl),
            });
        }
        Ok(Arc::new(Leases {
            kv,
            id: id.to_owned(),
            ttl: cfg.lease_ttl,
            partitions: cfg.partition_count,
            held: Mutex::new(BTreeMap::new()),
            changes: watch::channel(0).0,
            stats: LeaseStats::default(),
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn stats(&self) -> &LeaseStats {
        &self.stats
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Held>> {
        // A panic while holding it left only plain numbers behind.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True while this engine may act for partition `p`: route, ack,
    /// write its state, publish its signals.
    pub fn valid(&self, p: u32) -> bool {
        self.lock()
            .get(&p)
            .is_some_and(|h| Instant::now() < h.valid_until)
    }

    /// Records a renewal of `p` that the bucket accepted, unless the lease
    /// lapsed here while the renewal was on the way: a lapse is final, so
    /// that what was skipped while `p` was not [`Leases::valid`] (its
    /// shared state write, above all) never looks done to a later check.
    /// False when it lapsed (or was lost meanwhile).
    fn extend(&self, p: u32, revision: u64, valid_until: Instant) -> bool {
        extend(&mut self.lock(), p, revision, valid_until, Instant::now())
    }

    /// The epoch of the lease on `p`, if held.
    pub fn epoch(&self, p: u32) -> Option<u64> {
        self.lock().get(&p).map(|h| h.epoch)
    }

    /// The partitions held now, in order.
    pub fn held(&self) -> Vec<u32> {
        self.lock().keys().copied().collect()
    }

    /// Changes when the partition set should be rebuilt.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Gives up `p` here at once (its state write was refused: another
    /// engine holds it). The renewal loop will not renew it.
    pub fn lose(&self, p: u32, why: &str) {
        if self.lock().remove(&p).is_some() {
            self.stats.lost.fetch_add(1, Relaxed);
            self.stats.held.fetch_sub(1, Relaxed);
            tracing::warn!(partition = p, engine = %self.id, why, "partition lease lost: fenced (nothing more is routed, acknowledged, written or published for it here)");
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// How long a renewal keeps a lease valid here: the TTL less a fifth,
    /// for the server's expiry timer and clock-rate differences.
    fn validity(&self) -> Duration {
        self.ttl - self.ttl / 5
    }

    /// The interval between renewals.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// Announces this engine (its heartbeat key).
    async fn heartbeat(&self) -> Result<(), ClusterError> {
        self.kv
            .put(member_key(&self.id), self.id.clone().into_bytes().into())
            .await
            .map(drop)
            .map_err(|e| ClusterError::js("lease heartbeat", e))
    }

    /// Live engines and each taken partition's owner, from the bucket.
    async fn census(&self) -> Result<Census, ClusterError> {
        let what = |e: &dyn std::fmt::Display| ClusterError::js("lease keys", e);
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(|e| what(&e))?
            .try_collect()
            .await
            .map_err(|e| what(&e))?;
        let mut census = Census::default();
        for key in keys {
            if let Some(id) = key.strip_prefix("e.") {
                census.members.push(id.to_owned());
            } else if let Some(p) = key.strip_prefix('p').and_then(|p| p.parse().ok()) {
                // Gone between the listing and the read: free.
                if let Some(owner) = self.kv.get(&key).await.map_err(|e| what(&e))? {
                    census
                        .owners
                        .insert(p, String::from_utf8_lossy(&owner).into_owned());
                }
            }
        }
        Ok(census)
    }

    /// How many partitions this engine should hold (see [`Census::share`]).
    fn share(&self, census: &Census) -> usize {
        census.share(&self.id, self.partitions as usize)
    }

    /// Joins the cluster: announces this engine and waits one renewal
    /// interval, so that engines started together see each other before
    /// they take partitions (and so spread them).
    ///
    /// # Errors
    /// As [`Leases::rebalance`].
    pub async fn join(&self) -> Result<(), ClusterError> {
        self.heartbeat().await?;
        tokio::time::sleep(self.renew_every()).await;
        Ok(())
    }

    /// Releases what is over this engine's share and takes free
    /// partitions up to it; returns the partitions held. Call it only
    /// while nothing runs for the partitions (between two runs of the
    /// pipeline): a released partition is another engine's at once.
    ///
    /// # Errors
    /// [`ClusterError::JetStream`] when the bucket cannot be read.
    pub async fn rebalance(&self) -> Result<Vec<u32>, ClusterError> {
        self.heartbeat().await?;
        let census = self.census().await?;
        let share = self.share(&census);
        let mine = self.held();
        for &p in mine.iter().skip(share).rev() {
            self.release(p).await;
        }
        let mut have = self.lock().len();
        // Start the search at a place of this engine's own, so engines
        // starting together try different partitions first.
        let start = crate::subjects::fnv1a_64(self.id.as_bytes()) % u64::from(self.partitions);
        for i in 0..self.partitions {
            if have >= share {
                break;
            }
            let p = ((start + u64::from(i)) % u64::from(self.partitions)) as u32;
            if census.owners.contains_key(&p) || self.lock().contains_key(&p) {
                continue;
            }
            let sent = Instant::now();
            match self
                .kv
                .create(partition_key(p), self.id.clone().into_bytes().into())
                .await
            {
                Ok(revision) => {
                    self.lock().insert(
                        p,
                        Held {
                            epoch: revision,
                            revision,
                            valid_until: sent + self.validity(),
                        },
                    );
                    have += 1;
                    self.stats.acquired.fetch_add(1, Relaxed);
                    self.stats.held.fetch_add(1, Relaxed);
                    tracing::info!(partition = p, epoch = revision, engine = %self.id, "partition lease acquired");
                }
                // Taken by another engine meanwhile, or a transient error:
                // the next round sees it.
                Err(e) => {
                    tracing::debug!(partition = p, cause = %e, "partition lease not acquired")
                }
            }
        }
        Ok(self.held())
    }

    /// Deletes the lease on `p` (if still this engine's), so another
    /// engine can take it without waiting for the TTL.
    async fn release(&self, p: u32) {
        let Some(h) = self.lock().remove(&p) else {
            return;
        };
        self.stats.held.fetch_sub(1, Relaxed);
        self.stats.released.fetch_add(1, Relaxed);
        if let Err(e) = self
            .kv
            .delete_expect_revision(partition_key(p), Some(h.revision))
            .await
        {
            tracing::debug!(partition = p, cause = %e, "lease release not written; it expires by itself");
        }
        tracing::info!(partition = p, engine = %self.id, "partition lease released");
    }

    /// Releases every lease (an orderly stop), so the others take over at
    /// once.
    pub async fn release_all(&self) {
        for p in self.held() {
            self.release(p).await;
        }
        let _ = self.kv.delete(member_key(&self.id)).await;
    }

    /// Loses `p` (see [`Leases::lose`]) and deletes its key if it is still
    /// at `revision`, so another engine can take it without waiting for
    /// the TTL.
    async fn lapse(&self, p: u32, revision: u64, why: &str) {
        self.lose(p, why);
        let _ = self
            .kv
            .delete_expect_revision(partition_key(p), Some(revision))
            .await;
    }

    /// One renewal round: the heartbeat, each lease renewed (or lost), and
    /// a change announced when the partition set should be rebuilt: a
    /// lease lost, free partitions while under the share, or over it.
    ///
    /// # Errors
    /// [`ClusterError::JetStream`] when the bucket cannot be read.
    pub async fn renew(&self) -> Result<(), ClusterError> {
        let held: Vec<(u32, Held)> = self.lock().iter().map(|(p, h)| (*p, *h)).collect();
        for (p, h) in held {
            if Instant::now() >= h.valid_until {
                self.lapse(
                    p,
                    h.revision,
                    "not renewed in time (the process was paused or the bus unreachable)",
                )
                .await;
                continue;
            }
            let sent = Instant::now();
            match self
                .kv
                .update(
                    partition_key(p),
                    self.id.clone().into_bytes().into(),
                    h.revision,
                )
                .await
            {
                Ok(revision) => {
                    self.stats.renewals.fetch_add(1, Relaxed);
                    if !self.extend(p, revision, sent + self.validity()) {
                        self.lapse(p, revision, "it lapsed while its renewal was on the way")
                            .await;
                    }
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    self.lose(p, "the lease expired or was taken by another engine");
                }
                Err(e) => {
                    self.stats.renew_failures.fetch_add(1, Relaxed);
                    tracing::warn!(partition = p, cause = %e, "lease renewal failed; retrying");
                }
            }
        }
        self.heartbeat().await?;
        let census = self.census().await?;
        let share = self.share(&census);
        let have = self.lock().len();
        let free = (0..self.partitions).any(|p| !census.owners.contains_key(&p));
        if have > share || (have < share && free) {
            self.changes.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    /// Renews until `stop` turns true, then releases every lease.
    ///
    /// # Errors
    /// None: a failed round is logged and retried (the leases lapse by
    /// themselves if the bus stays away).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) -> Result<(), ClusterError> {
        let mut tick = tokio::time::interval(self.renew_every());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = async { let _ = stop.wait_for(|s| *s).await; } => break,
                _ = tick.tick() => {
                    if let Err(e) = self.renew().await {
                        tracing::warn!(cause = %e, "lease round failed; retrying");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Census;

    fn census(members: &[&str], owners: &[(u32, &str)]) -> Census {
        Census {
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            owners: owners.iter().map(|(p, o)| (*p, (*o).to_owned())).collect(),
        }
    }

    #[test]
    fn shares_spread_the_partitions_and_make_room_for_a_newcomer() {
        // Alone: everything.
        assert_eq!(census(&["a"], &[]).share("a", 4), 4);
        // Two, one holding all: a keeps 2, b takes 2.
        let c = census(&["a", "b"], &[(0, "a"), (1, "a"), (2, "a"), (3, "a")]);
        assert_eq!((c.share("a", 4), c.share("b", 4)), (2, 2));
        // A third joins two that hold 2 each: they give up one each.
        let c = census(&["a", "b", "c"], &[(0, "a"), (1, "a"), (2, "b"), (3, "b")]);
        assert_eq!(
            (c.share("a", 4), c.share("b", 4), c.share("c", 4)),
            (1, 1, 2)
        );
        // Balanced 2-1-1: stable (nobody starved, nobody over ⌈4/3⌉).
        let c = census(&["a", "b", "c"], &[(0, "a"), (1, "a"), (2, "b"), (3, "c")]);
        assert_eq!(
            (c.share("a", 4), c.share("b", 4), c.share("c", 4)),
            (2, 2, 2)
        );
        // More engines than partitions: one each at most.
        let c = census(&["a", "b", "c"], &[(0, "a"), (1, "b")]);
        assert_eq!(c.share("c", 2), 1);
    }

    #[test]
    fn a_renewal_that_returns_after_the_lapse_does_not_revive_the_lease() {
        use super::{extend, Held};
        use std::collections::BTreeMap;
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut held = BTreeMap::from([(
            3,
            Held {
                epoch: 7,
                revision: 7,
                valid_until: t0 + 4 * s,
            },
        )]);
        // Returned before the lapse: valid until its send time + validity.
        assert!(extend(&mut held, 3, 9, t0 + 6 * s, t0 + 2 * s));
        assert_eq!((held[&3].revision, held[&3].valid_until), (9, t0 + 6 * s));
        // Returned after the lapse (at t0 + 6 s): refused, nothing changed.
        assert!(!extend(&mut held, 3, 11, t0 + 10 * s, t0 + 6 * s));
        assert_eq!((held[&3].revision, held[&3].valid_until), (9, t0 + 6 * s));
        // A partition no longer held is not extended either.
        assert!(!extend(&mut held, 4, 12, t0 + 10 * s, t0));
        assert_eq!(held.len(), 1);
    }

    #[test]
    fn keys_are_valid_kv_keys() {
        assert_eq!(super::partition_key(12), "p12");
        assert_eq!(super::member_key("engine-a"), "e.engine-a");
    }
}
