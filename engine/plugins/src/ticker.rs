//! The epoch ticker: the clock behind per-call deadlines.
//!
//! Wasmtime's epoch interruption checks, at loop back-edges and function
//! entries, whether the engine's epoch has passed the store's deadline; an
//! increment is a single atomic add. This thread does the incrementing, once
//! per tick. It belongs to the [`PluginHost`](crate::PluginHost) (through the
//! state every plugin shares), so it lives exactly as long as some plugin
//! could need it, and it stops and is joined when the last one goes.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::Engine;

/// A running ticker; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct EpochTicker {
    /// Dropping the sender is the stop signal.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine` every `tick`.
    ///
    /// # Errors
    /// When the OS refuses a thread.
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("cw-plugin-epoch".into())
            .spawn(move || loop {
                match stopped.recv_timeout(tick) {
                    Err(RecvTimeoutError::Timeout) => engine.increment_epoch(),
                    // Disconnected (the host is gone) or an explicit message.
                    _ => return,
                }
            })?;
        Ok(EpochTicker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The loop cannot panic; a join error would only repeat one.
            let _ = thread.join();
        }
    }
}
