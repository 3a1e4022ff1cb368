//! [`PartitionSource`]: one partition's candles from CANDLES into the
//! engine's [`Router`], acknowledged only once durable.
//!
//! # Ack after checkpoint
//!
//! A durable pull consumer per partition (`<prefix>-p<P>`, filter
//! `candles.<P>.>`, explicit acks) delivers the partition's candles in
//! stream order. Each is routed to its shard worker like a Binance
//! candle, and held unacknowledged until the pipeline reports a durable
//! checkpoint covering it ([`candlewick_pipeline::Durability::offset`]:
//! the stream's offset in the last committed checkpoint is at or after
//! the candle). Only then is it acked. So a crash loses no candle: what
//! was not durable was not acked, and the server delivers it again.
//!
//! # Restart
//!
//! Unacknowledged messages of a dead consumer are redelivered only after
//! `ack_wait`, and new ones would be delivered first, which would open a
//! gap in a stream. So at start, when the consumer has messages pending
//! acknowledgement, it is recreated to start at its ack floor + 1: every
//! message after the last contiguous ack comes again, in order. Candles at
//! or before a stream's stored offset are refused by
//! `StreamState::apply` (counted as duplicates) and acked, so
//! redelivery is safe.
//!
//! # Lost deliveries
//!
//! The same holds while running: a server that goes down with a pull in
//! flight loses deliveries the consumer counts as made, and the server
//! sends newer candles first. The source sees the jump in the consumer's
//! delivery sequence ([`DeliveryOrder`]), routes nothing more from that
//! consumer, and subscribes again: the consumer, which now has that
//! candle pending, is recreated from its ack floor.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::message::Acker;
use async_nats::jetstream::{AckKind, Context};
use candlewick_pipeline::{Backoff, CandleEvent, Clock, Router, StreamId};
use candlewick_state::StreamKey;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::lease::Leases;
use crate::payload::decode_candle;
use crate::subjects::{partition_filter, partition_of};
use crate::{ClusterConfig, ClusterError};

/// How often held candles are checked against the durable offsets.
const ACK_TICK: Duration = Duration::from_millis(50);

/// How often each partition's consumer lag is sampled.
const LAG_SAMPLE: Duration = Duration::from_secs(1);

/// Errors in a row from the message stream before the source gives up
/// (its supervisor restarts it).
const MAX_STREAM_ERRORS: u32 = 20;

/// What the partition sources did.
#[derive(Debug, Default)]
pub struct ConsumeStats {
    /// Candles routed to the workers.
    pub routed: AtomicU64,
    /// Messages acknowledged (after their checkpoint).
    pub acked: AtomicU64,
    /// Messages that were not a candle (terminated, never redelivered).
    pub malformed: AtomicU64,
    /// Candles of streams this engine does not serve (acked at once).
    pub unknown: AtomicU64,
    /// Times deliveries were lost on the way and the partition was
    /// consumed again from its ack floor (see [`DeliveryOrder`]).
    pub delivery_gaps: AtomicU64,
    /// Microseconds from routing to acknowledgement, summed over `acked`
    /// (the ack latency: mostly the wait for the checkpoint).
    pub ack_latency_us: AtomicU64,
    /// Per partition, messages on the stream its consumer has not yet
    /// delivered (the consumer's lag), sampled every second.
    pub lag: std::sync::Mutex<std::collections::BTreeMap<u32, u64>>,
}

/// One partition's consumer feeding the engine.
pub struct PartitionSource {
    pub js: Context,
    pub cfg: ClusterConfig,
    pub partition: u32,
    pub router: Router,
    pub clock: Clock,
    pub stats: Arc<ConsumeStats>,
    /// With leases: the partition is consumed only while its lease is
    /// valid here, through a consumer named for the lease's epoch.
    pub leases: Option<Arc<Leases>>,
}

/// A routed candle waiting for its checkpoint.
struct Held {
    stream: StreamId,
    open_time: i64,
    acker: Acker,
    routed: std::time::Instant,
}

