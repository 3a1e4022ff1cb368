//! What a strategy says about a bar.

use crate::abi::{Action, SignalRecord};

/// A trading signal. Build one with [`Signal::buy`], [`Signal::sell`],
/// [`Signal::exit`] or [`Signal::hold`], then add stops or a tag.
///
/// The host checks every signal: `strength` must be finite and within
/// `[-1, 1]`, stops must be finite and positive. A strategy whose output
/// breaks these rules is quarantined, so clamp your own numbers.
///
/// ```
/// use candlewick_sdk::{Action, Signal};
/// let s = Signal::buy(0.5).with_stop_loss(95.0).with_tag(7);
/// assert_eq!(s.action, Action::Buy);
/// assert_eq!(s.stop_loss, Some(95.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    pub action: Action,
    /// Conviction in `[-1, 1]`.
    pub strength: f64,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    /// Free for the strategy (e.g. a reason code); passed through to sinks.
    pub tag: u32,
}

impl Signal {
    /// A signal with `action` and `strength` and nothing else.
    pub const fn new(action: Action, strength: f64) -> Self {
        Signal {
            action,
            strength,
            stop_loss: None,
            take_profit: None,
            tag: 0,
        }
    }

    pub const fn buy(strength: f64) -> Self {
        Self::new(Action::Buy, strength)
    }

    pub const fn sell(strength: f64) -> Self {
        Self::new(Action::Sell, strength)
    }

    pub const fn exit() -> Self {
        Self::new(Action::Exit, 0.0)
    }

    pub const fn hold() -> Self {
        Self::new(Action::Hold, 0.0)
    }

    pub const fn with_stop_loss(mut self, price: f64) -> Self {
        self.stop_loss = Some(price);
        self
    }

    pub const fn with_take_profit(mut self, price: f64) -> Self {
        self.take_profit = Some(price);
        self
    }

    pub const fn with_tag(mut self, tag: u32) -> Self {
        self.tag = tag;
        self
    }

    /// The ABI record for bar `bar` of the batch.
    pub fn to_record(&self, bar: u32) -> SignalRecord {
        SignalRecord {
            bar,
            action: self.action as u32,
            strength: self.strength,
            stop_loss: self.stop_loss.unwrap_or(f64::NAN),
            take_profit: self.take_profit.unwrap_or(f64::NAN),
            tag: self.tag,
            reserved: 0,
        }
    }
}

/// Where [`Strategy::on_batch`](crate::Strategy::on_batch) writes its signals.
///
/// At most one signal per bar, in bar order: [`Signals::push`] refuses
/// anything else, so the output always passes the host's ordering check.
#[derive(Debug)]
pub struct Signals<'a> {
    out: &'a mut [SignalRecord],
    len: usize,
    /// Bar index of the last signal pushed, plus one (0 before the first).
    next_bar: usize,
}

impl<'a> Signals<'a> {
    pub(crate) fn new(out: &'a mut [SignalRecord]) -> Self {
        Signals {
            out,
            len: 0,
            next_bar: 0,
        }
    }

    /// Records `signal` for bar `bar`. Returns `false`, and records nothing,
    /// when `bar` is not after the previous signal's bar or the buffer is full.
    pub fn push(&mut self, bar: usize, signal: Signal) -> bool {
        if bar < self.next_bar || self.len >= self.out.len() {
            return false;
        }
        let Ok(bar32) = u32::try_from(bar) else {
            return false;
        };
        self.out[self.len] = signal.to_record(bar32);
        self.len += 1;
        self.next_bar = bar + 1;
        true
    }

    /// Signals recorded so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
