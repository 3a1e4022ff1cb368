//! The shard worker: drain a batch, apply, run models, run strategies,
//! emit; checkpoint on its schedule (see [`crate::checkpoint`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candlewick_inference::{InferenceStage, OutputRef, StageStats, Ticket};
use candlewick_market::Candle;
use candlewick_plugins::PluginRunner;
use candlewick_state::{Checkpoint, OutboxRecord, StateError, StateStore, StreamState};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::checkpoint::{CheckpointPolicy, Handoff, OutboxPolicy, Owned, Schedule, WriterHandle};
use crate::{CandleEvent, Clock, Metrics, Signal, Sink, Stage, StreamKey};

/// Plugin-snapshot name under which a stream's warm-up tail is stored.
pub const TAIL: &str = "@tail";

/// What one worker did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    pub shard: usize,
    pub applied: u64,
    pub duplicates: u64,
    pub batches: u64,
    pub signals: u64,
    /// Bars that got a model prediction (summed over models).
    pub predictions: u64,
}

/// One stream owned by a worker.
pub(crate) struct Slot {
    pub(crate) state: StreamState,
    pub(crate) runners: Vec<(Arc<str>, PluginRunner)>,
    /// The candles applied since the last checkpoint, oldest first (none
    /// when the stream has no strategies). The checkpoint appends them to
    /// the stored warm-up tail ([`crate::checkpoint::commit`]), so a
    /// stream holds these few in memory, not its `tail_bars` candles.
    /// Invariant: `tail.len() <= tail_bars`.
    pub(crate) tail: VecDeque<Candle>,
    /// Candles applied in the current batch, in order, with their ingest
    /// time and model-output ticket: plugin signals name their bar by
    /// index into this.
    batch: Vec<(Candle, u64, Ticket)>,
    touched: bool,
    /// Changed since the last checkpoint.
    dirty: bool,
}

impl Slot {
    pub(crate) fn new(state: StreamState, runners: Vec<(Arc<str>, PluginRunner)>) -> Self {
        Slot {
            state,
            runners,
            tail: VecDeque::new(),
            batch: Vec::new(),
            touched: false,
            dirty: false,
        }
    }
}

pub(crate) struct Worker {
    pub(crate) shard: usize,
    pub(crate) rx: Receiver<Vec<CandleEvent>>,
    /// Where drained batches go back to the routers for reuse; a full
    /// channel just drops one.
    pub(crate) spares: Sender<Vec<CandleEvent>>,
    /// Global stream id -> index in `slots`, `u32::MAX` for others' streams.
    pub(crate) local: Vec<u32>,
    pub(crate) slots: Vec<Slot>,
    pub(crate) store: Arc<dyn StateStore>,
    pub(crate) sink: Arc<dyn Sink>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Clock,
    pub(crate) max_batch: usize,
    pub(crate) tail_bars: usize,
    /// The batched model runner over this shard's streams (slot indices),
    /// present when a strategy reads a model output.
    pub(crate) inference: Option<InferenceStage>,
    /// Per strategy (the order of every slot's runners): the model outputs
    /// its manifest declares, resolved against `inference`'s models.
    pub(crate) needs: Arc<[Vec<OutputRef>]>,
    /// Per model of `inference`: the checkpoint name of its windows.
    pub(crate) model_snapshots: Vec<Arc<str>>,
    pub(crate) schedule: Schedule,
    /// The checkpoint writer, under [`CheckpointPolicy::Every`].
    pub(crate) writer: Option<WriterHandle>,
    pub(crate) outbox: OutboxPolicy,
    /// Latency mode: how long to poll the queue before sleeping on it.
    pub(crate) spin: Duration,
    /// See [`crate::PipelineConfig::measure_latency`].
    pub(crate) measure_latency: bool,
    /// A checkpoint the writer had no room for yet (sent before any newer
    /// one, so a shard's checkpoints commit in order).
    pub(crate) held: Option<Owned>,
    /// The stream the next slice of a checkpoint starts at (0 between
    /// checkpoints; see [`Worker::build_checkpoint`]).
    pub(crate) cursor: usize,
    /// Signals emitted since the last checkpoint, for the outbox.
    pub(crate) unsaved: Vec<OutboxRecord>,
    /// Open time of the newest signal's candle (outbox retention).
    pub(crate) newest_signal: Option<i64>,
    /// What it did so far.
    pub(crate) report: WorkerReport,
    /// Reused buffers (see [`Worker::sized`]).
    pub(crate) scratch: Batch,
    /// Latency mode: the error a batch run on a source's thread met; the
    /// worker's own thread returns it (see [`crate::inline`]).
    pub(crate) failed: Option<StateError>,
    /// Latency mode: the worker's thread has stopped with an error; the
    /// sources queue nothing more and run nothing more.
    pub(crate) stopped: bool,
}

