//! A closed round trip, with the numbers backtesting.py reports for it.

use serde::Serialize;

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// +1 for long, -1 for short.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }
}

/// Why a position was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// An opposite or exit signal, filled at the next bar's open.
    Signal,
    /// The stop-loss was touched (or gapped through: filled at the open).
    StopLoss,
    /// The take-profit was touched (or gapped through: filled at the open).
    TakeProfit,
    /// Still open after the last bar; closed by the
    /// [`EndOfData`](crate::EndOfData) convention.
    EndOfData,
    /// Equity reached zero; the account was liquidated at the close.
    Liquidated,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Signal => "signal",
            ExitReason::StopLoss => "stop_loss",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::EndOfData => "end_of_data",
            ExitReason::Liquidated => "liquidated",
        }
    }
}

/// One closed trade. Bars are 0-based indices into the input series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trade {
    pub side: Side,
    /// Units, signed as backtesting.py signs them: positive long, negative short.
    pub size: f64,
    pub entry_bar: usize,
    pub exit_bar: usize,
    pub entry_time: i64,
    pub exit_time: i64,
    /// Fill prices, slippage included.
    pub entry_price: f64,
    pub exit_price: f64,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    /// `size * (exit - entry) - fees`.
    pub pnl: f64,
    /// Entry fee plus exit fee.
    pub fees: f64,
    /// As a fraction: `sign * (exit / entry - 1) - fees / (|size| * entry)`.
    pub return_frac: f64,
    pub exit_reason: ExitReason,
}

impl Trade {
    /// Closes a position's numbers the way backtesting.py does, operation
    /// for operation, so that the floating-point results agree exactly.
    pub(crate) fn close(open: &crate::position::Position, exit: Exit) -> Trade {
        let size = open.side.sign() * open.units;
        let fees = exit.fee + open.entry_fee;
        let gross_frac = open.side.sign() * (exit.price / open.entry_price - 1.0);
        Trade {
            side: open.side,
            size,
            entry_bar: open.entry_bar,
            exit_bar: exit.bar,
            entry_time: open.entry_time,
            exit_time: exit.time,
            entry_price: open.entry_price,
            exit_price: exit.price,
            stop_loss: open.stop_loss,
            take_profit: open.take_profit,
            pnl: size * (exit.price - open.entry_price) - fees,
            fees,
            return_frac: gross_frac - fees / (open.units * open.entry_price),
            exit_reason: exit.reason,
        }
    }

    /// Duration in milliseconds, exit time minus entry time.
    pub fn duration_ms(&self) -> i64 {
        self.exit_time - self.entry_time
    }

    /// For tests of what is computed from bars held: `size` units (signed)
    /// from `entry_bar` to `exit_bar`, at a price of 1, no fees.
    #[cfg(test)]
    pub(crate) fn held(size: f64, entry_bar: usize, exit_bar: usize) -> Trade {
        Trade {
            side: if size < 0.0 { Side::Short } else { Side::Long },
            size,
            entry_bar,
            exit_bar,
            entry_time: 0,
            exit_time: 0,
            entry_price: 1.0,
            exit_price: 1.0,
            stop_loss: None,
            take_profit: None,
            pnl: 0.0,
            fees: 0.0,
            return_frac: 0.0,
            exit_reason: ExitReason::Signal,
        }
    }
}

/// Where and why a position is being closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub bar: usize,
    pub time: i64,
    pub price: f64,
    pub fee: f64,
    pub reason: ExitReason,
}
