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
///
/// From the trades' bar spans, merged in entry order: a vector per bar
/// cost more in fresh pages than the counting.
pub(crate) fn exposure(trades: &[Trade], bars: usize) -> f64 {
    if bars == 0 {
        return f64::NAN;
    }
    // Half-open spans [entry, exit + 1), clipped to the bars there are.
    let mut spans: Vec<(usize, usize)> = trades
        .iter()
        .map(|t| (t.entry_bar.min(bars), (t.exit_bar + 1).min(bars)))
        .filter(|(from, to)| from < to)
        .collect();
    spans.sort_unstable();
    let (mut covered, mut reached) = (0_usize, 0_usize);
    for (from, to) in spans {
        let from = from.max(reached);
        if to > from {
            covered += to - from;
            reached = to;
        }
    }
    covered as f64 / bars as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bar by bar: is any trade open on it?
    fn by_bars(trades: &[Trade], bars: usize) -> f64 {
        let covered = (0..bars)
            .filter(|&b| trades.iter().any(|t| t.entry_bar <= b && b <= t.exit_bar))
            .count();
        covered as f64 / bars as f64
    }

    #[test]
    fn exposure_counts_each_bar_once_whatever_the_spans() {
        let cases: [&[(usize, usize)]; 6] = [
            &[],
            &[(2, 4)],
            // A reversal: the exit bar is the next entry bar.
            &[(1, 3), (3, 6), (6, 9)],
            // Out of order, nested and overlapping.
            &[(5, 8), (0, 1), (6, 7), (7, 12)],
            // Past the last bar: clipped.
            &[(8, 40), (30, 50)],
            &[(0, 9)],
        ];
        for spans in cases {
            let trades: Vec<Trade> = spans.iter().map(|&(a, b)| Trade::held(1.0, a, b)).collect();
            assert_eq!(exposure(&trades, 10), by_bars(&trades, 10), "{spans:?}");
        }
        assert!(exposure(&[], 0).is_nan());
    }
}
