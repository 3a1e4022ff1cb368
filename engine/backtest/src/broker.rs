//! The simulated broker: fills, fees, stops, and the account.
//!
//! # A bar's life
//!
//! For each bar `i`, [`Broker::on_bar`] does, in this order:
//!
//! 1. **Fill the pending order** (the signal of bar `i - 1`) at bar `i`'s
//!    open, moved against the trader by the slippage. A buy closes a short
//!    and opens a long; a sell closes a long and opens a short; an exit
//!    closes; a buy while long (a sell while short) keeps the position as it
//!    is: there is one net position, never a pyramid.
//! 2. **Stops and targets** of the open position (one just opened
//!    included: the open came first, the rest of the bar after it) against
//!    bar `i`'s open, high and low; see [`Position::touched`].
//! 3. **Mark** the account at bar `i`'s close: equity is cash plus the open
//!    position's unrealized profit. If equity is zero or less, the position
//!    is liquidated at the close, cash is set to zero and trading stops (as
//!    backtesting.py does): cash never goes negative.
//!
//! Then the strategy sees bar `i` and may [`submit`](Broker::submit) a
//! signal, which waits for bar `i + 1`. Nothing at bar `i` is ever filled at
//! bar `i`'s close: a signal computed from a close cannot trade at it.
//!
//! # Sizing
//!
//! A new position commits `|strength| * max_fraction` of equity, paying the
//! fee out of the same budget: `units = floor(budget / (price * (1 + fee)))`
//! rounded down to the lot size (none: fractional units). The division is
//! Python's float floor division, as in backtesting.py. A budget too small
//! for one lot opens nothing and counts as a [rejected
//! order](Broker::rejected_orders).
//!
//! # Accounting
//!
//! Cash is the account balance: starting cash, minus every fee, plus every
//! closed trade's gross profit. A short is a margin position with margin 1,
//! as in backtesting.py: it adds its unrealized profit to equity.

use candlewick_market::Candle;
use candlewick_sdk::abi::Action;

use crate::config::{BrokerConfig, EndOfData};
use crate::equity::EquityCurve;
use crate::error::ConfigError;
use crate::position::Position;
use crate::signal::Signal;
use crate::trade::{Exit, ExitReason, Side, Trade};

/// The broker of one backtest over one symbol.
///
/// ```
/// use candlewick_backtest::{Broker, BrokerConfig, Signal};
/// use candlewick_market::Candle;
///
/// let bar = |t: i64, open: f64, close: f64| Candle {
///     open_time: t * 3_600_000, open, high: open.max(close), low: open.min(close), close, volume: 1.0,
/// };
/// let mut broker = Broker::new(BrokerConfig::new().with_fee_bps(0.0).with_lot_size(Some(1.0))).unwrap();
/// broker.on_bar(&bar(0, 10.0, 10.0));
/// broker.submit(Signal::buy());            // decided on bar 0's close ...
/// broker.on_bar(&bar(1, 11.0, 12.0));      // ... filled at bar 1's open
/// let result = broker.finish();
/// assert_eq!(result.trades[0].entry_price, 11.0);
/// assert_eq!(result.trades[0].size, 909.0); // floor(10 000 / 11)
/// ```
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    fee: f64,
    slippage: f64,
    /// Account balance. Invariant: `>= 0`.
    cash: f64,
    position: Option<Position>,
    /// The signal of the last bar, to fill at the next bar's open.
    pending: Option<Signal>,
    trades: Vec<Trade>,
    curve: EquityCurve,
    /// The last bar seen, for the end-of-data close.
    last: Option<Candle>,
    rejected: u64,
    /// Set once equity reached zero: nothing trades after.
    bankrupt: bool,
}