impl PartitionSource {
    /// The durable consumer's name: `<prefix>-p<P>`, and with leases
    /// `<prefix>-p<P>-e<epoch>` (see [`crate::lease`]).
    pub fn consumer_name(&self) -> String {
        let base = format!("{}-p{}", self.cfg.consumer_prefix, self.partition);
        match self.leases.as_ref().and_then(|l| l.epoch(self.partition)) {
            Some(epoch) => format!("{base}-e{epoch}"),
            None => base,
        }
    }

    /// False once this engine lost the partition's lease: nothing more is
    /// routed or acknowledged for it.
    fn owned(&self) -> bool {
        self.leases.as_ref().is_none_or(|l| l.valid(self.partition))
    }

    /// Consumes until `stop` turns true, acking what became durable.
    ///
    /// # Errors
    /// [`ClusterError::Route`] when the pipeline stopped;
    /// [`ClusterError::JetStream`] when the consumer cannot be set up or
    /// its message stream keeps failing (the supervisor restarts it).
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), ClusterError> {
        let (mut consumer, mut messages) = self.subscribe().await?;
        let ids = self.stream_ids();
        let mut held: Vec<Held> = Vec::new();
        let mut tick = tokio::time::interval(ACK_TICK);
        let mut sample = tokio::time::interval(LAG_SAMPLE);
        let mut errors = 0u32;
        let mut logged = (false, false);
        let mut order = DeliveryOrder::default();
        let mut resubscribe = false;
        // Gaps that keep coming (another puller on this engine's consumer,
        // say) resubscribe ever more slowly: after the first, each within
        // `reset_after` of the last one waits as a supervisor's restart.
        let backoff = Backoff::default();
        let (mut gaps_in_a_row, mut last_gap) = (0u32, None::<std::time::Instant>);
        tracing::info!(partition = self.partition, consumer = %self.consumer_name(), "consuming candles");
        loop {
            if std::mem::take(&mut resubscribe) {
                // What is durable is acked; the rest the new consumer
                // delivers again (refused as applied, acked when durable).
                self.ack_durable(&mut held).await;
                held.clear();
                drop(messages);
                if gaps_in_a_row > 1 {
                    tokio::select! {
                        () = stopped(&mut stop) => return Ok(()),
                        () = tokio::time::sleep(backoff.wait(gaps_in_a_row - 1)) => {}
                    }
                }
                (consumer, messages) = self.subscribe().await?;
                order = DeliveryOrder::default();
            }
            tokio::select! {
                () = stopped(&mut stop) => break,
                _ = tick.tick() => {
                    if !self.owned() {
                        return Ok(());
                    }
                    self.ack_durable(&mut held).await;
                }
                _ = sample.tick() => {
                    if let Ok(info) = consumer.info().await {
                        let lag = info.num_pending;
                        self.stats.lag.lock().unwrap_or_else(|p| p.into_inner()).insert(self.partition, lag);
                    }
                }
                next = messages.next() => {
                    if !self.owned() {
                        // Fenced: the next owner is delivered it again.
                        return Ok(());
                    }
                    let Some(next) = next else {
                        return Err(ClusterError::js(format!("consumer {}", self.consumer_name()), "message stream ended"));
                    };
                    let message = match next {
                        Ok(m) => { errors = 0; m }
                        Err(e) => {
                            errors += 1;
                            tracing::warn!(partition = self.partition, cause = %e, "consumer message stream error");
                            if errors >= MAX_STREAM_ERRORS {
                                return Err(ClusterError::js(format!("consumer {}", self.consumer_name()), e));
                            }
                            continue;
                        }
                    };
                    let seq = message.info().map(|i| i.consumer_sequence).ok();
                    if let Some(expected) = seq.and_then(|s| order.gap(s)) {
                        // This candle is not routed: it comes again, in order.
                        let recent = last_gap.is_some_and(|t| t.elapsed() < backoff.reset_after);
                        gaps_in_a_row = if recent { gaps_in_a_row + 1 } else { 1 };
                        last_gap = Some(std::time::Instant::now());
                        self.stats.delivery_gaps.fetch_add(1, Relaxed);
                        tracing::warn!(partition = self.partition, expected, got = seq, "deliveries lost on the way (a server went down?): consuming the partition again from its last acknowledged candle, in order");
                        resubscribe = true;
                        continue;
                    }
                    let (message, acker) = message.split();
                    match decode_candle(&message.payload) {
                        Err(e) => {
                            self.stats.malformed.fetch_add(1, Relaxed);
                            if !std::mem::replace(&mut logged.0, true) {
                                tracing::warn!(partition = self.partition, subject = %message.subject, cause = %e, "message that is not a candle terminated (counted; logged once)");
                            }
                            let _ = acker.ack_with(AckKind::Term).await;
                        }
                        Ok((key, candle)) => match ids.get(&key) {
                            Some(&stream) if partition_of(key.symbol.as_str(), self.cfg.partition_count) == self.partition => {
                                self.router.route_async(CandleEvent { stream, candle, ingest_ns: self.clock.now_ns() })?;
                                self.stats.routed.fetch_add(1, Relaxed);
                                held.push(Held { stream, open_time: candle.open_time, acker, routed: std::time::Instant::now() });
                            }
                            _ => {
                                self.stats.unknown.fetch_add(1, Relaxed);
                                if !std::mem::replace(&mut logged.1, true) {
                                    tracing::warn!(partition = self.partition, stream = %key, "candle of a stream this engine does not serve acked and skipped (counted; logged once)");
                                }
                                let _ = acker.ack().await;
                            }
                        },
                    }
                }
            }
        }
        // What is durable now is acked; the rest comes again after a
        // restart (the final checkpoint is written after the sources stop).
        if self.owned() {
            self.ack_durable(&mut held).await;
        }
        Ok(())
    }

    /// The partition's consumer (see [`PartitionSource::consumer`]) and
    /// its message stream.
    async fn subscribe(&self) -> Result<(PullConsumer, pull::Stream), ClusterError> {
        let consumer = self.consumer().await?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| ClusterError::js(format!("consumer {}", self.consumer_name()), e))?;
        Ok((consumer, messages))
    }

    /// The engine's streams by key.
    fn stream_ids(&self) -> HashMap<StreamKey, StreamId> {
        let table = self.router.table();
        table.ids().map(|id| (table.key(id).clone(), id)).collect()
    }

    /// Acks every held candle whose stream's durable offset reached it.
    async fn ack_durable(&self, held: &mut Vec<Held>) {
        if held.is_empty() {
            return;
        }
        let durability = &self.router.metrics().durability;
        let table = self.router.table();
        let mut offsets: HashMap<StreamId, Option<i64>> = HashMap::new();
        for h in held.iter() {
            offsets
                .entry(h.stream)
                .or_insert_with(|| durability.offset(table.key(h.stream)));
        }
        // Asked after the offsets were read: a checkpoint that skipped the
        // shared state because the lease had lapsed is then never acked
        // (a lapse is final: see `crate::lease`).
        if !self.owned() {
            return;
        }
        let mut keep = Vec::with_capacity(held.len());
        for h in held.drain(..) {
            let durable = offsets[&h.stream];
            if durable.is_some_and(|d| d >= h.open_time) {
                match h.acker.ack().await {
                    Ok(()) => {
                        self.stats.acked.fetch_add(1, Relaxed);
                        let us = h.routed.elapsed().as_micros() as u64;
                        self.stats.ack_latency_us.fetch_add(us, Relaxed);
                    }
                    // Not acked: the server delivers it again, and it is
                    // refused as already applied, then acked.
                    Err(e) => tracing::debug!(cause = %e, "ack failed"),
                }
            } else {
                keep.push(h);
            }
        }
        *held = keep;
    }

    /// The partition's durable consumer, recreated from its ack floor when
    /// it has deliveries pending (see the module docs).
    async fn consumer(&self) -> Result<PullConsumer, ClusterError> {
        let name = self.consumer_name();
        let stream = self
            .js
            .get_stream(&self.cfg.candles_stream)
            .await
            .map_err(|e| ClusterError::js(format!("stream {}", self.cfg.candles_stream), e))?;
        let what = || format!("consumer {name}");
        let taken_from = self.retire_previous_owners(&stream, &name).await?;
        let deliver = match stream.consumer_info(&name).await {
            Ok(info) if info.num_ack_pending == 0 => {
                return stream
                    .get_consumer(&name)
                    .await
                    .map_err(|e| ClusterError::js(what(), e));
            }
            Ok(info) => {
                let from = info.ack_floor.stream_sequence + 1;
                tracing::info!(consumer = %name, pending = info.num_ack_pending, from_sequence = from, "redelivering what the last run did not acknowledge, in order");
                stream
                    .delete_consumer(&name)
                    .await
                    .map_err(|e| ClusterError::js(what(), e))?;
                DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                }
            }
            Err(_) => match taken_from {
                Some(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
                None => DeliverPolicy::All,
            },
        };
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                filter_subject: partition_filter(self.partition),
                deliver_policy: deliver,
                ack_policy: AckPolicy::Explicit,
                ack_wait: self.cfg.ack_wait,
                max_ack_pending: self.cfg.max_ack_pending,
                max_deliver: -1,
                ..pull::Config::default()
            })
            .await
            .map_err(|e| ClusterError::js(what(), e))
    }
}

