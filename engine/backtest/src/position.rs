//! The one open position a broker may hold.

use crate::trade::Side;

/// An open position. Invariant: `units > 0` and every price is finite and > 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub side: Side,
    /// Units held, always positive; the side gives the sign.
    pub units: f64,
    pub entry_price: f64,
    pub entry_bar: usize,
    pub entry_time: i64,
    /// Fee paid at entry (already taken from cash).
    pub entry_fee: f64,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
}

impl Position {
    /// Profit or loss if closed at `price`, before the exit fee. Written as
    /// backtesting.py writes it (`price * size - size * entry`) so that the
    /// equity curves agree to the last bit.
    pub fn unrealized(&self, price: f64) -> f64 {
        let size = self.side.sign() * self.units;
        price * size - size * self.entry_price
    }

    /// The stop or target this bar touches, if any, as `(price, is_stop)`.
    ///
    /// Rules, for a long (a short mirrors them):
    /// - the open at or below the stop: filled at the open (a gap through
    ///   the stop fills at the first price there is, not at the stop);
    /// - the open at or above the target: filled at the open;
    /// - else the low reaching the stop fills at the stop, and the high
    ///   reaching the target fills at the target. When both are inside the
    ///   bar's range we cannot know which came first, and assume the stop:
    ///   the worse outcome for the trader.
    pub fn touched(&self, open: f64, high: f64, low: f64) -> Option<(f64, bool)> {
        let (sl, tp) = (self.stop_loss, self.take_profit);
        match self.side {
            Side::Long => {
                if sl.is_some_and(|sl| open <= sl) {
                    return Some((open, true));
                }
                if tp.is_some_and(|tp| open >= tp) {
                    return Some((open, false));
                }
                if let Some(sl) = sl.filter(|&sl| low <= sl) {
                    return Some((sl, true));
                }
                tp.filter(|&tp| high >= tp).map(|tp| (tp, false))
            }
            Side::Short => {
                if sl.is_some_and(|sl| open >= sl) {
                    return Some((open, true));
                }
                if tp.is_some_and(|tp| open <= tp) {
                    return Some((open, false));
                }
                if let Some(sl) = sl.filter(|&sl| high >= sl) {
                    return Some((sl, true));
                }
                tp.filter(|&tp| low <= tp).map(|tp| (tp, false))
            }
        }
    }
}
