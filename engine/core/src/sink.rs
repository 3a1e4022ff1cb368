//! Where signals go: the feed live, the simulated broker in a backtest.

use std::sync::Mutex;

use candlewick_market::Candle;

use crate::{PluginHealth, PluginStats, Prediction, Signal, StreamKey};

/// A destination for a worker's output.
///
/// Called by worker threads after each batch is committed, so it must not
/// block: a sink that can fall behind (a network client) keeps its own
/// bounded queue and drops on its side, never slowing the worker.
pub trait Sink: Send + Sync {
    /// One signal, after its batch was committed.
    fn signal(&self, signal: Signal);

    /// Whether [`Sink::candle`] should be called (it costs a call per
    /// applied candle).
    fn wants_candles(&self) -> bool {
        false
    }

    /// One applied candle, after its batch was committed.
    fn candle(&self, _stream: &StreamKey, _candle: &Candle) {}

    /// Whether [`Sink::prediction`] should be called (a call per model per
    /// applied candle).
    fn wants_predictions(&self) -> bool {
        false
    }

    /// One model's prediction for an applied candle (its open time), after
    /// its batch was committed. Candles without a prediction (warm-up) get
    /// no call.
    fn prediction(&self, _stream: &StreamKey, _model: &str, _time: i64, _p: &Prediction) {}

    /// A batch's applied candles of one stream, in order: one
    /// [`Sink::candle`] call each unless a sink takes them at once (and
    /// looks the stream up once).
    fn candles(&self, stream: &StreamKey, candles: &mut dyn Iterator<Item = &Candle>) {
        for candle in candles {
            self.candle(stream, candle);
        }
    }

    /// A strategy's runner on one stream, after a batch it ran in: its
    /// fault and reload counters and whether it is quarantined now (the
    /// dashboard's strategy table). Called only for runners that have
    /// faulted or been reloaded at least once, so a healthy engine pays
    /// one branch per runner per batch.
    fn strategy_health(
        &self,
        _stream: &StreamKey,
        _strategy: &str,
        _stats: &PluginStats,
        _health: &PluginHealth,
    ) {
    }
}

/// Discards everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn signal(&self, _signal: Signal) {}
}

/// Keeps every signal, for tests and backtests.
#[derive(Debug, Default)]
pub struct VecSink(pub Mutex<Vec<Signal>>);

impl VecSink {
    /// The signals so far, in emission order.
    pub fn take(&self) -> Vec<Signal> {
        match self.0.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Sink for VecSink {
    fn signal(&self, signal: Signal) {
        match self.0.lock() {
            Ok(mut v) => v.push(signal),
            Err(poisoned) => poisoned.into_inner().push(signal),
        }
    }
}