impl PartitionSource {
    /// With leases: deletes the consumers of earlier epochs of this
    /// partition (so an engine that lost it pulls from nothing) and
    /// returns where the new one starts: after the highest ack floor
    /// among them (everything acknowledged is in the shared state this
    /// engine restored), or `None` when there were none.
    async fn retire_previous_owners(
        &self,
        stream: &async_nats::jetstream::stream::Stream,
        mine: &str,
    ) -> Result<Option<u64>, ClusterError> {
        if self.leases.is_none() {
            return Ok(None);
        }
        let base = format!("{}-p{}", self.cfg.consumer_prefix, self.partition);
        let epoch_prefix = format!("{base}-e");
        let names: Vec<String> = stream.consumer_names().try_collect().await.map_err(|e| {
            ClusterError::js(format!("consumers of {}", self.cfg.candles_stream), e)
        })?;
        let mut floor: Option<u64> = None;
        for name in names {
            if name == mine || !(name == base || name.starts_with(&epoch_prefix)) {
                continue;
            }
            let what = || format!("consumer {name}");
            let info = stream
                .consumer_info(&name)
                .await
                .map_err(|e| ClusterError::js(what(), e))?;
            floor = Some(floor.unwrap_or(0).max(info.ack_floor.stream_sequence));
            stream
                .delete_consumer(&name)
                .await
                .map_err(|e| ClusterError::js(what(), e))?;
            tracing::info!(partition = self.partition, retired = %name, ack_floor = info.ack_floor.stream_sequence, "consumer of the partition's previous owner deleted");
        }
        Ok(floor.map(|f| f + 1))
    }
}

