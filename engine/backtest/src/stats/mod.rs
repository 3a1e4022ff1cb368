//! Performance statistics, named and defined as backtesting.py 0.6 names
//! and defines them, so a number here means what it means there.
//!
//! Everything is computed from two inputs: the equity curve (equity at
//! every bar's close) and the closed trades. Definitions, in short:
//!
//! - **Returns for risk ratios** are *period* returns of the equity
//!   resampled by calendar period: the last equity of each UTC day (of each
//!   week ending Sunday for weekly bars, month for monthly, year for
//!   yearly), then percentage changes. Annualisation raises to the number
//!   of periods per year: 252 trading days, or 365 when more than 17% of
//!   bars fall on weekends (markets that trade every day), 52 weeks, 12
//!   months, 1 year. The chosen rule is written into [`Annualisation`].
//! - **Return (Ann.)** is the geometric mean period return compounded over
//!   a year; **Volatility (Ann.)** is backtesting.py's compounded variance
//!   formula; **Sharpe** is their ratio (risk-free rate 0); **Sortino**
//!   divides by the downside deviation; **Calmar** by the max drawdown.
//! - **Drawdown** is `1 - equity / running peak`. A drawdown period runs
//!   from one bar at a peak to the next (or to the last bar); its duration
//!   is the time between them.
//! - **Trade** figures use each trade's return after fees
//!   ([`Trade::return_frac`](crate::Trade::return_frac)) and profit.
//!   Durations are rounded up to the bar interval's unit, as pandas'
//!   `Timedelta.ceil` does there.
//! - **Buy & Hold** starts at the first bar on which all of the strategy's
//!   indicators have a value (`warmup`), as backtesting.py does.

mod annual;
mod drawdown;
mod duration;
mod gaps;
mod trades;

pub use annual::Annualisation;
pub use duration::Span;
pub use gaps::Gaps;

use serde::Serialize;

use crate::equity::EquityCurve;
use crate::trade::Trade;

/// The statistics of one run. Field names in JSON are backtesting.py's.
/// A value that is undefined (no trades, no losses, ...) is NaN, written
/// as `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    #[serde(rename = "Duration")]
    pub duration: Span,
    #[serde(rename = "Exposure Time [%]")]
    pub exposure_time_pct: f64,
    #[serde(rename = "Equity Final [$]")]
    pub equity_final: f64,
    #[serde(rename = "Equity Peak [$]")]
    pub equity_peak: f64,
    #[serde(rename = "Commissions [$]")]
    pub commissions: f64,
    #[serde(rename = "Return [%]")]
    pub return_pct: f64,
    #[serde(rename = "Buy & Hold Return [%]")]
    pub buy_hold_return_pct: f64,
    #[serde(rename = "Return (Ann.) [%]")]
    pub return_ann_pct: f64,
    #[serde(rename = "Volatility (Ann.) [%]")]
    pub volatility_ann_pct: f64,
    #[serde(rename = "CAGR [%]")]
    pub cagr_pct: f64,
    #[serde(rename = "Sharpe Ratio")]
    pub sharpe: f64,
    #[serde(rename = "Sortino Ratio")]
    pub sortino: f64,
    #[serde(rename = "Calmar Ratio")]
    pub calmar: f64,
    #[serde(rename = "Alpha [%]")]
    pub alpha_pct: f64,
    #[serde(rename = "Beta")]
    pub beta: f64,
    #[serde(rename = "Max. Drawdown [%]")]
    pub max_drawdown_pct: f64,
    #[serde(rename = "Avg. Drawdown [%]")]
    pub avg_drawdown_pct: f64,
    #[serde(rename = "Max. Drawdown Duration")]
    pub max_drawdown_duration: Span,
    #[serde(rename = "Avg. Drawdown Duration")]
    pub avg_drawdown_duration: Span,
    #[serde(rename = "# Trades")]
    pub trades: usize,
    #[serde(rename = "Win Rate [%]")]
    pub win_rate_pct: f64,
    #[serde(rename = "Best Trade [%]")]
    pub best_trade_pct: f64,
    #[serde(rename = "Worst Trade [%]")]
    pub worst_trade_pct: f64,
    #[serde(rename = "Avg. Trade [%]")]
    pub avg_trade_pct: f64,
    #[serde(rename = "Max. Trade Duration")]
    pub max_trade_duration: Span,
    #[serde(rename = "Avg. Trade Duration")]
    pub avg_trade_duration: Span,
    #[serde(rename = "Profit Factor")]
    pub profit_factor: f64,
    #[serde(rename = "Expectancy [%]")]
    pub expectancy_pct: f64,
    #[serde(rename = "SQN")]
    pub sqn: f64,
    #[serde(rename = "Kelly Criterion")]
    pub kelly: f64,
    /// Holes in the series (not a backtesting.py field): every spacing
    /// wider than the bar interval, of which weekend closures.
    #[serde(rename = "Gaps")]
    pub gaps: u64,
    #[serde(rename = "Weekend Gaps")]
    pub weekend_gaps: u64,
    /// Bars the holes would hold; none is interpolated.
    #[serde(rename = "Missing Bars")]
    pub missing_bars: u64,
    #[serde(rename = "Largest Gap")]
    pub largest_gap: Span,
    /// Open time of the bar before the largest gap.
    #[serde(rename = "Largest Gap After")]
    pub largest_gap_after: Option<String>,
    /// How returns were annualised (not a backtesting.py field).
    #[serde(rename = "Annualisation")]
    pub annualisation: Annualisation,
}

