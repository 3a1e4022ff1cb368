//! How the simulated broker fills orders and charges for them.

use crate::error::ConfigError;

/// backtesting.py's default order size, `1 - sys.float_info.epsilon` of the
/// available margin (0.6.x; versions before 0.4 used 0.9999). A signal of
/// strength 1 asks for this fraction of equity.
pub const FULL_EQUITY: f64 = 1.0 - f64::EPSILON;

/// What happens to a position still open after the last bar.
///
/// There is no next bar to fill a market order at, so either choice is a
/// convention; the trade is flagged [`ExitReason::EndOfData`] either way
/// and the report says which was used.
///
/// [`ExitReason::EndOfData`]: crate::ExitReason::EndOfData
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOfData {
    /// Closed at the last bar's close, with slippage and the fee charged:
    /// the final equity is what liquidating at the last known price costs.
    #[default]
    CloseAtLastClose,
    /// Closed at the last bar's *open*, as backtesting.py's
    /// `finalize_trades=True` does (it re-runs its broker on the last bar).
    /// Only for comparisons with backtesting.py.
    CloseAtLastOpen,
}

/// Settings of a [`Broker`](crate::Broker). Build with [`BrokerConfig::new`]
/// and the `with_*` setters, then [`validate`](BrokerConfig::validate).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BrokerConfig {
    /// Starting cash. Default 10 000.
    pub cash: f64,
    /// Fee per fill, in basis points of the filled notional. Default 10.
    pub fee_bps: f64,
    /// Adverse price move applied to every market and stop fill, in basis
    /// points: buys fill higher, sells lower. Take-profit (limit) fills get
    /// none. Default 0.
    pub slippage_bps: f64,
    /// Units are rounded down to a multiple of this; `None` trades
    /// fractional units. `Some(1.0)` is backtesting.py's whole units.
    pub lot_size: Option<f64>,
    /// The fraction of equity a signal of strength ±1 commits. Default
    /// [`FULL_EQUITY`].
    pub max_fraction: f64,
    /// Default [`EndOfData::CloseAtLastClose`].
    pub end_of_data: EndOfData,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerConfig {
    pub const DEFAULT_CASH: f64 = 10_000.0;
    pub const DEFAULT_FEE_BPS: f64 = 10.0;

    pub fn new() -> Self {
        BrokerConfig {
            cash: Self::DEFAULT_CASH,
            fee_bps: Self::DEFAULT_FEE_BPS,
            slippage_bps: 0.0,
            lot_size: None,
            max_fraction: FULL_EQUITY,
            end_of_data: EndOfData::default(),
        }
    }

    pub fn with_cash(mut self, cash: f64) -> Self {
        self.cash = cash;
        self
    }

    pub fn with_fee_bps(mut self, bps: f64) -> Self {
        self.fee_bps = bps;
        self
    }

    pub fn with_slippage_bps(mut self, bps: f64) -> Self {
        self.slippage_bps = bps;
        self
    }

    pub fn with_lot_size(mut self, lot: Option<f64>) -> Self {
        self.lot_size = lot;
        self
    }

    pub fn with_end_of_data(mut self, end: EndOfData) -> Self {
        self.end_of_data = end;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first field out of range, as a [`ConfigError`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.cash.is_finite() && self.cash > 0.0) {
            return Err(ConfigError::Cash(self.cash));
        }
        for (name, value) in [("fee", self.fee_bps), ("slippage", self.slippage_bps)] {
            if !(value.is_finite() && (0.0..1000.0).contains(&value)) {
                return Err(ConfigError::Bps { name, value });
            }
        }
        if let Some(lot) = self.lot_size {
            if !(lot.is_finite() && lot > 0.0) {
                return Err(ConfigError::LotSize(lot));
            }
        }
        if !(self.max_fraction > 0.0 && self.max_fraction <= 1.0) {
            return Err(ConfigError::MaxFraction(self.max_fraction));
        }
        Ok(())
    }

    /// The fee as a fraction of notional (`10 bps` is `0.001` exactly).
    pub fn fee_rate(&self) -> f64 {
        self.fee_bps / 10_000.0
    }

    /// The slippage as a fraction of price.
    pub fn slippage_rate(&self) -> f64 {
        self.slippage_bps / 10_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_bps_is_exactly_backtesting_py_commission() {
        assert_eq!(BrokerConfig::new().fee_rate(), 0.001);
    }

    #[test]
    fn refuses_nonsense() {
        assert!(BrokerConfig::new().validate().is_ok());
        assert_eq!(
            BrokerConfig::new().with_cash(0.0).validate(),
            Err(ConfigError::Cash(0.0))
        );
        assert!(BrokerConfig::new().with_fee_bps(-1.0).validate().is_err());
        assert!(BrokerConfig::new()
            .with_slippage_bps(f64::NAN)
            .validate()
            .is_err());
        assert_eq!(
            BrokerConfig::new().with_lot_size(Some(0.0)).validate(),
            Err(ConfigError::LotSize(0.0))
        );
    }
}
