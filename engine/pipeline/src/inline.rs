//! Latency mode's run to completion (ARCHITECTURE §2): a source's thread
//! applies, decides and emits a candle itself when the candle's shard is
//! idle, so no thread is woken between a frame and its signal.
//!
//! A shard's [`Worker`] sits behind a lock. Its own thread waits until
//! something is queued *without taking it*, then locks and drains; a
//! source's thread [`try_lock`](Mutex::try_lock)s it and, when it gets it,
//! first runs whatever is queued, then its own events. Every event leaves
//! the queue under the lock, so a stream's events keep the order they were
//! routed in. A source never waits for the lock: a busy shard's events are
//! queued, exactly as without this mode.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use candlewick_core::{Inline, InlineShard};
use candlewick_state::StateError;
use crossbeam_channel::{Receiver, Select, Sender};

use crate::worker::{Taken, Worker};
use crate::{CandleEvent, WorkerReport};

/// The door a [`crate::Router`] runs a shard's batches through.
pub(crate) struct Door {
    worker: Arc<Mutex<Worker>>,
    /// Wakes the worker's thread after a batch failed here, so that it
    /// stops with the error at once, or when a checkpoint is due.
    wake: Sender<()>,
}

/// What the worker's own thread holds.
pub(crate) struct Behind {
    worker: Arc<Mutex<Worker>>,
    queue: Receiver<Vec<CandleEvent>>,
    wake: Receiver<()>,
}

/// Puts `worker` behind a lock: the door for the routers, and what its
/// thread runs ([`Behind::run`]).
pub(crate) fn split(worker: Worker) -> (Door, Behind) {
    let queue = worker.rx.clone();
    let worker = Arc::new(Mutex::new(worker));
    let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
    (
        Door {
            worker: worker.clone(),
            wake: wake_tx,
        },
        Behind {
            worker,
            queue,
            wake: wake_rx,
        },
    )
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Door").finish_non_exhaustive()
    }
}

impl InlineShard for Door {
    fn try_run(&self, events: Vec<CandleEvent>) -> Inline {
        let mut w = match self.worker.try_lock() {
            Ok(w) => w,
            Err(TryLockError::WouldBlock) => return Inline::Busy(events),
            Err(TryLockError::Poisoned(_)) => return Inline::Stopped(events),
        };
        if w.stopped || w.failed.is_some() {
            return Inline::Stopped(events);
        }
        // Whatever was queued before these events runs first.
        if !w.rx.is_empty() {
            if let Err(e) = w.take_and_run(None) {
                self.fail(&mut w, e);
                return Inline::Stopped(events);
            }
            if !w.rx.is_empty() {
                return Inline::Busy(events);
            }
        }
        let ran = w.take_and_run(Some(events)).and_then(|_| {
            // A due checkpoint is copied on the shard's own thread, not
            // here, where it would hold up every shard's next frame; but a
            // writer that has failed stops the shard here, at once.
            if w.schedule.due() && w.writer_failed() {
                w.writer_gone()?;
            }
            if w.schedule.announce() {
                let _ = self.wake.try_send(());
            }
            Ok(())
        });
        match ran {
            Ok(()) => Inline::Ran,
            Err(e) => {
                self.fail(&mut w, e);
                Inline::Stopped(Vec::new())
            }
        }
    }
}

impl Door {
    /// Leaves `e` for the worker's thread, which returns it.
    fn fail(&self, w: &mut Worker, e: StateError) {
        w.failed = Some(e);
        let _ = self.wake.try_send(());
    }
}

impl Behind {
    /// The worker's own thread: runs what the sources could not run
    /// themselves, checkpoints when nothing comes, and hands over the last
    /// checkpoint once every router is gone.
    ///
    /// # Errors
    /// As [`Worker::run`], or the error a batch met on a source's thread.
    pub(crate) fn run(self) -> Result<WorkerReport, StateError> {
        let result = self.serve();
        if result.is_err() {
            // The sources must not run it any more either.
            self.lock().stopped = true;
        }
        result
    }

    fn serve(&self) -> Result<WorkerReport, StateError> {
        let mut wait = self.lock().wait_limit();
        loop {
            let mut ready = Select::new();
            ready.recv(&self.queue);
            ready.recv(&self.wake);
            match wait {
                Some(wait) => {
                    let _ = ready.ready_timeout(wait);
                }
                None => {
                    ready.ready();
                }
            }
            // A wake is a reason to look, not an event to run.
            let _ = self.wake.try_recv();
            let mut w = self.lock();
            if let Some(e) = w.failed.take() {
                return Err(e);
            }
            if let Taken::Closed = w.take_and_run(None)? {
                break;
            }
            w.checkpoint_if_due(false)?;
            wait = w.wait_limit();
        }
        self.lock().finish()
    }

    /// The worker; a panic while a source's thread held it is carried on
    /// here (the pipeline reports the shard as panicked).
    fn lock(&self) -> MutexGuard<'_, Worker> {
        match self.worker.lock() {
            Ok(w) => w,
            Err(_) => panic!("a batch of this shard panicked on a source's thread"),
        }
    }
}