impl Stats {
    /// Computes every statistic. `warmup` is the index of the first bar on
    /// which the strategy's inputs are all available (Buy & Hold starts
    /// there).
    ///
    /// An empty curve gives NaN everywhere it must.
    pub fn compute(curve: &EquityCurve, trades: &[Trade], warmup: usize) -> Stats {
        let time = curve.time();
        let equity = curve.equity();
        let close = curve.close();
        let n = equity.len();
        let first = |v: &[f64]| v.first().copied().unwrap_or(f64::NAN);
        let last = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        let period = duration::data_period(time);
        let (t0, t1) = (
            time.first().copied().unwrap_or(0),
            time.last().copied().unwrap_or(0),
        );

        // Passes over the bars, independent of each other: on the cores
        // the replay has just left idle, they take the time of about two.
        let (((episodes, max_dd), beta), ((ann, risk), (holes, peak, tr))) = rayon::join(
            || {
                rayon::join(
                    || drawdown::measure(time, equity),
                    || annual::beta(equity, close),
                )
            },
            || {
                rayon::join(
                    || {
                        let ann = annual::Annualisation::infer(time, period);
                        let periods = ann.period_returns(time, equity);
                        let risk = annual::risk(&periods, ann.periods_per_year);
                        (ann, risk)
                    },
                    || {
                        (
                            gaps::Gaps::measure(time),
                            equity.iter().copied().fold(f64::NAN, f64::max),
                            trades::summary(trades, period),
                        )
                    },
                )
            },
        );

        let return_pct = (last(equity) - first(equity)) / first(equity) * 100.0;
        let c0 = close.get(warmup).copied().unwrap_or(f64::NAN);
        let buy_hold = (last(close) - c0) / c0 * 100.0;
        let years = duration::years(t1 - t0);
        Stats {
            start: candlewick_market::time::format_ms(t0),
            end: candlewick_market::time::format_ms(t1),
            duration: Span::exact(t1 - t0),
            exposure_time_pct: trades::exposure(trades, n) * 100.0,
            equity_final: last(equity),
            equity_peak: peak,
            commissions: trades.iter().fold(0.0, |sum, t| sum + t.fees),
            return_pct,
            buy_hold_return_pct: buy_hold,
            return_ann_pct: risk.annual_return * 100.0,
            volatility_ann_pct: risk.annual_volatility * 100.0,
            cagr_pct: if years != 0.0 {
                ((last(equity) / first(equity)).powf(1.0 / years) - 1.0) * 100.0
            } else {
                f64::NAN
            },
            sharpe: nan_if_zero_div(risk.annual_return * 100.0, risk.annual_volatility * 100.0),
            sortino: risk.annual_return / risk.downside,
            calmar: nan_if_zero_div(risk.annual_return, max_dd),
            alpha_pct: return_pct - beta * buy_hold,
            beta,
            max_drawdown_pct: -max_dd * 100.0,
            avg_drawdown_pct: -episodes.mean_peak() * 100.0,
            max_drawdown_duration: episodes.max_duration().ceil_to(period),
            avg_drawdown_duration: episodes.mean_duration().ceil_to(period),
            trades: trades.len(),
            win_rate_pct: tr.win_rate * 100.0,
            best_trade_pct: tr.best * 100.0,
            worst_trade_pct: tr.worst * 100.0,
            avg_trade_pct: tr.geometric_mean * 100.0,
            max_trade_duration: tr.max_duration,
            avg_trade_duration: tr.mean_duration,
            profit_factor: tr.profit_factor,
            expectancy_pct: tr.mean_return * 100.0,
            sqn: tr.sqn,
            kelly: tr.kelly,
            gaps: holes.count,
            weekend_gaps: holes.weekend,
            missing_bars: holes.missing_bars,
            largest_gap: holes.largest,
            largest_gap_after: holes.largest_after,
            annualisation: ann,
        }
    }

    /// A numeric statistic by its backtesting.py name (`"Sharpe Ratio"`,
    /// `"Return [%]"`, `"# Trades"`), for ranking sweeps; `None` for an
    /// unknown or non-numeric name.
    pub fn get(&self, name: &str) -> Option<f64> {
        let value = serde_json::to_value(self).ok()?;
        match value.get(name)? {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::Null => Some(f64::NAN),
            _ => None,
        }
    }

    /// Names [`Stats::get`] accepts.
    pub fn numeric_names() -> Vec<String> {
        let empty = Stats::compute(&EquityCurve::default(), &[], 0);
        match serde_json::to_value(&empty) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter(|(_, v)| v.is_number() || v.is_null())
                .map(|(k, _)| k)
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `a / b`, NaN where pandas' `b or np.nan` would be NaN (b == 0).
fn nan_if_zero_div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}