/// What a finished backtest produced.
#[derive(Debug, Clone)]
pub struct BrokerResult {
    pub trades: Vec<Trade>,
    pub curve: EquityCurve,
    /// Orders that could not open a position (budget below one lot).
    pub rejected_orders: u64,
    /// Whether the account was liquidated (equity reached zero).
    pub bankrupt: bool,
    pub config: BrokerConfig,
}

impl Broker {
    /// # Errors
    /// The config does not [validate](BrokerConfig::validate).
    pub fn new(config: BrokerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Broker {
            fee: config.fee_rate(),
            slippage: config.slippage_rate(),
            cash: config.cash,
            config,
            position: None,
            pending: None,
            trades: Vec::new(),
            curve: EquityCurve::default(),
            last: None,
            rejected: 0,
            bankrupt: false,
        })
    }

    /// Reserves room for `bars` points of the equity curve.
    pub fn reserve(&mut self, bars: usize) {
        self.curve.reserve(bars);
    }

    /// Account balance (see the module docs).
    pub fn cash(&self) -> f64 {
        self.cash
    }

    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }

    pub fn rejected_orders(&self) -> u64 {
        self.rejected
    }

    /// Processes one bar (fills, stops, mark) and returns the equity at its
    /// close. Bars must come in time order; the caller checks the series.
    #[inline]
    pub fn on_bar(&mut self, bar: &Candle) -> f64 {
        let index = self.curve.len();
        if let Some(signal) = self.pending.take() {
            self.execute(signal, index, bar);
        }
        self.check_stops(index, bar);
        let equity = self.mark(index, bar);
        self.curve.push(bar.open_time, bar.close, equity);
        self.last = Some(*bar);
        equity
    }

    /// Queues the signal decided on the bar just processed; it is acted on
    /// at the next bar's open. A later signal for the same bar replaces it.
    pub fn submit(&mut self, signal: Signal) {
        if !self.bankrupt && signal.action != Action::Hold {
            self.pending = Some(signal);
        }
    }

    /// Closes what is still open by the [`EndOfData`] convention, drops a
    /// signal of the last bar (there is no bar to fill it at), and returns
    /// the trades and the equity curve.
    pub fn finish(mut self) -> BrokerResult {
        self.pending = None;
        if let (Some(last), Some(_)) = (self.last, self.position.as_ref()) {
            let index = self.curve.len() - 1;
            let price = match self.config.end_of_data {
                EndOfData::CloseAtLastClose => last.close,
                EndOfData::CloseAtLastOpen => last.open,
            };
            self.close_position(index, last.open_time, price, ExitReason::EndOfData, true);
            self.curve.set_last_equity(self.cash);
        }
        BrokerResult {
            trades: self.trades,
            curve: self.curve,
            rejected_orders: self.rejected,
            bankrupt: self.bankrupt,
            config: self.config,
        }
    }

    fn execute(&mut self, signal: Signal, index: usize, bar: &Candle) {
        let want = match signal.action {
            Action::Buy => Some(Side::Long),
            Action::Sell => Some(Side::Short),
            Action::Exit => None,
            Action::Hold => return,
        };
        if let Some(open) = &self.position {
            if Some(open.side) == want {
                return;
            }
            self.close_position(index, bar.open_time, bar.open, ExitReason::Signal, true);
        }
        if let Some(side) = want {
            self.open_position(side, &signal, index, bar);
        }
    }

    /// The price a market or stop order fills at: moved against the trader.
    fn slipped(&self, price: f64, buying: bool) -> f64 {
        if buying {
            price * (1.0 + self.slippage)
        } else {
            price * (1.0 - self.slippage)
        }
    }

    fn open_position(&mut self, side: Side, signal: &Signal, index: usize, bar: &Candle) {
        let price = self.slipped(bar.open, side == Side::Long);
        let budget = self.cash * (signal.strength.abs() * self.config.max_fraction);
        let units = self.units_for(budget, price);
        if units <= 0.0 {
            self.rejected += 1;
            return;
        }
        let entry_fee = units * price * self.fee;
        self.cash -= entry_fee;
        self.position = Some(Position {
            side,
            units,
            entry_price: price,
            entry_bar: index,
            entry_time: bar.open_time,
            entry_fee,
            stop_loss: signal.stop_loss,
            take_profit: signal.take_profit,
        });
    }

    /// Units a budget buys at `price`, fee included, rounded down to the lot.
    fn units_for(&self, budget: f64, price: f64) -> f64 {
        let per_unit = price + price * self.fee;
        let units = match self.config.lot_size {
            Some(lot) => py_floor_div(budget, per_unit * lot) * lot,
            None => budget / per_unit,
        };
        if units.is_finite() && units > 0.0 {
            units
        } else {
            0.0
        }
    }

    fn check_stops(&mut self, index: usize, bar: &Candle) {
        let Some(open) = &self.position else { return };
        let Some((price, is_stop)) = open.touched(bar.open, bar.high, bar.low) else {
            return;
        };
        let reason = if is_stop {
            ExitReason::StopLoss
        } else {
            ExitReason::TakeProfit
        };
        // A stop becomes a market order (slipped); a target is a limit order.
        self.close_position(index, bar.open_time, price, reason, is_stop);
    }

    fn mark(&mut self, index: usize, bar: &Candle) -> f64 {
        if self.bankrupt {
            return 0.0;
        }
        let Some(open) = &self.position else {
            return self.cash;
        };
        let equity = self.cash + open.unrealized(bar.close);
        if equity > 0.0 {
            return equity;
        }
        self.close_position(
            index,
            bar.open_time,
            bar.close,
            ExitReason::Liquidated,
            true,
        );
        self.cash = 0.0;
        self.bankrupt = true;
        self.pending = None;
        0.0
    }

    fn close_position(
        &mut self,
        index: usize,
        time: i64,
        price: f64,
        reason: ExitReason,
        slip: bool,
    ) {
        let Some(open) = self.position.take() else {
            return;
        };
        let price = if slip {
            self.slipped(price, open.side == Side::Short)
        } else {
            price
        };
        let fee = open.units * price * self.fee;
        // backtesting.py: `cash += trade.pl - commission`, its `pl` being
        // `size * (price - entry)` before fees; the same operations in the
        // same order keep the two balances equal to the last bit.
        let gross = open.side.sign() * open.units * (price - open.entry_price);
        self.cash += gross - fee;
        self.cash = self.cash.max(0.0);
        let exit = Exit {
            bar: index,
            time,
            price,
            fee,
            reason,
        };
        self.trades.push(Trade::close(&open, exit));
    }
}

