//! [`SignalTee`]: the engine's sink, plus a copy of each signal for SIGNALS.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use candlewick_market::Candle;
use candlewick_pipeline::{Prediction, Signal, Sink};
use candlewick_plugins::{Health as PluginHealth, PluginStats};
use candlewick_state::StreamKey;
use tokio::sync::{mpsc, watch};

/// How far the SIGNALS publisher got: signals handed to it, and signals
/// settled (stored on SIGNALS, or dropped for a partition this engine
/// lost). Settled signals are settled in the order handed, so a commit
/// that waits for `settled >= handed` (read when it starts) waits for
/// every signal emitted before it (`crate::shared`).
#[derive(Debug)]
pub struct SignalProgress {
    handed: AtomicU64,
    settled: watch::Sender<u64>,
}

impl Default for SignalProgress {
    fn default() -> Self {
        SignalProgress {
            handed: AtomicU64::new(0),
            settled: watch::channel(0).0,
        }
    }
}

impl SignalProgress {
    pub fn handed(&self) -> u64 {
        self.handed.load(Relaxed)
    }

    pub fn watch_settled(&self) -> watch::Receiver<u64> {
        self.settled.subscribe()
    }

    /// `n` more signals settled.
    pub fn settle(&self, n: u64) {
        if n > 0 {
            self.settled.send_modify(|s| *s += n);
        }
    }
}

/// Hands every signal to the engine's own sink (the feed hub) first, then
/// queues a copy for [`crate::publish::publish_signals`].
///
/// The queue is bounded and a full one makes the worker wait (counted in
/// [`SignalTee::waits`]) rather than drop: SIGNALS is part of the
/// delivery guarantee, so a bus that falls behind slows the engine, as a
/// full shard queue slows a source. It is large enough to ride out a
/// short outage.
pub struct SignalTee {
    inner: Arc<dyn Sink>,
    tx: mpsc::Sender<Signal>,
    waits: AtomicU64,
    progress: Arc<SignalProgress>,
}

impl SignalTee {
    /// The tee and the receiving end for the publisher.
    pub fn new(
        inner: Arc<dyn Sink>,
        capacity: usize,
        progress: Arc<SignalProgress>,
    ) -> (Self, mpsc::Receiver<Signal>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            SignalTee {
                inner,
                tx,
                waits: AtomicU64::new(0),
                progress,
            },
            rx,
        )
    }

    /// Times a worker waited for room in the queue.
    pub fn waits(&self) -> u64 {
        self.waits.load(Relaxed)
    }
}

impl Sink for SignalTee {
    fn signal(&self, signal: Signal) {
        self.inner.signal(signal.clone());
        self.progress.handed.fetch_add(1, Relaxed);
        match self.tx.try_send(signal) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(signal)) => {
                self.waits.fetch_add(1, Relaxed);
                // Worker threads are plain threads, never a runtime's.
                let _ = self.tx.blocking_send(signal);
            }
            // The publisher is gone: the engine is stopping.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn wants_candles(&self) -> bool {
        self.inner.wants_candles()
    }

    fn candle(&self, stream: &StreamKey, candle: &Candle) {
        self.inner.candle(stream, candle);
    }

    fn wants_predictions(&self) -> bool {
        self.inner.wants_predictions()
    }

    fn prediction(&self, stream: &StreamKey, model: &str, time: i64, p: &Prediction) {
        self.inner.prediction(stream, model, time, p);
    }

    fn candles(&self, stream: &StreamKey, candles: &mut dyn Iterator<Item = &Candle>) {
        self.inner.candles(stream, candles);
    }

    fn strategy_health(
        &self,
        stream: &StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        self.inner.strategy_health(stream, strategy, stats, health);
    }
}
