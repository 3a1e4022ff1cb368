//! [`SharedStore`]: the engine's RocksDB store, with each checkpoint also
//! written, per partition, to the cluster's state bucket, so that the
//! engine that takes a partition over continues its indicators exactly.
//!
//! # What a checkpoint means in a cluster
//!
//! A commit returns (and so the pipeline reports its candles durable, and
//! the partition sources acknowledge them) only once, in this order:
//! 1. the local store committed it;
//! 2. every signal emitted before it was settled on SIGNALS (stored, or
//!    dropped because its partition was lost: see below);
//! 3. for each partition it touched, the records of all the partition's
//!    streams ([`StreamRecord`]: indicators, offset, plugin snapshots)
//!    were written to key `p<P>` of `nats.state_bucket`, naming the
//!    revision this engine last wrote.
//!
//! A candle acknowledged is therefore in the shared state and its signals
//! are on SIGNALS: whoever takes the partition over restores that state
//! and is delivered the candles after it, so nothing is lost and nothing
//! applied twice.
//!
//! # Fencing
//!
//! Taking a partition over ([`SharedStore::take_over`]) rewrites its key
//! naming the revision read. From then on a write of the previous owner
//! names a stale revision and is refused: the previous owner learns it
//! lost the partition ([`Leases::lose`]) and acknowledges nothing more.
//! A partition whose lease is no longer valid here is not written at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use async_nats::jetstream::Context;
use candlewick_pipeline::Backoff;
use candlewick_state::{
    decode_records, encode_records, Checkpoint, OutboxRecord, StateError, StateStore, Store,
    StreamKey, StreamRecord, StreamState,
};
use tokio::runtime::Handle;

use crate::lease::Leases;
use crate::subjects::partition_of;
use crate::tee::SignalProgress;
use crate::{ClusterConfig, ClusterError};

/// What the shared state did, for `/metrics`.
#[derive(Debug, Default)]
pub struct SharedStats {
    /// Partition records written.
    pub writes: AtomicU64,
    /// Bytes of those records.
    pub bytes: AtomicU64,
    /// Writes skipped or refused because the partition was lost.
    pub fenced: AtomicU64,
    /// Writes that failed and were retried.
    pub retries: AtomicU64,
    /// Streams whose state was taken over from the bucket.
    pub imported: AtomicU64,
}

/// A partition's records and the revision this engine last wrote.
struct Part {
    revision: u64,
    streams: BTreeMap<StreamKey, StreamRecord>,
}

/// The engine's store in a cluster with leases (see the module docs).
pub struct SharedStore {
    local: Arc<Store>,
    kv: kv::Store,
    runtime: Handle,
    leases: Arc<Leases>,
    partition_count: u32,
    parts: Mutex<HashMap<u32, Part>>,
    signals: Option<Arc<SignalProgress>>,
    /// How long a failing write is retried before the commit fails
    /// (the larger of three lease TTLs and 30 s).
    patience: Duration,
    stats: Arc<SharedStats>,
}

fn state_key(p: u32) -> String {
    format!("p{p}")
}

fn shared_error(p: u32, e: impl std::fmt::Display) -> StateError {
    StateError::Shared {
        what: format!("partition {p}"),
        detail: e.to_string(),
    }
}

/// Opens (or creates) the state bucket.
///
/// # Errors
/// [`ClusterError::JetStream`] when it cannot be had.
pub async fn state_bucket(js: &Context, cfg: &ClusterConfig) -> Result<kv::Store, ClusterError> {
    if let Ok(kv) = js.get_key_value(&cfg.state_bucket).await {
        return Ok(kv);
    }
    js.create_key_value(kv::Config {
        bucket: cfg.state_bucket.clone(),
        description: "candlewick partition state (checkpoints shared for failover)".to_owned(),
        history: 1,
        num_replicas: cfg.replicas,
        ..kv::Config::default()
    })
    .await
    .map_err(|e| ClusterError::js(format!("state bucket {}", cfg.state_bucket), e))
}