/// What waiting on the queue gave.
enum Next {
    Events(Vec<CandleEvent>),
    /// Nothing came for a checkpoint interval.
    Idle,
    /// Every router is gone and the queue is empty: shutdown.
    Closed,
}

/// What [`Worker::take_and_run`] found.
pub(crate) enum Taken {
    /// A batch ran, or nothing was queued yet.
    Open,
    /// Nothing was queued and every router is gone: shutdown.
    Closed,
}

impl Worker {
    /// The buffers a batch of this worker needs, allocated once.
    pub(crate) fn sized(mut self) -> Self {
        let width = self.slots.first().map_or(0, |s| s.state.set().width());
        self.report.shard = self.shard;
        self.scratch = Batch {
            received: Vec::new(),
            values: vec![0.0; width],
            touched: Vec::new(),
            signals: Vec::new(),
            latencies: Vec::with_capacity(self.max_batch),
            model_values: vec![f64::NAN; self.needs.iter().map(Vec::len).max().unwrap_or(0)],
        };
        self
    }

    /// Runs until every router is dropped and the queue is drained.
    ///
    /// # Errors
    /// A store that cannot be written; the batch in hand is not emitted.
    pub(crate) fn run(mut self) -> Result<WorkerReport, StateError> {
        loop {
            match self.next() {
                Next::Closed => break,
                Next::Idle => {}
                Next::Events(first) => {
                    self.take_and_run(Some(first))?;
                }
            }
            self.checkpoint_if_due(false)?;
        }
        self.finish()
    }

    /// The last checkpoint, handed over once everything is drained.
    pub(crate) fn finish(&mut self) -> Result<WorkerReport, StateError> {
        self.checkpoint_if_due(true)?;
        Ok(self.report)
    }

