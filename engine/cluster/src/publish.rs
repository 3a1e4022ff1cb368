//! Publishers: closed candles to CANDLES (the ingest role), signals to
//! SIGNALS (an engine, when asked to). Each message carries a
//! `Nats-Msg-Id`, so the stream stores a re-sent one once (within the
//! duplicate window), and each publish waits for the stream's ack.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::Context;
use candlewick_ingest::{Destination, IngestError};
use candlewick_pipeline::{Backoff, CandleEvent, Metrics, Signal, StreamTable};
use candlewick_state::StreamKey;
use tokio::sync::mpsc;

use crate::lease::Leases;
use crate::payload::{decode_candle, encode_candle};
use crate::subjects::{candle_msg_id, candle_subject, partition_of, signal_subject};
use crate::tee::SignalProgress;
use crate::{ClusterConfig, ClusterError};

/// What a publisher did.
#[derive(Debug, Default)]
pub struct PublishStats {
    /// Messages the stream stored.
    pub stored: AtomicU64,
    /// Messages the stream recognised as already stored (same
    /// `Nats-Msg-Id` within its duplicate window) and did not store again.
    pub duplicates: AtomicU64,
    /// Publishes that failed (retried).
    pub failures: AtomicU64,
    /// Signals not published because their partition was lost (fencing).
    pub fenced: AtomicU64,
}

/// The ingest role's [`Destination`]: each closed candle the Binance
/// adapter hands over is published to `candles.<partition>.<SYMBOL>.<interval>`
/// with `Nats-Msg-Id = SYMBOL:interval:open_time`, and taken only once the
/// stream acknowledged it. A failed publish ends the adapter's session;
/// it reconnects and backfills from the last candle acknowledged. Cheap to
/// clone: one per connection, sharing the client and the counters.
#[derive(Clone)]
pub struct CandlePublisher {
    js: Context,
    table: Arc<StreamTable>,
    metrics: Arc<Metrics>,
    /// Per stream id, its subject.
    subjects: Arc<[String]>,
    stats: Arc<PublishStats>,
}

impl CandlePublisher {
    pub fn new(
        js: Context,
        cfg: &ClusterConfig,
        table: Arc<StreamTable>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let subjects: Arc<[String]> = table
            .ids()
            .map(|id| {
                let key = table.key(id);
                candle_subject(partition_of(key.symbol.as_str(), cfg.partition_count), key)
            })
            .collect();
        CandlePublisher {
            js,
            table,
            metrics,
            subjects,
            stats: Arc::new(PublishStats::default()),
        }
    }

    pub fn stats(&self) -> &Arc<PublishStats> {
        &self.stats
    }

    async fn publish(&self, event: CandleEvent) -> Result<(), IngestError> {
        let key = self.table.key(event.stream);
        let subject = &self.subjects[event.stream.0 as usize];
        let failed = |e: &dyn std::fmt::Display| {
            self.stats.failures.fetch_add(1, Relaxed);
            IngestError::Publish {
                message: format!("{subject}: {e}"),
            }
        };
        let mut in_process = 0u32;
        let ack = loop {
            let message = Publish::build()
                .payload(encode_candle(key, &event.candle).into())
                .message_id(candle_msg_id(key, event.candle.open_time));
            let ack = self
                .js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| failed(&e))?
                .await;
            match ack {
                Ok(ack) => break ack,
                // The other ingest process's copy of this candle is being
                // stored right now: ask again in a moment, when the answer
                // is "stored" or "duplicate" (taking the candle on the
                // other's word could lose it, were its publish to fail).
                Err(e) if is_in_process(&e) && in_process < IN_PROCESS_RETRIES => {
                    in_process += 1;
                    tokio::time::sleep(IN_PROCESS_WAIT).await;
                }
                Err(e) => return Err(failed(&e)),
            }
        };
        if ack.duplicate {
            self.stats.duplicates.fetch_add(1, Relaxed);
        } else {
            self.stats.stored.fetch_add(1, Relaxed);
        }
        self.metrics.add(&self.metrics.counters.events_ingested, 1);
        Ok(())
    }
}

/// How often, and how long apart, a publish answered "duplicate message id
/// is in process" is asked again before it counts as failed.
const IN_PROCESS_RETRIES: u32 = 40;
const IN_PROCESS_WAIT: std::time::Duration = std::time::Duration::from_millis(25);

/// JetStream's answer (409, error code 10158) when a message with the same
/// `Nats-Msg-Id` is being stored by another publisher at this moment.
fn is_in_process(e: &impl std::fmt::Display) -> bool {
    e.to_string().contains("10158")
}