impl SharedStore {
    /// Takes over the partitions `leases` holds: for each, reads its
    /// shared records, fences the previous owner (see the module docs)
    /// and replaces this engine's local copy of the partition's `streams`
    /// with them. A partition with no shared record yet keeps its local
    /// state, which becomes the shared one.
    ///
    /// # Errors
    /// [`ClusterError::JetStream`] when the bucket cannot be read or
    /// written; [`ClusterError::State`] for records that do not decode
    /// or cannot be imported.
    pub async fn take_over(
        kv: kv::Store,
        local: Arc<Store>,
        leases: Arc<Leases>,
        partition_count: u32,
        streams: &[StreamKey],
        signals: Option<Arc<SignalProgress>>,
    ) -> Result<(SharedStore, Arc<SharedStats>), ClusterError> {
        let stats = Arc::new(SharedStats::default());
        let mut parts = HashMap::new();
        for p in leases.held() {
            let mine: Vec<&StreamKey> = streams
                .iter()
                .filter(|k| partition_of(k.symbol.as_str(), partition_count) == p)
                .collect();
            let part = take_partition(&kv, &local, p, &mine, &stats).await?;
            parts.insert(p, part);
        }
        // Long enough to ride out a server restart and a stream's leader
        // election (seconds); a partition lost meanwhile ends the wait.
        let patience = (leases.renew_every() * 9).max(Duration::from_secs(30));
        let store = SharedStore {
            local,
            kv,
            runtime: Handle::current(),
            leases,
            partition_count,
            parts: Mutex::new(parts),
            signals,
            patience,
            stats: stats.clone(),
        };
        Ok((store, stats))
    }

    /// Writes partition `p`'s records naming the last revision, retrying
    /// transient failures while the lease stays valid.
    fn write(&self, p: u32, part: &mut Part) -> Result<(), StateError> {
        let records: Vec<StreamRecord> = part.streams.values().cloned().collect();
        let bytes = encode_records(records)?;
        let len = bytes.len() as u64;
        let deadline = Instant::now() + self.patience;
        let backoff = Backoff::default();
        let mut failures = 0u32;
        loop {
            if !self.leases.valid(p) {
                self.stats.fenced.fetch_add(1, Relaxed);
                return Ok(());
            }
            let attempt = self.runtime.block_on(self.kv.update(
                state_key(p),
                bytes.clone().into(),
                part.revision,
            ));
            match attempt {
                Ok(revision) => {
                    part.revision = revision;
                    self.stats.writes.fetch_add(1, Relaxed);
                    self.stats.bytes.fetch_add(len, Relaxed);
                    return Ok(());
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    self.stats.fenced.fetch_add(1, Relaxed);
                    self.leases
                        .lose(p, "its shared state was written by another engine");
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(shared_error(
                        p,
                        format!("writing {len} bytes to the state bucket: {e}"),
                    ))
                }
                Err(e) => {
                    failures += 1;
                    self.stats.retries.fetch_add(1, Relaxed);
                    if failures == 1 {
                        tracing::warn!(partition = p, cause = %e, "writing the shared state failed; retrying");
                    }
                    std::thread::sleep(backoff.wait(failures));
                }
            }
        }
    }

    /// Waits until every signal handed to the SIGNALS publisher so far is
    /// settled (see the module docs), within the store's patience.
    fn signals_settled(&self) -> Result<(), StateError> {
        let Some(progress) = &self.signals else {
            return Ok(());
        };
        let target = progress.handed();
        let mut settled = progress.watch_settled();
        let wait = async move {
            tokio::time::timeout(self.patience, settled.wait_for(|n| *n >= target))
                .await
                .map(|r| r.map(drop))
        };
        match self.runtime.block_on(wait) {
            Ok(Ok(_)) => Ok(()),
            // The publisher is gone: the engine is stopping after a
            // failure; nothing more is made durable for the cluster.
            Ok(Err(_)) | Err(_) => Err(StateError::Shared {
                what: "signals".to_owned(),
                detail: format!(
                    "signals emitted before this checkpoint were not on SIGNALS after {:?}",
                    self.patience
                ),
            }),
        }
    }
}

