//! Drawdown periods: from one bar at a peak to the next.

use super::duration::Span;

/// The drawdown periods of a curve, as backtesting.py's
/// `compute_drawdown_duration_peaks` finds them: between consecutive bars
/// with zero drawdown (and the last bar, recovered or not) that are more
/// than one bar apart.
#[derive(Debug, Clone, Default)]
pub(crate) struct Episodes {
    /// Per period: time from its starting peak to its end, and its deepest
    /// drawdown (a fraction).
    periods: Vec<(i64, f64)>,
    /// backtesting.py's value when there is no period: the mean of the
    /// non-zero drawdowns (NaN when there are none).
    fallback_peak: f64,
}

/// The drawdown periods of the curve `equity` (at bars opening at `time`)
/// and its deepest drawdown, as the per-bar drawdown
/// `1 - equity / max(equity so far)` of
/// [`EquityCurve::drawdown`](crate::EquityCurve::drawdown) gives them, bit
/// for bit, without a per-bar vector (at millions of bars, fresh vectors
/// cost more in page faults than the arithmetic).
pub(crate) fn measure(time: &[i64], equity: &[f64]) -> (Episodes, f64) {
    by_lows(time, equity).unwrap_or_else(|| by_bars(time, equity))
}

/// For a positive, finite curve (`None` for any other): between two new
/// highs the running peak is constant, and division and subtraction round
/// monotonically, so the deepest per-bar drawdown of a period is exactly
/// `1 - lowest / peak`. One division per period instead of one per bar,
/// and one pass: a bar that is not positive and finite ends it early.
fn by_lows(time: &[i64], equity: &[f64]) -> Option<(Episodes, f64)> {
    let positive = |e: f64| e.is_finite() && e > 0.0;
    let (&first, rest) = equity.split_first()?;
    if !positive(first) {
        return None;
    }
    let n = equity.len();
    let mut periods = Vec::new();
    let mut max_dd = 0.0_f64;
    let (mut peak, mut last_end, mut low) = (first, 0usize, f64::INFINITY);
    let mut close_segment = |end: usize, last_end: usize, peak: f64, low: f64| {
        if low.is_finite() {
            let deepest = 1.0 - low / peak;
            max_dd = max_dd.max(deepest);
            if end > last_end + 1 {
                periods.push((time[end] - time[last_end], deepest));
            }
        }
    };
    for (i, &e) in rest.iter().enumerate() {
        let i = i + 1;
        if e >= peak {
            if e == f64::INFINITY {
                return None;
            }
            // A new high: its drawdown is 0, and it ends a period.
            close_segment(i, last_end, peak, low);
            (peak, last_end, low) = (e, i, f64::INFINITY);
        } else if e > 0.0 {
            low = low.min(e);
        } else {
            return None; // zero, negative or NaN
        }
    }
    // The last bar ends a period too, recovered or not.
    if last_end + 1 < n {
        close_segment(n - 1, last_end, peak, low);
    }
    let fallback_peak = if periods.is_empty() {
        by_bars(time, equity).0.fallback_peak
    } else {
        f64::NAN // not read: there are periods
    };
    Some((
        Episodes {
            periods,
            fallback_peak,
        },
        max_dd,
    ))
}

/// Bar by bar, for any curve (a zero or non-finite equity included).
fn by_bars(time: &[i64], equity: &[f64]) -> (Episodes, f64) {
    let n = equity.len();
    let mut peak = f64::NEG_INFINITY;
    let mut periods = Vec::new();
    // The last end (a bar at a peak) and the deepest drawdown since it.
    let mut last_end: Option<usize> = None;
    let mut deepest = f64::NAN;
    let (mut nonzero_sum, mut nonzero) = (0.0, 0usize);
    let mut max_dd = 0.0_f64;
    for (i, &e) in equity.iter().enumerate() {
        peak = peak.max(e);
        let dd = 1.0 - e / peak;
        if !dd.is_nan() {
            max_dd = max_dd.max(dd);
            if dd != 0.0 {
                nonzero_sum += dd;
                nonzero += 1;
            }
        }
        deepest = deepest.max(dd);
        // A peak ends a period, and so does the last bar, recovered or not.
        if dd == 0.0 || i + 1 == n {
            if let Some(z) = last_end.filter(|&z| i > z + 1) {
                periods.push((time[i] - time[z], deepest));
            }
            last_end = Some(i);
            deepest = f64::NAN.max(dd);
        }
    }
    let fallback_peak = if nonzero == 0 {
        f64::NAN
    } else {
        nonzero_sum / nonzero as f64
    };
    (
        Episodes {
            periods,
            fallback_peak,
        },
        max_dd,
    )
}

impl Episodes {
    pub(crate) fn mean_peak(&self) -> f64 {
        if self.periods.is_empty() {
            return self.fallback_peak;
        }
        let peaks: Vec<f64> = self.periods.iter().map(|p| p.1).collect();
        mean(&peaks)
    }