/// Python's `a // b` for floats (CPython's `float_floor_div`), so sizes agree
/// with backtesting.py even where `a / b` rounds up to a whole number.
pub fn py_floor_div(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0_f64.copysign(a / b);
    }
    let mut floor = div.floor();
    if div - floor > 0.5 {
        floor += 1.0;
    }
    floor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(t: i64, o: f64, h: f64, l: f64, c: f64) -> Candle {
        Candle {
            open_time: t * 60_000,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: 1.0,
        }
    }

    fn flat(t: i64, p: f64) -> Candle {
        bar(t, p, p, p, p)
    }

    fn broker(fee_bps: f64) -> Broker {
        Broker::new(
            BrokerConfig::new()
                .with_fee_bps(fee_bps)
                .with_lot_size(Some(1.0)),
        )
        .unwrap()
    }

    #[test]
    fn floor_div_matches_python() {
        assert_eq!(py_floor_div(7.0, 2.0), 3.0);
        assert_eq!(py_floor_div(-7.0, 2.0), -4.0);
        assert_eq!(py_floor_div(1.0, 0.1), 9.0); // Python: 1 // 0.1 == 9.0
        assert_eq!(1.0_f64 / 0.1, 10.0); // while the quotient rounds to 10
    }

    #[test]
    fn market_orders_fill_at_the_next_open_with_fees_both_ways() {
        let mut b = broker(10.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy());
        b.on_bar(&bar(1, 101.0, 103.0, 100.0, 102.0));
        let units = py_floor_div(10_000.0 * crate::FULL_EQUITY, 101.0 + 101.0 * 0.001);
        assert_eq!(b.position().unwrap().units, units);
        b.submit(Signal::exit());
        b.on_bar(&flat(2, 105.0));
        let r = b.finish();
        let t = &r.trades[0];
        assert_eq!((t.entry_bar, t.exit_bar), (1, 2));
        assert_eq!((t.entry_price, t.exit_price), (101.0, 105.0));
        let fees = units * 105.0 * 0.001 + units * 101.0 * 0.001;
        assert_eq!(t.fees, fees);
        assert_eq!(t.pnl, units * 4.0 - fees);
        assert_eq!(t.exit_reason, ExitReason::Signal);
        assert!((r.curve.last_equity() - (10_000.0 + t.pnl)).abs() < 1e-9);
    }

    #[test]
    fn a_signal_on_the_last_bar_is_not_filled() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy());
        let r = b.finish();
        assert!(r.trades.is_empty());
        assert_eq!(r.curve.last_equity(), 10_000.0);
    }

    #[test]
    fn reverses_on_an_opposite_signal_and_holds_on_a_repeat() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy());
        b.on_bar(&flat(1, 100.0));
        b.submit(Signal::buy()); // already long: no pyramid
        b.on_bar(&flat(2, 110.0));
        b.submit(Signal::sell());
        b.on_bar(&flat(3, 120.0));
        let p = b.position().unwrap();
        assert_eq!(p.side, Side::Short);
        assert_eq!(p.entry_bar, 3);
        assert_eq!(b.trades().len(), 1);
        assert_eq!(b.trades()[0].exit_price, 120.0);
    }

    #[test]
    fn stop_loss_inside_the_bar_fills_at_the_stop() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy().with_stop_loss(95.0));
        b.on_bar(&bar(1, 100.0, 101.0, 94.0, 96.0));
        let t = &b.trades()[0];
        assert_eq!((t.exit_price, t.exit_reason), (95.0, ExitReason::StopLoss));
        assert_eq!(
            t.exit_bar, 1,
            "the entry bar's range counts (it came after the open)"
        );
    }

    #[test]
    fn a_gap_through_the_stop_fills_at_the_open() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy().with_stop_loss(95.0));
        b.on_bar(&flat(1, 100.0));
        b.on_bar(&bar(2, 90.0, 92.0, 89.0, 91.0));
        let t = &b.trades()[0];
        assert_eq!((t.exit_price, t.exit_reason), (90.0, ExitReason::StopLoss));
    }

    #[test]
    fn stop_and_target_in_one_bar_assume_the_worse_for_long_and_short() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy().with_stop_loss(95.0).with_take_profit(105.0));
        b.on_bar(&bar(1, 100.0, 106.0, 94.0, 100.0));
        assert_eq!(b.trades()[0].exit_reason, ExitReason::StopLoss);
        assert_eq!(b.trades()[0].exit_price, 95.0);

        b.submit(Signal::sell().with_stop_loss(105.0).with_take_profit(95.0));
        b.on_bar(&bar(2, 100.0, 106.0, 94.0, 100.0));
        assert_eq!(b.trades()[1].exit_reason, ExitReason::StopLoss);
        assert_eq!(b.trades()[1].exit_price, 105.0);
    }

    #[test]
    fn take_profit_fills_at_the_target_or_a_better_open() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::sell().with_take_profit(90.0));
        b.on_bar(&bar(1, 100.0, 100.0, 89.0, 92.0));
        assert_eq!(b.trades()[0].exit_price, 90.0);
        assert_eq!(b.trades()[0].exit_reason, ExitReason::TakeProfit);
        b.submit(Signal::buy().with_take_profit(110.0));
        b.on_bar(&flat(2, 100.0));
        b.on_bar(&bar(3, 115.0, 116.0, 114.0, 115.0));
        assert_eq!(b.trades()[1].exit_price, 115.0);
    }

    #[test]
    fn slippage_moves_every_market_fill_against_the_trader() {
        let mut b = Broker::new(
            BrokerConfig::new()
                .with_fee_bps(0.0)
                .with_slippage_bps(100.0),
        )
        .unwrap();
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy());
        b.on_bar(&flat(1, 100.0));
        b.submit(Signal::sell());
        b.on_bar(&flat(2, 100.0));
        let r = b.finish();
        assert_eq!(r.trades[0].entry_price, 101.0);
        assert_eq!(r.trades[0].exit_price, 99.0);
        assert_eq!(r.trades[1].entry_price, 99.0, "a short sells lower");
        assert_eq!(
            r.trades[1].exit_price, 101.0,
            "and buys back higher at the end"
        );
        assert_eq!(r.trades[1].exit_reason, ExitReason::EndOfData);
    }

    #[test]
    fn strength_sizes_and_lot_size_rounds_down() {
        let mut b = Broker::new(
            BrokerConfig::new()
                .with_fee_bps(0.0)
                .with_lot_size(Some(10.0)),
        )
        .unwrap();
        b.on_bar(&flat(0, 3.0));
        b.submit(Signal::buy().with_strength(0.5));
        b.on_bar(&flat(1, 3.0));
        // 5 000 / 3 = 1666.6 units -> 1660 in lots of 10
        assert_eq!(b.position().unwrap().units, 1660.0);
    }

    #[test]
    fn an_order_below_one_lot_is_rejected_not_filled() {
        let mut b =
            Broker::new(BrokerConfig::new().with_cash(50.0).with_lot_size(Some(1.0))).unwrap();
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::buy());
        b.on_bar(&flat(1, 100.0));
        assert!(b.position().is_none());
        assert_eq!(b.rejected_orders(), 1);
        assert_eq!(b.cash(), 50.0);
    }

    #[test]
    fn a_short_that_loses_everything_is_liquidated_and_cash_stays_non_negative() {
        let mut b = broker(0.0);
        b.on_bar(&flat(0, 100.0));
        b.submit(Signal::sell());
        b.on_bar(&flat(1, 100.0));
        assert_eq!(b.on_bar(&flat(2, 250.0)), 0.0);
        b.submit(Signal::buy()); // ignored once bankrupt
        b.on_bar(&flat(3, 100.0));
        let r = b.finish();
        assert!(r.bankrupt);
        assert_eq!(r.trades.len(), 1);
        assert_eq!(r.trades[0].exit_reason, ExitReason::Liquidated);
        assert_eq!(r.curve.equity(), &[10_000.0, 10_000.0, 0.0, 0.0]);
    }

    #[test]
    fn end_of_data_closes_at_the_last_close_or_open_and_is_marked() {
        for (end, price) in [
            (EndOfData::CloseAtLastClose, 120.0),
            (EndOfData::CloseAtLastOpen, 110.0),
        ] {
            let mut b =
                Broker::new(BrokerConfig::new().with_fee_bps(0.0).with_end_of_data(end)).unwrap();
            b.on_bar(&flat(0, 100.0));
            b.submit(Signal::buy());
            b.on_bar(&flat(1, 100.0));
            b.on_bar(&bar(2, 110.0, 120.0, 110.0, 120.0));
            let r = b.finish();
            assert_eq!(r.trades[0].exit_price, price);
            assert_eq!(r.trades[0].exit_reason, ExitReason::EndOfData);
            assert_eq!(r.trades[0].exit_bar, 2);
            assert_eq!(r.curve.last_equity(), 10_000.0 + r.trades[0].pnl);
        }
    }
}