impl Destination for CandlePublisher {
    fn table(&self) -> &Arc<StreamTable> {
        &self.table
    }

    fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn deliver(&self, event: CandleEvent) -> impl Future<Output = Result<(), IngestError>> + Send {
        self.publish(event)
    }
}

/// The open time of the last candle of `stream` in CANDLES, `None` when
/// it has none: where the ingest role resumes (backfilling after it), so
/// that the stream itself is the ingest role's only state.
///
/// # Errors
/// [`ClusterError::JetStream`] when the stream cannot be read, or its last
/// message is not a candle of `stream`.
pub async fn last_published(
    js: &Context,
    cfg: &ClusterConfig,
    stream: &StreamKey,
) -> Result<Option<i64>, ClusterError> {
    let subject = candle_subject(
        partition_of(stream.symbol.as_str(), cfg.partition_count),
        stream,
    );
    let candles = js
        .get_stream_no_info(&cfg.candles_stream)
        .await
        .map_err(|e| ClusterError::js(format!("stream {}", cfg.candles_stream), e))?;
    match candles.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => match decode_candle(&m.payload) {
            Ok((key, candle)) if &key == stream => Ok(Some(candle.open_time)),
            Ok((key, _)) => Err(ClusterError::js(
                format!("last message on {subject}"),
                format!("holds a candle of {key}"),
            )),
            Err(e) => Err(ClusterError::js(format!("last message on {subject}"), e)),
        },
        Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(ClusterError::js(format!("last message on {subject}"), e)),
    }
}

/// The body of a SIGNALS message: the feed's signal frame without `seq`
/// (`{"type":"signal","id":...}`).
pub fn signal_body(signal: &Signal) -> String {
    format!("{{\"type\":\"signal\",{}", signal.feed_body())
}

/// Which signals this engine may publish: with leases, only those of
/// partitions whose lease is valid here (fencing).
#[derive(Clone)]
pub struct SignalFence {
    pub leases: Arc<Leases>,
    pub partition_count: u32,
}

impl SignalFence {
    fn allows(&self, s: &Signal) -> bool {
        self.leases
            .valid(partition_of(s.symbol.as_str(), self.partition_count))
    }
}

