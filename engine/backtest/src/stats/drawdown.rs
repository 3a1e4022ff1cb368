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

pub(crate) fn episodes(time: &[i64], dd: &[f64]) -> Episodes {
    let n = dd.len();
    let mut ends: Vec<usize> = (0..n).filter(|&i| dd[i] == 0.0).collect();
    if n > 0 && ends.last() != Some(&(n - 1)) {
        ends.push(n - 1);
    }
    let periods: Vec<(i64, f64)> = ends
        .windows(2)
        .filter(|w| w[1] > w[0] + 1)
        .map(|w| {
            let deepest = dd[w[0]..=w[1]].iter().copied().fold(f64::NAN, f64::max);
            (time[w[1]] - time[w[0]], deepest)
        })
        .collect();
    let nonzero: Vec<f64> = dd
        .iter()
        .copied()
        .filter(|&d| d != 0.0 && !d.is_nan())
        .collect();
    Episodes {
        periods,
        fallback_peak: mean(&nonzero),
    }
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

    #[test]
    fn finds_periods_between_peaks_and_an_unrecovered_tail() {
        let time = [0, 1, 2, 3, 4, 5, 6];
        let dd = [0.0, 0.1, 0.2, 0.0, 0.0, 0.05, 0.01];
        let e = episodes(&time, &dd);
        assert_eq!(e.periods, vec![(3, 0.2), (2, 0.05)]);
        assert!((e.mean_peak() - 0.125).abs() < 1e-15);
        assert_eq!(e.max_duration(), Span::exact(3));
    }

    #[test]
    fn no_drawdown_gives_none() {
        let e = episodes(&[0, 1, 2], &[0.0, 0.0, 0.0]);
        assert!(e.mean_peak().is_nan());
        assert_eq!(e.max_duration(), Span(None));
    }
}