    /// Runs `first` (when given) and whatever else is queued, up to
    /// [`Worker::max_batch`] events, as one batch.
    ///
    /// # Errors
    /// As [`Worker::run`].
    pub(crate) fn take_and_run(
        &mut self,
        first: Option<Vec<CandleEvent>>,
    ) -> Result<Taken, StateError> {
        let mut b = std::mem::take(&mut self.scratch);
        let mut events = first.as_ref().map_or(0, Vec::len);
        b.received.extend(first);
        let mut closed = false;
        while events < self.max_batch {
            match self.rx.try_recv() {
                Ok(more) => {
                    events += more.len();
                    b.received.push(more);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if b.received.is_empty() {
            self.scratch = b;
            return Ok(if closed { Taken::Closed } else { Taken::Open });
        }
        self.metrics.dequeued(self.shard, events);
        let result = self.batch(&mut b);
        // The emptied batches go back to the routers to refill.
        for batch in b.received.drain(..) {
            let _ = self.spares.try_send(batch);
        }
        self.scratch = b;
        result.map(|()| Taken::Open)
    }

    /// The next queued batch: polled for [`Worker::spin`] (latency mode:
    /// a sleeping thread costs a wake-up per candle), then waited for, up
    /// to a checkpoint interval.
    fn next(&self) -> Next {
        if !self.spin.is_zero() {
            let until = Instant::now() + self.spin;
            loop {
                match self.rx.try_recv() {
                    Ok(events) => return Next::Events(events),
                    Err(TryRecvError::Disconnected) => return Next::Closed,
                    Err(TryRecvError::Empty) => {}
                }
                if Instant::now() >= until {
                    break;
                }
                for _ in 0..32 {
                    std::hint::spin_loop();
                }
            }
        }
        match self.wait_limit() {
            Some(wake) => match self.rx.recv_timeout(wake) {
                Ok(events) => Next::Events(events),
                Err(RecvTimeoutError::Timeout) => Next::Idle,
                Err(RecvTimeoutError::Disconnected) => Next::Closed,
            },
            None => match self.rx.recv() {
                Ok(events) => Next::Events(events),
                Err(_) => Next::Closed,
            },
        }
    }

    fn batch(&mut self, b: &mut Batch) -> Result<(), StateError> {
        b.touched.clear();
        b.latencies.clear();
        let drained_ns = self.stamp();
        let models_before = self.inference.as_ref().map(InferenceStage::stats);
        let duplicates = self.apply_all(b)?;
        let applied = b.latencies.len() as u64;
        let predictions = self.run_models();
        self.count_models(models_before);
        let applied_ns = self.stamp();
        self.push_bars(b);
        let quarantines = self.run_strategies(b);
        let decided_ns = self.stamp();

        // Emit first (see the crate docs); only `EveryBatch` commits before.
        let now_us = wall_us();
        for s in &mut b.signals {
            s.emitted_at_us = now_us;
        }
        if self.schedule.policy() == CheckpointPolicy::EveryBatch && !b.touched.is_empty() {
            self.unsaved.extend(b.signals.iter().map(outbox_record));
            let mut checkpoint = self.build_checkpoint(usize::MAX);
            crate::checkpoint::commit(
                &*self.store,
                &mut checkpoint,
                self.tail_bars,
                &self.metrics,
            )?;
        }
        let signals = b.signals.len() as u64;
        if let Some(t) = b.signals.iter().map(|s| s.time).max() {
            self.newest_signal = Some(self.newest_signal.map_or(t, |n| n.max(t)));
        }
        // With background checkpoints the signals are kept for the outbox
        // (below, off the path); otherwise the sink takes them as they are.
        let outbox_later = matches!(self.schedule.policy(), CheckpointPolicy::Every { .. });
        if outbox_later {
            for s in &b.signals {
                self.sink.signal(s.clone());
            }
        } else {
            for s in b.signals.drain(..) {
                self.sink.signal(s);
            }
        }
        if self.sink.wants_candles() {
            for &li in &b.touched {
                let slot = &self.slots[li as usize];
                self.sink
                    .candles(slot.state.key(), &mut slot.batch.iter().map(|(c, _, _)| c));
            }
        }
        self.emit_predictions(&b.touched);
        if self.measure_latency {
            let emitted_ns = self.stamp();
            let stamps = Stamps {
                drained: drained_ns,
                applied: applied_ns,
                decided: decided_ns,
                emitted: emitted_ns,
            };
            self.record_stages(b, stamps);
        }

        // Off the path: what the next checkpoint will need.
        if outbox_later {
            self.unsaved.extend(b.signals.iter().map(outbox_record));
        }
        b.signals.clear();
        self.schedule.applied(applied);
        for &li in &b.touched {
            let slot = &mut self.slots[li as usize];
            slot.batch.clear();
            slot.touched = false;
        }

        let c = &self.metrics.counters;
        self.metrics.add(&c.candles_applied, applied);
        self.metrics.add(&c.candles_duplicate, duplicates);
        self.metrics.add(&c.batches, 1);
        self.metrics.add(&c.signals_emitted, signals);
        if quarantines > 0 {
            self.metrics.set_quarantines(self.shard, quarantines);
        }
        let report = &mut self.report;
        report.applied += applied;
        report.duplicates += duplicates;
        report.batches += 1;
        report.signals += signals;
        report.predictions += predictions;
        if duplicates > 0 && report.duplicates == duplicates {
            tracing::info!(
                shard = self.shard,
                "first re-sent candle refused as already applied (counted in candles_duplicate)"
            );
        }
        Ok(())
    }

    /// The clock, when latency is measured.
    fn stamp(&self) -> u64 {
        if self.measure_latency {
            self.clock.now_ns()
        } else {
            0
        }
    }

    /// Applies each event to its stream; returns the duplicates refused.
    fn apply_all(&mut self, b: &mut Batch) -> Result<u64, StateError> {
        // The events were written on the router's core. Touching each
        // first, in a loop with nothing else in it, lets their cache lines
        // travel side by side instead of one per event of the loop below.
        let warm = b
            .received
            .iter()
            .flatten()
            .fold(0u32, |a, ev| a ^ ev.stream.0);
        std::hint::black_box(warm);
        let mut duplicates = 0u64;
        for ev in b.received.iter().flatten() {
            let Some(&li) = self.local.get(ev.stream.0 as usize) else {
                continue;
            };
            let Some(slot) = self.slots.get_mut(li as usize) else {
                continue;
            };
            match slot.state.apply(&ev.candle, &mut b.values) {
                Ok(()) => {}
                Err(StateError::AlreadyApplied { .. }) => {
                    duplicates += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let ticket = match &mut self.inference {
                // The slot index is always one of the stage's streams.
                Some(stage) => stage.push(li as usize, &ev.candle).unwrap_or_default(),
                None => Ticket::default(),
            };
            if !slot.runners.is_empty() && self.tail_bars > 0 {
                while slot.tail.len() >= self.tail_bars {
                    slot.tail.pop_front();
                }
                slot.tail.push_back(ev.candle);
            }
            slot.batch.push((ev.candle, ev.ingest_ns, ticket));
            slot.dirty = true;
            if !slot.touched {
                slot.touched = true;
                b.touched.push(li);
            }
            b.latencies.push(ev.ingest_ns);
        }
        Ok(duplicates)
    }

    /// Strategies: one call per (stream, strategy) for the whole batch;
    /// their signals into `b.signals`. Returns the shard's quarantines.
    fn run_strategies(&mut self, b: &mut Batch) -> u64 {
        let mut quarantines = 0;
        for &li in &b.touched {
            let slot = &mut self.slots[li as usize];
            let key = slot.state.key();
            for (name, runner) in &mut slot.runners {
                for s in runner.flush() {
                    let Some(&(candle, ingest_ns, _)) = slot.batch.get(s.bar) else {
                        continue;
                    };
                    b.signals.push(Signal {
                        stop_loss: s.stop_loss,
                        take_profit: s.take_profit,
                        ingest_ns,
                        ..Signal::decided(
                            name.clone(),
                            key.symbol.clone(),
                            key.interval,
                            candle.open_time,
                            (s.action, s.strength),
                            candle.close,
                        )
                    });
                }
                quarantines += runner.stats().quarantines();
                report_strategy(&*self.sink, key, name, runner);
            }
        }
        quarantines
    }

    /// Per candle: queue (ingest -> drained), apply (-> indicators and
    /// models done), strategies (-> strategies done), emit (-> every sink
    /// call returned), and the whole ingest -> emit.
    fn record_stages(&self, b: &mut Batch, at: Stamps) {
        let m = &self.metrics;
        let n = b.latencies.len();
        for (stage, from, to) in [
            (Stage::Apply, at.drained, at.applied),
            (Stage::Strategies, at.applied, at.decided),
            (Stage::Emit, at.decided, at.emitted),
        ] {
            m.record_stage(self.shard, stage, to.saturating_sub(from), n);
        }
        for t in &mut b.latencies {
            m.record_stage(self.shard, Stage::Queue, at.drained.saturating_sub(*t), 1);
            *t = at.emitted.saturating_sub(*t);
        }
        m.record_latencies(self.shard, &b.latencies);
    }

    /// The next slice of a checkpoint, copied: up to `limit` dirty
    /// streams from [`Worker::cursor`] on, with their plugins' snapshots
    /// (taken now, and only now), warm-up tails and model windows, and
    /// every unsaved signal. The checkpoint is taken once a slice reaches
    /// the last stream.
    ///
    /// Each slice is consistent on its own: a stream's state, offset,
    /// snapshots and tail go together, and a restart resumes each stream
    /// from its own offset. Its signals may reach the outbox before their
    /// streams' offsets do; a restart then emits them again with the same
    /// ids, which resuming clients already drop as repeats.
    fn build_checkpoint(&mut self, limit: usize) -> Owned {
        let started = Instant::now();
        let mut checkpoint = self
            .writer
            .as_ref()
            .map_or_else(Checkpoint::new, WriterHandle::spare);
        let dirty = self.slots[self.cursor..]
            .iter()
            .filter(|s| s.dirty)
            .take(limit)
            .count();
        let per_stream =
            self.slots.first().map_or(0, |s| s.runners.len() + 1) + self.model_snapshots.len();
        checkpoint.reserve(dirty, dirty * per_stream);
        let mut copied = 0;
        let mut li = self.cursor;
        while li < self.slots.len() && copied < limit {
            let slot = &mut self.slots[li];
            li += 1;
            if !std::mem::take(&mut slot.dirty) {
                continue;
            }
            copied += 1;
            let key = slot.state.key().clone();
            checkpoint.stream_owned(slot.state.clone());
            for (name, runner) in &mut slot.runners {
                if let Some(bytes) = runner.checkpoint() {
                    checkpoint.plugin(name, &key, bytes.to_vec());
                }
            }
            if !slot.runners.is_empty() && !slot.tail.is_empty() {
                checkpoint.plugin(TAIL, &key, encode_tail(slot.tail.iter()));
                slot.tail.clear();
                // A burst (a backfill) may have grown it to `tail_bars`.
                slot.tail.shrink_to(TAIL_SPARE);
            }
            if let Some(stage) = &self.inference {
                for (model, name) in self.model_snapshots.iter().enumerate() {
                    match stage.save(model, li - 1) {
                        Ok(bytes) => {
                            checkpoint.plugin(name, &key, bytes);
                        }
                        Err(e) => {
                            tracing::warn!(shard = self.shard, cause = %e, "model window not checkpointed")
                        }
                    }
                }
            }
        }
        let keep_from = self.newest_signal.map_or(i64::MIN, |newest| {
            newest.saturating_sub(self.outbox.retention_ms)
        });
        for record in self.unsaved.drain(..) {
            if record.time >= keep_from {
                checkpoint.signal(record);
            }
        }
        if keep_from > i64::MIN {
            checkpoint.trim_outbox_before(keep_from);
        }
        if li < self.slots.len() {
            self.cursor = li;
        } else {
            self.cursor = 0;
            self.schedule.taken();
        }
        self.metrics.durability.last_build_us.store(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        checkpoint
    }

    /// Hands a checkpoint to the writer when one is due (every one at
    /// `last`, waiting for room then). Never waits otherwise: a busy
    /// writer, or candles already queued for this shard (a burst), postpone
    /// the checkpoint to a later batch, the queue's until the checkpoint is
    /// [overdue](Schedule::overdue).
    pub(crate) fn checkpoint_if_due(&mut self, last: bool) -> Result<(), StateError> {
        let Some(writer) = self.writer.clone() else {
            return Ok(());
        };
        let hand = |c: Owned| {
            if last {
                writer.send(c)
            } else {
                writer.try_send(c)
            }
        };
        if let Some(held) = self.held.take() {
            match hand(held) {
                Handoff::Sent => {}
                Handoff::Busy(c) => {
                    self.held = Some(c);
                    return Ok(());
                }
                Handoff::Gone => return self.writer_gone(),
            }
        }
        if !(self.schedule.due() || (last && self.slots.iter().any(|s| s.dirty))) {
            return Ok(());
        }
        let queued = !self.rx.is_empty() && !self.schedule.overdue();
        if !last && (queued || writer.is_busy()) {
            self.metrics
                .durability
                .deferred
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        let checkpoint = if last {
            // Everything dirty, wherever a pass had got to.
            self.cursor = 0;
            self.build_checkpoint(usize::MAX)
        } else {
            self.build_checkpoint(CHECKPOINT_SLICE)
        };
        match hand(checkpoint) {
            Handoff::Sent => Ok(()),
            Handoff::Busy(c) => {
                self.held = Some(c);
                Ok(())
            }
            Handoff::Gone => self.writer_gone(),
        }
    }

    /// The longest this worker may wait for candles: a moment while a
    /// checkpoint is due or under way (a busy writer or a burst postponed
    /// it; the next slice), else until one may be due (`None`: as long as
    /// it takes).
    pub(crate) fn wait_limit(&self) -> Option<Duration> {
        let idle = self.schedule.policy().idle_wake();
        if self.cursor > 0 || self.schedule.due() {
            idle.map(|i| i.min(SLICE_WAIT))
        } else {
            idle
        }
    }

    /// Whether the checkpoint writer has stopped (it failed).
    pub(crate) fn writer_failed(&self) -> bool {
        self.writer.as_ref().is_some_and(WriterHandle::is_gone)
    }

    /// The writer stopped (it failed and said why): this worker stops too,
    /// so that nothing more is applied that could not be made durable.
    pub(crate) fn writer_gone(&mut self) -> Result<(), StateError> {
        self.writer = None;
        Err(StateError::WriterStopped)
    }
}

/// A signal as the outbox keeps it.
fn outbox_record(s: &Signal) -> OutboxRecord {
    OutboxRecord {
        time: s.time,
        id: s.id.clone(),
        body: s.feed_body().into_bytes(),
    }
}

impl Worker {
    /// One forward per model over every bar of the batch that has a full
    /// window (DESIGN §2: after the indicators, before the plugins).
    /// Returns the bars predicted. A failed forward is logged and its bars
    /// read NaN ("not available"): strategies go on, as with a warm-up.
    fn run_models(&mut self) -> u64 {
        let Some(stage) = &mut self.inference else {
            return 0;
        };
        let before = stage.stats();
        if let Err(e) = stage.run_batch() {
            if before.failed_forwards == 0 {
                tracing::error!(shard = self.shard, cause = %e, "model inference failed; its outputs read NaN for this batch (logged once)");
            }
        }
        stage.stats().predicted - before.predicted
    }

    /// Hands the batch's predictions to a sink that wants them (the feed
    /// publishes them to clients that asked).
    fn emit_predictions(&self, touched: &[u32]) {
        let Some(stage) = &self.inference else {
            return;
        };
        if !self.sink.wants_predictions() {
            return;
        }
        for &li in touched {
            let slot = &self.slots[li as usize];
            for (candle, _, ticket) in &slot.batch {
                for (m, model) in stage.models().enumerate() {
                    if let Some(p) = stage.prediction(*ticket, m) {
                        self.sink
                            .prediction(slot.state.key(), model.name(), candle.open_time, &p);
                    }
                }
            }
        }
    }

    /// Adds what the inference stage did since `before` (taken before the
    /// batch's first push) to the metrics.
    fn count_models(&self, before: Option<StageStats>) {
        let (Some(before), Some(stage)) = (before, &self.inference) else {
            return;
        };
        let after = stage.stats();
        let missed = |s: &StageStats| s.short_history + s.non_finite_input + s.non_finite_output;
        let c = &self.metrics.counters;
        self.metrics
            .add(&c.model_predictions, after.predicted - before.predicted);
        self.metrics
            .add(&c.model_no_prediction, missed(&after) - missed(&before));
        self.metrics.add(
            &c.model_failed_forwards,
            after.failed_forwards - before.failed_forwards,
        );
    }

    /// Hands each applied bar, with its model outputs, to its stream's
    /// strategies, in order.
    fn push_bars(&mut self, b: &mut Batch) {
        for &li in &b.touched {
            let slot = &mut self.slots[li as usize];
            for (candle, _, ticket) in &slot.batch {
                for (i, (_, runner)) in slot.runners.iter_mut().enumerate() {
                    let needs = self.needs.get(i).map_or(&[][..], Vec::as_slice);
                    let values = &mut b.model_values[..needs.len()];
                    if let Some(stage) = &self.inference {
                        stage.fill(*ticket, needs, values);
                    }
                    runner.push(candle, values);
                }
            }
        }
    }
}

/// The clock readings of one batch's stages (see [`Stage`]).
#[derive(Debug, Clone, Copy)]
struct Stamps {
    drained: u64,
    applied: u64,
    decided: u64,
    emitted: u64,
}

/// Reused buffers of one worker: no allocation per event once warm.
#[derive(Default)]
pub(crate) struct Batch {
    /// The queued batches drained together, as the routers filled them
    /// (read in place, not copied into one).
    received: Vec<Vec<CandleEvent>>,
    values: Vec<f64>,
    touched: Vec<u32>,
    signals: Vec<Signal>,
    latencies: Vec<u64>,
    /// One bar's model outputs for one strategy.
    model_values: Vec<f64>,
}

pub(crate) fn wall_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Candles a slot's tail keeps room for between checkpoints.
const TAIL_SPARE: usize = 4;

/// Streams one slice of a background checkpoint copies: the longest a
/// checkpoint holds up a shard's next candle is one slice's copy (1-2 ms
/// with three plugins a stream on the development VM), however many
/// streams the shard serves.
const CHECKPOINT_SLICE: usize = 256;

/// The longest a worker waits before it looks again at a checkpoint that
/// is due or under way.
const SLICE_WAIT: Duration = Duration::from_millis(1);

/// Bytes per candle of an encoded tail.
pub(crate) const TAIL_RECORD: usize = 48;

/// 48 bytes per candle, little-endian: open_time, open, high, low, close, volume.
pub fn encode_tail<'a>(tail: impl ExactSizeIterator<Item = &'a Candle>) -> Vec<u8> {
    let mut out = Vec::with_capacity(tail.len() * TAIL_RECORD);
    for c in tail {
        out.extend_from_slice(&c.open_time.to_le_bytes());
        for v in [c.open, c.high, c.low, c.close, c.volume] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// The inverse of [`encode_tail`]; `None` for bytes of a wrong length.
pub fn decode_tail(bytes: &[u8]) -> Option<VecDeque<Candle>> {
    if bytes.len() % TAIL_RECORD != 0 {
        return None;
    }
    let f = |b: &[u8]| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    Some(
        bytes
            .chunks_exact(TAIL_RECORD)
            .map(|c| Candle {
                open_time: i64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8])),
                open: f(&c[8..16]),
                high: f(&c[16..24]),
                low: f(&c[24..32]),
                close: f(&c[32..40]),
                volume: f(&c[40..48]),
            })
            .collect(),
    )
}

/// Hands `runner`'s health to `sink` when it has anything to say (see
/// [`Sink::strategy_health`]).
pub(crate) fn report_strategy(
    sink: &dyn Sink,
    stream: &StreamKey,
    strategy: &str,
    runner: &PluginRunner,
) {
    let stats = runner.stats();
    let eventful = stats.quarantines() + stats.reloads + stats.reload_failures > 0
        || !matches!(runner.health(), candlewick_plugins::Health::Running);
    if eventful {
        sink.strategy_health(stream, strategy, stats, runner.health());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_round_trips_bit_exact() {
        let c = |t: i64| Candle {
            open_time: t,
            open: 1.1,
            high: 2.0 + t as f64,
            low: 0.5,
            close: 1.0 / 3.0,
            volume: 7.0,
        };
        let tail: VecDeque<Candle> = [c(1), c(2)].into_iter().collect();
        let back = decode_tail(&encode_tail(tail.iter())).unwrap();
        assert_eq!(back, tail);
        assert_eq!(decode_tail(&[0; 47]), None);
    }
}