/// The consumer's delivery sequence as this source sees it.
///
/// JetStream numbers every delivery of a consumer, redeliveries included,
/// and only this engine pulls from the partition's consumer; so a jump
/// means deliveries were lost on the way (a server went down with a pull
/// in flight). The server sends those again only after `ack_wait`, and
/// newer candles first: routed in that order, the older ones would be
/// refused as already applied, and lost to the indicators.
#[derive(Debug, Default)]
struct DeliveryOrder {
    last: Option<u64>,
}

impl DeliveryOrder {
    /// Notes delivery `seq`; returns the sequence expected instead when
    /// deliveries between the last one and `seq` never arrived.
    fn gap(&mut self, seq: u64) -> Option<u64> {
        let expected = self.last.map(|l| l + 1);
        self.last = Some(seq);
        expected.filter(|&e| e != seq)
    }
}

/// Resolves when the watched flag turns true (or its sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::DeliveryOrder;

    #[test]
    fn a_jump_in_the_delivery_sequence_is_a_gap() {
        let mut order = DeliveryOrder::default();
        // The first delivery of a subscription may be any number.
        assert_eq!(order.gap(41), None);
        assert_eq!(order.gap(42), None);
        // 43 and 44 never arrived.
        assert_eq!(order.gap(45), Some(43));
        assert_eq!(order.gap(46), None);
        // A number again (a consumer's new leader resending): a gap too,
        // since what it stands for is not known here.
        assert_eq!(order.gap(46), Some(47));
        // A new subscription starts afresh.
        let mut order = DeliveryOrder::default();
        assert_eq!(order.gap(1), None);
    }
}
