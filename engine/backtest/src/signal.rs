//! What a strategy asks the broker for, checked.

use candlewick_sdk::abi::{Action, SignalRecord};

use crate::error::SignalError;

/// One validated signal for one bar.
///
/// The broker acts on it at the *next* bar's open (see the crate docs).
/// `strength` sizes a new position: `|strength| * max_fraction` of equity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Signal {
    pub action: Action,
    /// In `[-1, 1]`; only its magnitude is used for sizing.
    pub strength: f64,
    /// Absolute stop-loss price for the position this signal opens.
    pub stop_loss: Option<f64>,
    /// Absolute take-profit price for the position this signal opens.
    pub take_profit: Option<f64>,
}

impl Signal {
    /// A full-size buy with no stop or target.
    pub fn buy() -> Self {
        Self::new(Action::Buy)
    }

    /// A full-size sell (short) with no stop or target.
    pub fn sell() -> Self {
        Self::new(Action::Sell)
    }

    /// Close whatever is open.
    pub fn exit() -> Self {
        Self::new(Action::Exit)
    }

    fn new(action: Action) -> Self {
        Signal {
            action,
            strength: 1.0,
            stop_loss: None,
            take_profit: None,
        }
    }

    pub fn with_strength(mut self, strength: f64) -> Self {
        self.strength = strength;
        self
    }

    pub fn with_stop_loss(mut self, price: f64) -> Self {
        self.stop_loss = Some(price);
        self
    }

    pub fn with_take_profit(mut self, price: f64) -> Self {
        self.take_profit = Some(price);
        self
    }

    /// Checks a signal built by hand (records are checked by
    /// [`Signal::from_record`]).
    ///
    /// # Errors
    /// The first bad field.
    pub fn validate(&self) -> Result<(), SignalError> {
        if !(self.strength.is_finite() && (-1.0..=1.0).contains(&self.strength)) {
            return Err(SignalError::Strength(self.strength));
        }
        check_price("stop_loss", self.stop_loss.unwrap_or(f64::NAN))?;
        check_price("take_profit", self.take_profit.unwrap_or(f64::NAN))
    }

    /// Reads and checks a record as a plugin wrote it (ABI v1).
    ///
    /// # Errors
    /// An unknown action, a strength outside `[-1, 1]`, or a price that is
    /// neither NaN nor finite and positive.
    pub fn from_record(r: &SignalRecord) -> Result<Self, SignalError> {
        let action = Action::from_u32(r.action).ok_or(SignalError::UnknownAction(r.action))?;
        check_price("stop_loss", r.stop_loss)?;
        check_price("take_profit", r.take_profit)?;
        let s = Signal {
            action,
            strength: r.strength,
            stop_loss: (!r.stop_loss.is_nan()).then_some(r.stop_loss),
            take_profit: (!r.take_profit.is_nan()).then_some(r.take_profit),
        };
        s.validate()?;
        Ok(s)
    }
}

fn check_price(field: &'static str, value: f64) -> Result<(), SignalError> {
    if value.is_nan() || (value.is_finite() && value > 0.0) {
        Ok(())
    } else {
        Err(SignalError::Price { field, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_record_and_nan_means_none() {
        let r = SignalRecord {
            bar: 0,
            action: Action::Sell as u32,
            strength: -0.5,
            stop_loss: 1.2,
            take_profit: f64::NAN,
            tag: 0,
            reserved: 0,
        };
        let s = Signal::from_record(&r).unwrap();
        assert_eq!(s.action, Action::Sell);
        assert_eq!(s.stop_loss, Some(1.2));
        assert_eq!(s.take_profit, None);
    }

    #[test]
    fn refuses_bad_records() {
        let ok = SignalRecord {
            action: 1,
            strength: 1.0,
            stop_loss: f64::NAN,
            take_profit: f64::NAN,
            ..SignalRecord::default()
        };
        assert!(Signal::from_record(&ok).is_ok());
        let bad_action = SignalRecord { action: 9, ..ok };
        assert_eq!(
            Signal::from_record(&bad_action),
            Err(SignalError::UnknownAction(9))
        );
        let bad_strength = SignalRecord {
            strength: 1.5,
            ..ok
        };
        assert!(Signal::from_record(&bad_strength).is_err());
        let bad_stop = SignalRecord {
            stop_loss: -1.0,
            ..ok
        };
        assert!(Signal::from_record(&bad_stop).is_err());
    }
}