/// Publishes the engine's signals to SIGNALS, in the order emitted, each
/// with `Nats-Msg-Id` = its deterministic id, until every sender is gone
/// and the queue is drained. A failed publish is retried with backoff,
/// never dropped (a repeat is stored once within the duplicate window).
/// Behind a `fence`, the signals of a partition this engine lost are
/// dropped instead: its new owner emits them again, with the same ids.
/// Each signal stored or dropped is settled on `progress`.
///
/// # Errors
/// None today: it retries until the queue closes.
pub async fn publish_signals(
    js: Context,
    mut rx: mpsc::Receiver<Signal>,
    stats: Arc<PublishStats>,
    fence: Option<SignalFence>,
    progress: Arc<SignalProgress>,
) -> Result<(), ClusterError> {
    let backoff = Backoff::default();
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut failures = 0u32;
        while !batch.is_empty() {
            if let Some(fence) = &fence {
                let before = batch.len();
                batch.retain(|s| fence.allows(s));
                let dropped = (before - batch.len()) as u64;
                stats.fenced.fetch_add(dropped, Relaxed);
                progress.settle(dropped);
            }
            match publish_batch(&js, &batch, &stats).await {
                Ok(()) => {
                    progress.settle(batch.len() as u64);
                    batch.clear();
                }
                Err((done, e)) => {
                    batch.drain(..done);
                    progress.settle(done as u64);
                    failures = failures.saturating_add(1);
                    stats.failures.fetch_add(1, Relaxed);
                    let wait = backoff.wait(failures);
                    if failures == 1 {
                        tracing::warn!(cause = %e, retry_in_ms = wait.as_millis() as u64, "publishing signals failed; retrying (nothing is dropped)");
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Ok(())
}

/// Sends every signal of `batch`, then waits for each ack in order. On a
/// failure: how many were acknowledged before it, and why.
async fn publish_batch(
    js: &Context,
    batch: &[Signal],
    stats: &PublishStats,
) -> Result<(), (usize, ClusterError)> {
    let mut acks = Vec::with_capacity(batch.len());
    for s in batch {
        let subject = signal_subject(&s.strategy, s.symbol.as_str(), s.interval.as_str());
        let message = Publish::build()
            .payload(signal_body(s).into_bytes().into())
            .message_id(&s.id);
        match js.send_publish(subject.clone(), message).await {
            Ok(ack) => acks.push((subject, ack)),
            Err(e) => {
                acks.clear();
                return Err((
                    0,
                    ClusterError::Publish {
                        subject,
                        message: e.to_string(),
                    },
                ));
            }
        }
    }
    for (i, (subject, ack)) in acks.into_iter().enumerate() {
        match ack.await {
            Ok(a) if a.duplicate => {
                stats.duplicates.fetch_add(1, Relaxed);
            }
            Ok(_) => {
                stats.stored.fetch_add(1, Relaxed);
            }
            Err(e) => {
                return Err((
                    i,
                    ClusterError::Publish {
                        subject,
                        message: e.to_string(),
                    },
                ))
            }
        }
    }
    Ok(())
}

/// What [`republish_outbox`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Republished {
    /// Outbox signals published again.
    pub sent: u64,
    /// Of those, the ones SIGNALS already held (within its window).
    pub duplicates: u64,
}

/// Outbox records read per request.
const OUTBOX_PAGE: usize = 4096;

/// Closes the one gap between the engine's outbox and SIGNALS: a signal
/// emitted and checkpointed (so not re-emitted after a restart) but still
/// queued for the publisher when the process died. At start, before any
/// new signal, the outbox's signals of each (strategy, stream) in
/// `streams` from the candle time of the last one SIGNALS holds on its
/// subject on (all of them when it holds none) are published again, with
/// their ids. A subject's signals are published in candle-time order, so
/// what was lost comes after that last one (any other repeat is stored
/// once, within the duplicate window).
///
/// # Errors
/// [`ClusterError::JetStream`] or [`ClusterError::Publish`] when the
/// stream cannot be read or written; the engine does not start then.
pub async fn republish_outbox(
    js: &Context,
    cfg: &ClusterConfig,
    store: &dyn candlewick_state::StateStore,
    streams: &[(String, StreamKey)],
) -> Result<Republished, ClusterError> {
    let signals = js
        .get_stream_no_info(&cfg.signals_stream)
        .await
        .map_err(|e| ClusterError::js(format!("stream {}", cfg.signals_stream), e))?;
    let mut from = std::collections::HashMap::new();
    for (strategy, stream) in streams {
        let subject = signal_subject(strategy, stream.symbol.as_str(), stream.interval.as_str());
        let last = match signals.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => serde_json::from_slice::<serde_json::Value>(&m.payload)
                .ok()
                .and_then(|v| Some((v["time"].as_i64()?, v["id"].as_str()?.to_owned()))),
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => None,
            Err(e) => return Err(ClusterError::js(format!("last message on {subject}"), e)),
        };
        from.insert(subject, last);
    }
    let Some(start) = from
        .values()
        .map(|last| last.as_ref().map_or(i64::MIN, |(t, _)| *t))
        .min()
    else {
        return Ok(Republished::default());
    };
    let mut done = Republished::default();
    let mut time = start;
    // Ids already sent at `time`, the boundary a next page starts from.
    let mut at_boundary = std::collections::HashSet::new();
    let mut limit = OUTBOX_PAGE;
    loop {
        let page_from = time;
        let page = store
            .outbox_since(time, limit)
            .map_err(|e| ClusterError::js("reading the outbox", e))?;
        let full = page.len() == limit;
        for r in &page {
            if r.time == time && !at_boundary.insert(r.id.clone()) {
                continue;
            }
            if r.time > time {
                time = r.time;
                at_boundary.clear();
                at_boundary.insert(r.id.clone());
            }
            // The id is `strategy:SYMBOL:interval:time`.
            let mut parts = r.id.splitn(4, ':');
            let (Some(strategy), Some(symbol), Some(interval)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let subject = signal_subject(strategy, symbol, interval);
            let Some(last) = from.get(&subject) else {
                continue; // not one of this engine's streams
            };
            if last
                .as_ref()
                .is_some_and(|(t, id)| r.time < *t || r.id == *id)
            {
                continue;
            }
            let mut body = b"{\"type\":\"signal\",".to_vec();
            body.extend_from_slice(&r.body);
            let message = Publish::build().payload(body.into()).message_id(&r.id);
            let failed = |e: &dyn std::fmt::Display| ClusterError::Publish {
                subject: subject.clone(),
                message: e.to_string(),
            };
            let ack = js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| failed(&e))?
                .await
                .map_err(|e| failed(&e))?;
            done.sent += 1;
            done.duplicates += u64::from(ack.duplicate);
        }
        if !full {
            return Ok(done);
        }
        // A page all of one candle time: read more at once.
        if time == page_from {
            limit = limit.saturating_mul(2);
        }
    }
}
