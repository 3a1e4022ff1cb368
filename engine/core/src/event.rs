//! What travels from a source to a worker.

use std::time::Instant;

use candlewick_market::Candle;

use crate::StreamId;

/// A monotonic clock shared by the sources and the workers of one engine,
/// so that "ingest -> emit" is measured on one time base.
///
/// Cheap to copy; readings are nanoseconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since this clock was made.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// One closed candle of one stream, as routed to a worker.
///
/// Plain data and `Copy` (64 bytes): the queues hold events by value, so
/// routing one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CandleEvent {
    pub stream: StreamId,
    pub candle: Candle,
    /// [`Clock::now_ns`] when the source received the candle's frame.
    pub ingest_ns: u64,
}