/// Reads, fences and imports partition `p` (see [`SharedStore::take_over`]).
async fn take_partition(
    kv: &kv::Store,
    local: &Store,
    p: u32,
    streams: &[&StreamKey],
    stats: &SharedStats,
) -> Result<Part, ClusterError> {
    let what = || format!("state of partition {p}");
    let state_error = |e: StateError| ClusterError::State {
        partition: p,
        source: e,
    };
    let export = || -> Result<Vec<StreamRecord>, ClusterError> {
        let mut records = Vec::new();
        for key in streams {
            records.extend(local.export_stream(key).map_err(state_error)?);
        }
        Ok(records)
    };
    // A write of the previous owner between the read and the fence makes
    // the fence fail: read again.
    for _ in 0..5 {
        let entry = kv
            .entry(state_key(p))
            .await
            .map_err(|e| ClusterError::js(what(), e))?;
        let (records, shared, fence) = match entry {
            Some(e) if e.operation == Operation::Put => {
                let records = decode_records(&e.value).map_err(state_error)?;
                let fence = kv.update(state_key(p), e.value.clone(), e.revision).await;
                let fence = match fence {
                    Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                    other => other.map_err(|e| ClusterError::js(what(), e))?,
                };
                (records, true, fence)
            }
            // Never shared (or deleted by an operator): this engine's
            // local state becomes the shared one.
            _ => {
                let records = export()?;
                let bytes = encode_records(records.clone()).map_err(state_error)?;
                match kv.create(state_key(p), bytes.into()).await {
                    Ok(revision) => (records, false, revision),
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(ClusterError::js(what(), e)),
                }
            }
        };
        if shared {
            let absent: Vec<StreamKey> = streams
                .iter()
                .filter(|k| !records.iter().any(|r| r.key() == **k))
                .map(|k| (*k).clone())
                .collect();
            local
                .import_streams(&records, &absent)
                .map_err(state_error)?;
            stats.imported.fetch_add(records.len() as u64, Relaxed);
            tracing::info!(
                partition = p,
                streams = records.len(),
                "partition state taken over from the cluster"
            );
        }
        return Ok(Part {
            revision: fence,
            streams: records.into_iter().map(|r| (r.key().clone(), r)).collect(),
        });
    }
    Err(ClusterError::js(
        what(),
        "another engine keeps writing it (is a second engine holding this partition's lease?)",
    ))
}

impl StateStore for SharedStore {
    fn load(&self, stream: &StreamKey, spec: &str) -> Result<StreamState, StateError> {
        self.local.load(stream, spec)
    }

    fn offset(&self, stream: &StreamKey) -> Result<Option<i64>, StateError> {
        self.local.offset(stream)
    }

    fn plugin_snapshot(
        &self,
        plugin: &str,
        stream: &StreamKey,
    ) -> Result<Option<Vec<u8>>, StateError> {
        self.local.plugin_snapshot(plugin, stream)
    }

    fn outbox_since(&self, time: i64, limit: usize) -> Result<Vec<OutboxRecord>, StateError> {
        self.local.outbox_since(time, limit)
    }

    fn commit(&self, checkpoint: &Checkpoint<'_>) -> Result<(), StateError> {
        self.local.commit(checkpoint)?;
        let mut touched: Vec<u32> = checkpoint
            .streams()
            .map(|s| partition_of(s.key().symbol.as_str(), self.partition_count))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        if touched.is_empty() {
            return Ok(());
        }
        self.signals_settled()?;
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        for p in touched {
            let Some(part) = parts.get_mut(&p) else {
                continue;
            };
            for state in checkpoint.streams() {
                if partition_of(state.key().symbol.as_str(), self.partition_count) != p {
                    continue;
                }
                match part.streams.get_mut(state.key()) {
                    Some(record) => record.update(checkpoint)?,
                    None => {
                        let mut record = StreamRecord::of(state)?;
                        record.update(checkpoint)?;
                        part.streams.insert(state.key().clone(), record);
                    }
                }
            }
            self.write(p, part)?;
        }
        Ok(())
    }
}
