//! Run a strategy on the build machine, without WebAssembly, in unit tests.
//!
//! [`Harness`] builds the strategy from the manifest's defaults (plus any
//! overrides), then feeds it bars one at a time through the same record
//! layout the host uses, so what passes here behaves the same in the engine.
//!
//! ```
//! use candlewick_sdk::manifest::{Manifest, ParamKind, ParamSpec};
//! use candlewick_sdk::testing::{Harness, TestBar};
//! use candlewick_sdk::{Bar, InitError, Params, Signal, Strategy};
//!
//! struct Above { level: f64 }
//! impl Strategy for Above {
//!     fn init(p: &Params<'_>) -> Result<Self, InitError> {
//!         Ok(Above { level: p.float("level")? })
//!     }
//!     fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
//!         (bar.close() > self.level).then(|| Signal::buy(1.0))
//!     }
//! }
//! const M: Manifest = Manifest {
//!     name: "above", version: "0.1.0", description: "",
//!     params: &[ParamSpec { name: "level", kind: ParamKind::Float, default: "100.0",
//!                           min: "", max: "", doc: "" }],
//!     indicators: &[], models: &[],
//! };
//!
//! let mut h = Harness::<Above>::new(&M, &[("level", 50.0)], 0).unwrap();
//! assert!(h.bar(&TestBar::close(0, 60.0), &[]).is_some());
//! assert!(h.bar(&TestBar::close(1, 40.0), &[]).is_none());
//! ```

use alloc::vec::Vec;

use crate::manifest::Manifest;
use crate::params::parse_default;
use crate::{abi, Bars, InitError, Params, RestoreError, Signal, Signals, Strategy};

/// A candle for a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestBar {
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl TestBar {
    /// A flat candle at `close` (open = high = low = close, volume 1).
    pub fn close(time: i64, close: f64) -> Self {
        TestBar {
            time,
            open: close,
            high: close,
            low: close,
            close,
            volume: 1.0,
        }
    }
}

/// One strategy instance fed by hand.
#[allow(missing_debug_implementations)]
pub struct Harness<S> {
    strategy: S,
    n_values: usize,
    models_at: usize,
    record: Vec<u64>,
}

impl<S: Strategy> Harness<S> {
    /// Builds the strategy with the manifest's defaults, `overrides` applied,
    /// for bars carrying `n_values` values (indicator columns, then the
    /// manifest's model outputs).
    ///
    /// # Errors
    /// An unknown override name, an unparsable default, or the strategy's own
    /// [`InitError`].
    pub fn new(
        manifest: &'static Manifest,
        overrides: &[(&str, f64)],
        n_values: usize,
    ) -> Result<Self, InitError> {
        let mut values = Vec::with_capacity(manifest.params.len());
        for p in manifest.params {
            values.push(
                parse_default(p.kind, p.default)
                    .ok_or_else(|| InitError::new("unparsable default"))?,
            );
        }
        for (name, v) in overrides {
            let i = manifest
                .param_index(name)
                .ok_or_else(|| InitError::new("override names no parameter"))?;
            values[i] = *v;
        }
        let strategy = S::init(&Params::new(manifest, &values))?;
        let models_at = n_values.saturating_sub(manifest.models.len());
        Ok(Harness {
            strategy,
            n_values,
            models_at,
            record: Vec::new(),
        })
    }

    /// Feeds one bar with its values (NaN for "not ready"); returns the
    /// strategy's signal for it.
    ///
    /// # Panics
    /// If `values.len()` differs from the `n_values` given to [`Harness::new`].
    pub fn bar(&mut self, bar: &TestBar, values: &[f64]) -> Option<Signal> {
        assert_eq!(
            values.len(),
            self.n_values,
            "wrong number of values for this harness"
        );
        self.record.clear();
        self.record.push(bar.time as u64);
        for v in [bar.open, bar.high, bar.low, bar.close, bar.volume]
            .into_iter()
            .chain(values.iter().copied())
        {
            self.record.push(v.to_bits());
        }
        let stride = abi::bar_stride(self.n_values) / 8;
        let bars = Bars::new(&self.record, stride, self.models_at);
        let mut out = [abi::SignalRecord::default(); 1];
        let mut sink = Signals::new(&mut out);
        self.strategy.on_batch(&bars, &mut sink);
        if sink.is_empty() {
            return None;
        }
        let r = out[0];
        Some(Signal {
            action: abi::Action::from_u32(r.action)?,
            strength: r.strength,
            stop_loss: (!r.stop_loss.is_nan()).then_some(r.stop_loss),
            take_profit: (!r.take_profit.is_nan()).then_some(r.take_profit),
            tag: r.tag,
        })
    }

    /// The strategy's snapshot, as the host would take it.
    pub fn snapshot(&self) -> Option<Vec<u8>> {
        self.strategy.snapshot()
    }

    /// Restores a snapshot into this instance.
    ///
    /// # Errors
    /// The strategy's [`RestoreError`].
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        self.strategy.restore(bytes)
    }

    /// The strategy itself, to inspect its state.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }
}
