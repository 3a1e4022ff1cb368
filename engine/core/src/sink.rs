//! Where signals go: the feed live, the simulated broker in a backtest.

use std::sync::Mutex;

use candlewick_market::Candle;

use crate::{PluginHealth, PluginStats, Prediction, Signal, StreamKey};

/// A destination for a worker's output.
///
/// Called by worker threads after each batch, and in latency mode by a
/// source's thread (often a tokio runtime's, see
/// [`crate::InlineShard`]), so it must not block: a sink that can fall
/// behind (a network client) keeps its own bounded queue and drops on its
/// side, never slowing the worker. One that must wait instead (a delivery
/// guarantee) waits inside `tokio::task::block_in_place`.
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

/// Every sink behind an `Arc` (the engine's sink is an `Arc<dyn Sink>`).
impl<S: Sink + ?Sized> Sink for std::sync::Arc<S> {
    fn signal(&self, signal: Signal) {
        (**self).signal(signal);
    }
    fn wants_candles(&self) -> bool {
        (**self).wants_candles()
    }
    fn candle(&self, stream: &StreamKey, candle: &Candle) {
        (**self).candle(stream, candle);
    }
    fn wants_predictions(&self) -> bool {
        (**self).wants_predictions()
    }
    fn prediction(&self, stream: &StreamKey, model: &str, time: i64, p: &Prediction) {
        (**self).prediction(stream, model, time, p);
    }
    fn candles(&self, stream: &StreamKey, candles: &mut dyn Iterator<Item = &Candle>) {
        (**self).candles(stream, candles);
    }
    fn strategy_health(
        &self,
        stream: &StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        (**self).strategy_health(stream, strategy, stats, health);
    }
}

/// What rides beside the engine's sink (notifications, the analyst's
/// triggers, the cluster's SIGNALS publisher): it is told of each signal
/// *after* the sink it taps has it, so the feed never waits on it, and of
/// the predictions and strategies' health it asks for. Like a sink, it
/// must not block.
pub trait SinkTap: Send + Sync {
    /// Whether [`SinkTap::signal`] should be called (it costs a copy of
    /// each signal).
    fn wants_signals(&self) -> bool {
        true
    }

    /// A signal the tapped sink has just been handed.
    fn signal(&self, signal: Signal);

    /// Whether [`SinkTap::prediction`] should be called.
    fn wants_predictions(&self) -> bool {
        false
    }

    /// As [`Sink::prediction`].
    fn prediction(&self, _stream: &StreamKey, _model: &str, _time: i64, _p: &Prediction) {}

    /// As [`Sink::strategy_health`].
    fn strategy_health(
        &self,
        _stream: &StreamKey,
        _strategy: &str,
        _stats: &PluginStats,
        _health: &PluginHealth,
    ) {
    }
}

/// A sink with a tap on the side: `inner` gets every call as if it were
/// alone, then `tap` sees what it asked for. Candles pass through.
#[derive(Debug)]
pub struct Tapped<S, T> {
    pub inner: S,
    pub tap: T,
}

impl<S, T> Tapped<S, T> {
    pub fn new(inner: S, tap: T) -> Self {
        Tapped { inner, tap }
    }
}

impl<S: Sink, T: SinkTap> Sink for Tapped<S, T> {
    fn signal(&self, signal: Signal) {
        if !self.tap.wants_signals() {
            return self.inner.signal(signal);
        }
        let copy = signal.clone();
        self.inner.signal(signal);
        self.tap.signal(copy);
    }
    fn wants_candles(&self) -> bool {
        self.inner.wants_candles()
    }
    fn candle(&self, stream: &StreamKey, candle: &Candle) {
        self.inner.candle(stream, candle);
    }
    fn candles(&self, stream: &StreamKey, candles: &mut dyn Iterator<Item = &Candle>) {
        self.inner.candles(stream, candles);
    }
    fn wants_predictions(&self) -> bool {
        self.inner.wants_predictions() || self.tap.wants_predictions()
    }
    fn prediction(&self, stream: &StreamKey, model: &str, time: i64, p: &Prediction) {
        if self.inner.wants_predictions() {
            self.inner.prediction(stream, model, time, p);
        }
        if self.tap.wants_predictions() {
            self.tap.prediction(stream, model, time, p);
        }
    }
    fn strategy_health(
        &self,
        stream: &StreamKey,
        strategy: &str,
        stats: &PluginStats,
        health: &PluginHealth,
    ) {
        self.inner.strategy_health(stream, strategy, stats, health);
        self.tap.strategy_health(stream, strategy, stats, health);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Action;

    fn signal(time: i64) -> Signal {
        let eurusd = candlewick_market::Symbol::new("EURUSD").unwrap();
        Signal::decided(
            "s".into(),
            eurusd,
            "1h".parse().unwrap(),
            time,
            (Action::Buy, 1.0),
            1.0,
        )
    }

    /// Notes, for each signal it is told of, how many the tapped sink held.
    struct Probe {
        tapped: Arc<VecSink>,
        seen: Mutex<Vec<(i64, usize)>>,
    }

    impl SinkTap for Probe {
        fn signal(&self, signal: Signal) {
            let held = self.tapped.0.lock().unwrap().len();
            self.seen.lock().unwrap().push((signal.time, held));
        }
    }

    #[test]
    fn the_tapped_sink_has_each_signal_before_the_tap_is_told() {
        let inner = Arc::new(VecSink::default());
        let sink = Tapped::new(
            inner.clone(),
            Probe {
                tapped: inner.clone(),
                seen: Mutex::default(),
            },
        );
        sink.signal(signal(0));
        sink.signal(signal(3_600_000));
        assert_eq!(*sink.tap.seen.lock().unwrap(), [(0, 1), (3_600_000, 2)]);
        assert_eq!(inner.take().len(), 2);
        // Neither asked for predictions: none is asked of them.
        assert!(!sink.wants_predictions());
    }

    /// Wants nothing: is told nothing.
    struct Deaf;

    impl SinkTap for Deaf {
        fn wants_signals(&self) -> bool {
            false
        }
        fn signal(&self, _: Signal) {
            panic!("told of a signal it did not want");
        }
    }

    #[test]
    fn a_tap_that_wants_no_signals_is_not_told_and_the_sink_still_is() {
        let inner = Arc::new(VecSink::default());
        let sink = Tapped::new(inner.clone(), Deaf);
        sink.signal(signal(0));
        assert_eq!(inner.take().len(), 1);
    }
}
