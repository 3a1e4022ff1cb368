//! The replay source: candles from a file, paced like the market made them.
//!
//! Candle `i` is routed at `start + (t_i - t_first) / speed` of wall time,
//! where `t_first` is the first candle not applied before (resumed runs do
//! not wait through history they already hold). `speed = 0` routes as fast
//! as the workers take them (the router's backpressure paces it).
//!
//! It runs on its own thread: it sleeps and may block on a full queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candlewick_core::{CandleEvent, Clock, Router, StreamId};
use candlewick_market::{Candle, DataError};

use crate::IngestError;

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Candles routed to the workers.
    pub routed: u64,
    /// Candles at or before the resume offset: already in the state.
    pub already_applied: u64,
    /// True when it stopped on request before the end of the data.
    pub stopped: bool,
}

/// Replays `candles` of `stream`.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    pub stream: StreamId,
    /// Speed-up over real time; 0 = unpaced.
    pub speed: f64,
    /// The stream's committed offset: candles at or before it are skipped.
    pub resume_after: Option<i64>,
}

impl Replay {
    /// Routes every candle not applied before, paced, until the data ends
    /// or `stop` turns true.
    ///
    /// # Errors
    /// A bad candle (file, line and reason) or a stopped pipeline.
    pub fn run<I>(
        &self,
        candles: I,
        router: &Router,
        clock: Clock,
        stop: &AtomicBool,
    ) -> Result<ReplayReport, IngestError>
    where
        I: IntoIterator<Item = Result<Candle, DataError>>,
    {
        let mut report = ReplayReport::default();
        let mut origin: Option<(Instant, i64)> = None;
        // Unpaced, candles go to the worker in batches (one hand-off each);
        // paced, each candle is its own batch, routed when it is due.
        let chunk = if self.speed > 0.0 { 1 } else { BATCH };
        let mut batch = Vec::with_capacity(chunk);
        for candle in candles {
            let candle = candle?;
            if self
                .resume_after
                .is_some_and(|last| candle.open_time <= last)
            {
                report.already_applied += 1;
                continue;
            }
            if self.speed > 0.0 {
                let (start, t0) = *origin.get_or_insert((Instant::now(), candle.open_time));
                let due = start
                    + Duration::from_secs_f64(
                        (candle.open_time - t0).max(0) as f64 / 1000.0 / self.speed,
                    );
                if sleep_until(due, stop) {
                    report.stopped = true;
                    return Ok(report);
                }
            } else if stop.load(Ordering::Relaxed) {
                report.stopped = true;
                router.route_batch(batch)?;
                return Ok(report);
            }
            batch.push(CandleEvent {
                stream: self.stream,
                candle,
                ingest_ns: clock.now_ns(),
            });
            report.routed += 1;
            if batch.len() == chunk {
                router.route_batch(std::mem::replace(&mut batch, Vec::with_capacity(chunk)))?;
            }
        }
        router.route_batch(batch)?;
        Ok(report)
    }
}

/// Candles per hand-off in an unpaced replay.
const BATCH: usize = 256;

/// Sleeps until `due` in slices of at most 50 ms; true when `stop` turned
/// true meanwhile.
fn sleep_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        let now = Instant::now();
        if now >= due {
            return false;
        }
        std::thread::sleep((due - now).min(Duration::from_millis(50)));
    }
}
