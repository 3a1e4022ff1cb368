//! [`SignalTee`]: the engine's sink, plus a copy of each signal for SIGNALS.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use candlewick_pipeline::{Signal, Sink, SinkTap, Tapped};
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

/// The engine's own sink (the feed hub) with each signal also queued, after
/// the hub has it, for [`crate::publish::publish_signals`].
pub type SignalTee = Tapped<Arc<dyn Sink>, PublishTap>;

/// The SIGNALS side of a [`SignalTee`].
///
/// The queue is bounded and a full one makes the worker wait (counted in
/// [`PublishTap::waits`]) rather than drop: SIGNALS is part of the
/// delivery guarantee, so a bus that falls behind slows the engine, as a
/// full shard queue slows a source. It is large enough to ride out a
/// short outage.
pub struct PublishTap {
    tx: mpsc::Sender<Signal>,
    waits: AtomicU64,
    progress: Arc<SignalProgress>,
}

impl PublishTap {
    /// The tee over `inner`, and the receiving end for the publisher.
    pub fn wrap(
        inner: Arc<dyn Sink>,
        capacity: usize,
        progress: Arc<SignalProgress>,
    ) -> (SignalTee, mpsc::Receiver<Signal>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let tap = PublishTap {
            tx,
            waits: AtomicU64::new(0),
            progress,
        };
        (Tapped::new(inner, tap), rx)
    }

    /// Times a worker waited for room in the queue.
    pub fn waits(&self) -> u64 {
        self.waits.load(Relaxed)
    }
}

impl SinkTap for PublishTap {
    fn signal(&self, signal: Signal) {
        self.progress.handed.fetch_add(1, Relaxed);
        match self.tx.try_send(signal) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(signal)) => {
                self.waits.fetch_add(1, Relaxed);
                // A shard's worker thread is a plain thread, but in latency
                // mode a source's runtime thread emits too: it hands its
                // runtime work to another thread while it waits.
                // (A closed queue means the engine is stopping, as below.)
                tokio::task::block_in_place(|| {
                    let _ = self.tx.blocking_send(signal);
                });
            }
            // The publisher is gone: the engine is stopping.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use candlewick_core::Action;
    use candlewick_pipeline::NullSink;

    use super::*;

    fn signal(time: i64) -> Signal {
        Signal::decided(
            "s".into(),
            candlewick_market::Symbol::new("EURUSD").unwrap(),
            "1h".parse().unwrap(),
            time,
            (Action::Buy, 1.0),
            1.0,
        )
    }

    /// In latency mode a source's runtime thread emits: a full queue makes
    /// it wait for the publisher there too, instead of panicking.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_waits_on_a_runtime_thread_as_on_a_worker_thread() {
        let (tee, mut rx) = PublishTap::wrap(Arc::new(NullSink), 1, Arc::default());
        let publisher = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(s) = rx.recv().await {
                got.push(s.time);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            got
        });
        let emitter = tokio::spawn(async move {
            for time in 0..4 {
                tee.signal(signal(time));
            }
            tee.tap.waits()
        });
        let waits = emitter.await.unwrap();
        assert!(waits > 0, "the queue of one never filled");
        assert_eq!(publisher.await.unwrap(), vec![0, 1, 2, 3]);
    }
}
