//! The one trait a strategy author implements.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use crate::{Bar, Bars, Params, Signal, Signals};

/// A trading strategy: state that sees closed bars in time order and
/// sometimes says buy, sell or exit.
///
/// The engine runs one instance per plugin per symbol stream, so `self` is
/// that stream's state; no statics, no locking. Bars arrive oldest first,
/// each exactly once, in batches of one or more ([`Strategy::on_batch`]).
///
/// Only [`Strategy::init`] and [`Strategy::on_bar`] are required. Override
/// [`Strategy::snapshot`] and [`Strategy::restore`] to keep your state across
/// a quarantine restart or a hot reload (otherwise the strategy starts fresh
/// and warms up again).
///
/// ```
/// use candlewick_sdk::{Bar, InitError, Params, Signal, Strategy};
///
/// /// Buys every bar that closes above its open.
/// struct Bullish;
///
/// impl Strategy for Bullish {
///     fn init(_params: &Params<'_>) -> Result<Self, InitError> {
///         Ok(Bullish)
///     }
///     fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal> {
///         (bar.close() > bar.open()).then(|| Signal::buy(1.0))
///     }
/// }
/// ```
pub trait Strategy: Sized + 'static {
    /// Bars the input buffer holds; batches larger than this are split by
    /// the host. Memory cost: `BATCH_CAPACITY * (48 + 8 * n_values)` bytes
    /// in every instance, and an engine runs one instance per stream and
    /// strategy: at 32 the example strategies' whole heap fits in the page
    /// after their data (three 4 KiB pages an instance in all; 64 took a
    /// fourth, about 120 MB at 30,000 instances), and a backtest's speed
    /// did not change measurably (`benches/README.md`).
    const BATCH_CAPACITY: usize = 32;

    /// Builds the strategy from its checked parameters.
    ///
    /// # Errors
    /// An [`InitError`] refuses the parameters; the host reports its message
    /// and does not run the plugin.
    fn init(params: &Params<'_>) -> Result<Self, InitError>;

    /// Looks at one closed bar; returns at most one signal for it.
    fn on_bar(&mut self, bar: &Bar<'_>) -> Option<Signal>;

    /// Looks at a batch of bars. The default calls [`Strategy::on_bar`] for
    /// each; override it to vectorise.
    fn on_batch(&mut self, bars: &Bars<'_>, out: &mut Signals<'_>) {
        for bar in bars.iter() {
            if let Some(signal) = self.on_bar(&bar) {
                out.push(bar.index(), signal);
            }
        }
    }

    /// The state to carry across a restart, or `None` (the default) when the
    /// strategy keeps none worth carrying.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Replaces this freshly initialised strategy's state with a snapshot
    /// (possibly from an older version of the plugin).
    ///
    /// # Errors
    /// A [`RestoreError`] rejects the snapshot; the host then goes on with
    /// the fresh state. The default rejects every snapshot.
    fn restore(&mut self, bytes: &[u8]) -> Result<(), RestoreError> {
        let _ = bytes;
        Err(RestoreError::Unsupported)
    }
}

/// A strategy refused its parameters; the message reaches the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    message: Cow<'static, str>,
}

impl InitError {
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        InitError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a snapshot was not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// The strategy does not restore snapshots.
    Unsupported,
    /// The bytes are not a snapshot this version understands.
    Incompatible,
}