    pub(crate) fn max_duration(&self) -> Span {
        Span(self.periods.iter().map(|p| p.0).max())
    }

    pub(crate) fn mean_duration(&self) -> Span {
        Span::mean(self.periods.iter().map(|p| p.0))
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The equity whose drawdowns are `dd` (peak 100).
    fn equity(dd: &[f64]) -> Vec<f64> {
        dd.iter().map(|d| 100.0 * (1.0 - d)).collect()
    }

    #[test]
    fn finds_periods_between_peaks_and_an_unrecovered_tail() {
        let time = [0, 1, 2, 3, 4, 5, 6];
        let (e, max_dd) = measure(&time, &equity(&[0.0, 0.1, 0.2, 0.0, 0.0, 0.05, 0.01]));
        assert_eq!(e.periods.len(), 2);
        assert_eq!((e.periods[0].0, e.periods[1].0), (3, 2));
        assert!((e.periods[0].1 - 0.2).abs() < 1e-15 && (e.periods[1].1 - 0.05).abs() < 1e-15);
        assert!((e.mean_peak() - 0.125).abs() < 1e-15);
        assert_eq!(e.max_duration(), Span::exact(3));
        assert!((max_dd - 0.2).abs() < 1e-15);
    }

    #[test]
    fn no_drawdown_gives_none() {
        let (e, max_dd) = measure(&[0, 1, 2], &[5.0, 5.0, 6.0]);
        assert!(e.mean_peak().is_nan());
        assert_eq!(e.max_duration(), Span(None));
        assert_eq!(max_dd, 0.0);
    }

    /// The pass gives what the per-bar drawdown vector gives, bit for bit,
    /// on a long, jagged curve.
    #[test]
    fn one_pass_matches_the_drawdown_vector() {
        let equity: Vec<f64> = (0..5_000)
            .map(|i| {
                100.0
                    + (f64::from(i) / 7.0).sin() * 9.0
                    + f64::from(i % 11) * 0.3
                    + f64::from(i) * 0.01
            })
            .collect();
        let time: Vec<i64> = (0..5_000).map(|i| i * 60_000).collect();
        let mut curve = crate::EquityCurve::default();
        for (&t, &e) in time.iter().zip(&equity) {
            curve.push(t, 1.0, e);
        }
        let dd = curve.drawdown();
        // As the vector-based code found them.
        let mut ends: Vec<usize> = (0..dd.len()).filter(|&i| dd[i] == 0.0).collect();
        if ends.last() != Some(&(dd.len() - 1)) {
            ends.push(dd.len() - 1);
        }
        let periods: Vec<(i64, f64)> = ends
            .windows(2)
            .filter(|w| w[1] > w[0] + 1)
            .map(|w| {
                let deepest = dd[w[0]..=w[1]].iter().copied().fold(f64::NAN, f64::max);
                (time[w[1]] - time[w[0]], deepest)
            })
            .collect();
        assert!(periods.len() > 10, "{} periods", periods.len());
        let want_max = dd.iter().copied().fold(0.0, f64::max);
        let lows = by_lows(&time, &equity).expect("a positive, finite curve");
        for (e, max_dd) in [lows, by_bars(&time, &equity)] {
            assert_eq!(e.periods, periods);
            assert_eq!(max_dd, want_max);
        }
    }

    #[test]
    fn a_curve_that_never_recovers_has_the_mean_of_its_drawdowns() {
        let equity = [100.0, 90.0, 80.0, 85.0];
        let (e, max_dd) = measure(&[0, 1, 2, 3], &equity);
        assert_eq!(e.max_duration(), Span::exact(3));
        assert!((max_dd - 0.2).abs() < 1e-15);
        // A bankrupt curve (equity 0) takes the bar-by-bar path.
        let (e, max_dd) = measure(&[0, 1, 2], &[100.0, 0.0, 0.0]);
        assert_eq!(max_dd, 1.0);
        assert_eq!(e.max_duration(), Span::exact(2));
        // A last bar's dip right after a high is no period: the mean of
        // the drawdowns stands in.
        let (e, max_dd) = measure(&[0, 1], &[100.0, 50.0]);
        assert_eq!(e.max_duration(), Span(None));
        assert_eq!((e.mean_peak(), max_dd), (0.5, 0.5));
        // Only a positive, finite curve takes the one-division-per-period
        // path, wherever the bad bar is.
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            for at in 0..3 {
                let mut equity = [100.0, 120.0, 110.0];
                equity[at] = bad;
                assert!(by_lows(&[0, 1, 2], &equity).is_none(), "{bad} at {at}");
            }
        }
        // No bars: nothing, and no panic.
        let (e, max_dd) = measure(&[], &[]);
        assert!(e.mean_peak().is_nan());
        assert_eq!(max_dd, 0.0);
    }
}
