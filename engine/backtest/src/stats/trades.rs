//! Statistics of the trade list.

use super::annual::{geometric_mean, mean};
use super::duration::Span;
use crate::trade::Trade;

pub(crate) struct Summary {
    pub win_rate: f64,
    pub best: f64,
    pub worst: f64,
    pub geometric_mean: f64,
    pub mean_return: f64,
    pub profit_factor: f64,
    pub sqn: f64,
    pub kelly: f64,
    pub max_duration: Span,
    pub mean_duration: Span,
}

pub(crate) fn summary(trades: &[Trade], period: Option<i64>) -> Summary {
    let returns: Vec<f64> = trades.iter().map(|t| t.return_frac).collect();
    let pnl: Vec<f64> = trades.iter().map(|t| t.pnl).collect();
    let n = trades.len();
    let win_rate = if n == 0 {
        f64::NAN
    } else {
        pnl.iter().filter(|&&p| p > 0.0).count() as f64 / n as f64
    };
    let gains: f64 = returns.iter().filter(|&&r| r > 0.0).sum();
    let losses: f64 = returns.iter().filter(|&&r| r < 0.0).sum();
    let pnl_std = super::annual::variance(&pnl).sqrt();
    let avg_win = mean(&pnl.iter().copied().filter(|&p| p > 0.0).collect::<Vec<_>>());
    let avg_loss = mean(&pnl.iter().copied().filter(|&p| p < 0.0).collect::<Vec<_>>());
    Summary {
        win_rate,
        best: returns.iter().copied().fold(f64::NAN, f64::max),
        worst: returns.iter().copied().fold(f64::NAN, f64::min),
        geometric_mean: geometric_mean(&returns),
        mean_return: mean(&returns),
        profit_factor: if losses == 0.0 {
            f64::NAN
        } else {
            gains / losses.abs()
        },
        sqn: if pnl_std == 0.0 {
            f64::NAN
        } else {
            (n as f64).sqrt() * mean(&pnl) / pnl_std
        },
        kelly: win_rate - (1.0 - win_rate) / (avg_win / -avg_loss),
        max_duration: Span(trades.iter().map(Trade::duration_ms).max()).ceil_to(period),
        mean_duration: Span::mean(trades.iter().map(Trade::duration_ms)).ceil_to(period),
    }
}

/// Share of bars with a position open, entry and exit bars included.
pub(crate) fn exposure(trades: &[Trade], bars: usize) -> f64 {
    if bars == 0 {
        return f64::NAN;
    }
    let mut delta = vec![0_i64; bars + 1];
    for t in trades {
        delta[t.entry_bar.min(bars)] += 1;
        delta[(t.exit_bar + 1).min(bars)] -= 1;
    }
    let mut open = 0;
    let mut covered = 0_usize;
    for d in &delta[..bars] {
        open += d;
        if open > 0 {
            covered += 1;
        }
    }
    covered as f64 / bars as f64
}
