//! Period returns and annualised risk, as backtesting.py computes them.

use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

/// How returns were grouped into periods and how many periods make a year.
/// Inferred from the bar interval and the calendar of the data, and
/// written into the statistics so that a reader knows what "annual" means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annualisation {
    /// Bar period inferred from the data (median spacing of the last 100
    /// bars), e.g. `1h`; `unknown` for fewer than two bars.
    pub bar_interval: String,
    /// `daily`, `weekly` (weeks ending Sunday), `monthly` or `yearly`: the
    /// calendar period whose last equity value makes one return.
    pub period: &'static str,
    /// 252 (trading days), 365 (data trades on weekends), 52, 12 or 1.
    pub periods_per_year: f64,
    /// Share of bars on a Saturday or Sunday (UTC); more than 2/7 * 0.6
    /// means a market that trades every day.
    pub weekend_share: f64,
}

/// Calendar grouping of bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Day,
    /// Weeks ending Sunday (pandas `W`).
    Week,
    /// Calendar months (pandas `ME`).
    Month,
    /// Calendar years (pandas `YE`).
    Year,
}

impl Annualisation {
    pub(crate) fn infer(time: &[i64], period_ms: Option<i64>) -> Annualisation {
        let freq_days = period_ms.map_or(0, |p| p.div_euclid(DAY_MS));
        let weekend = count_weekend(time);
        let weekend_share = if time.is_empty() {
            f64::NAN
        } else {
            weekend as f64 / time.len() as f64
        };
        let (period, periods_per_year) = match freq_days {
            7 => ("weekly", 52.0),
            31 => ("monthly", 12.0),
            365 => ("yearly", 1.0),
            _ if weekend_share > 2.0 / 7.0 * 0.6 => ("daily", 365.0),
            _ => ("daily", 252.0),
        };
        Annualisation {
            bar_interval: period_ms.map_or_else(|| "unknown".to_owned(), describe_ms),
            period,
            periods_per_year,
            weekend_share,
        }
    }

    fn group(&self) -> Group {
        match self.period {
            "weekly" => Group::Week,
            "monthly" => Group::Month,
            "yearly" => Group::Year,
            _ => Group::Day,
        }
    }

    /// The last equity of each calendar period, as percentage changes.
    pub(crate) fn period_returns(&self, time: &[i64], equity: &[f64]) -> Vec<f64> {
        let group = self.group();
        let n = time.len().min(equity.len());
        let mut lasts: Vec<f64> = Vec::new();
        let mut current = None;
        let mut i = 0;
        while i < n {
            let key = group_key(group, time[i]);
            // The run of bars inside this day's or week's span: found by
            // comparing times only, its last equity read once.
            let (start, end) = group_span(group, key);
            let run = time[i..n]
                .iter()
                .position(|t| !(start..end).contains(t))
                .unwrap_or(n - i)
                .max(1);
            let e = equity[i + run - 1];
            match lasts.last_mut() {
                Some(last) if current == Some(key) => *last = e,
                _ => {
                    current = Some(key);
                    lasts.push(e);
                }
            }
            i += run;
        }
        lasts.windows(2).map(|w| w[1] / w[0] - 1.0).collect()
    }
}

/// Annualised return, volatility and downside deviation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Risk {
    pub annual_return: f64,
    pub annual_volatility: f64,
    /// `sqrt(mean(min(r, 0)^2)) * sqrt(periods per year)`.
    pub downside: f64,
}

pub(crate) fn risk(returns: &[f64], periods_per_year: f64) -> Risk {
    let g = geometric_mean(returns);
    let n = periods_per_year;
    let var = variance(returns);
    let downside_sq: Vec<f64> = returns.iter().map(|r| r.min(0.0).powi(2)).collect();
    Risk {
        annual_return: (1.0 + g).powf(n) - 1.0,
        annual_volatility: ((var + (1.0 + g).powi(2)).powf(n) - (1.0 + g).powf(2.0 * n)).sqrt(),
        downside: mean(&downside_sq).sqrt() * n.sqrt(),
    }
}

/// backtesting.py's `geometric_mean`: 0 when any `1 + r <= 0`, NaN when empty.
pub(crate) fn geometric_mean(returns: &[f64]) -> f64 {
    if returns.is_empty() {
        return f64::NAN;
    }
    let ones: Vec<f64> = returns
        .iter()
        .map(|r| if r.is_nan() { 1.0 } else { r + 1.0 })
        .collect();
    if ones.iter().any(|&x| x <= 0.0) {
        return 0.0;
    }
    (ones.iter().map(|x| x.ln()).sum::<f64>() / ones.len() as f64).exp() - 1.0
}

/// Beta of the equity's log returns against the close's: `cov / var`.
///
/// Two logarithms per bar make this the slowest statistic, so it runs in
/// chunks on every core, each with exact two-pass co-moments per small
/// block (as stable as two passes over stored returns, without two
/// per-bar vectors), merged in order as Chan, Golub and LeVeque do.
pub(crate) fn beta(equity: &[f64], close: &[f64]) -> f64 {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let returns = equity.len().min(close.len()).saturating_sub(1);
    let chunks: Vec<CoMoments> = (0..returns.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (from, to) = (c * CHUNK, ((c + 1) * CHUNK).min(returns));
            CoMoments::of(&equity[from..=to], &close[from..=to])
        })
        .collect();
    // Merged in order, so the result is the same bits on any number of
    // cores.
    let moments = chunks
        .into_iter()
        .fold(CoMoments::default(), CoMoments::merge);
    if moments.n <= 1.0 {
        return f64::NAN;
    }
    moments.co / moments.m2
}

/// Running co-moments of two series of log returns: count, means, the sum
/// of co-deviations and the second one's sum of squared deviations.
#[derive(Debug, Clone, Copy, Default)]
struct CoMoments {
    n: f64,
    mean_x: f64,
    mean_y: f64,
    co: f64,
    m2: f64,
}

impl CoMoments {
    /// Of the log returns of `x` and `y` (prices, same length).
    ///
    /// Two passes per block of returns held on the stack (exact means,
    /// then deviations), blocks merged in order: Welford's running means
    /// chained a division per bar, which made this the slowest statistic.
    fn of(x: &[f64], y: &[f64]) -> Self {
        const BLOCK: usize = 512;
        let returns = x.len().min(y.len()).saturating_sub(1);
        let (mut rx, mut ry) = ([0.0; BLOCK], [0.0; BLOCK]);
        let mut m = CoMoments::default();
        for from in (0..returns).step_by(BLOCK) {
            let len = BLOCK.min(returns - from);
            let (x, y) = (&x[from..=from + len], &y[from..=from + len]);
            for (i, (a, b)) in x.windows(2).zip(y.windows(2)).enumerate() {
                rx[i] = (a[1] / a[0]).ln();
                ry[i] = (b[1] / b[0]).ln();
            }
            let (rx, ry) = (&rx[..len], &ry[..len]);
            let n = len as f64;
            let (mean_x, mean_y) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
            let (mut co, mut m2) = (0.0, 0.0);
            for (a, b) in rx.iter().zip(ry) {
                let dy = b - mean_y;
                co += (a - mean_x) * dy;
                m2 += dy * dy;
            }
            let block = CoMoments {
                n,
                mean_x,
                mean_y,
                co,
                m2,
            };
            m = CoMoments::merge(m, block);
        }
        m
    }

    fn merge(a: Self, b: Self) -> Self {
        if a.n == 0.0 {
            return b;
        }
        if b.n == 0.0 {
            return a;
        }
        let n = a.n + b.n;
        let (dx, dy) = (b.mean_x - a.mean_x, b.mean_y - a.mean_y);
        let w = a.n * b.n / n;
        CoMoments {
            n,
            mean_x: a.mean_x + dx * b.n / n,
            mean_y: a.mean_y + dy * b.n / n,
            co: a.co + b.co + dx * dy * w,
            m2: a.m2 + b.m2 + dy * dy * w,
        }
    }
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Sample variance (ddof = 1); NaN below two values.
pub(crate) fn variance(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64
}

/// Bars on a Saturday or Sunday (UTC). The times are in order, so a bar's
/// day is worked out only when it leaves the day before (one comparison
/// per bar, not two divisions).
fn count_weekend(time: &[i64]) -> usize {
    let (mut day_end, mut weekend_day) = (i64::MIN, false);
    let mut count = 0;
    for &t in time {
        if t >= day_end || t < day_end - DAY_MS {
            let day = t.div_euclid(DAY_MS);
            day_end = (day + 1) * DAY_MS;
            weekend_day = weekday(t) >= 5;
        }
        count += usize::from(weekend_day);
    }
    count
}

/// Day of the week of a UTC time, Monday = 0 (1970-01-01 was a Thursday).
fn weekday(t: i64) -> i64 {
    (t.div_euclid(DAY_MS) + 3).rem_euclid(7)
}

fn group_key(group: Group, t: i64) -> i64 {
    let days = t.div_euclid(DAY_MS);
    match group {
        Group::Day => days,
        // 1970-01-05 was a Monday: weeks run Monday..Sunday.
        Group::Week => (days - 4).div_euclid(7),
        Group::Month => {
            let (y, m, _) = candlewick_market::time::civil_from_days(days);
            y * 12 + m
        }
        Group::Year => candlewick_market::time::civil_from_days(days).0,
    }
}

/// The times `[start, end)` of a day's or week's group `key`; an empty
/// span for months and years (their bars are few: each is keyed).
fn group_span(group: Group, key: i64) -> (i64, i64) {
    match group {
        Group::Day => (key * DAY_MS, (key + 1) * DAY_MS),
        Group::Week => ((key * 7 + 4) * DAY_MS, ((key + 1) * 7 + 4) * DAY_MS),
        Group::Month | Group::Year => (i64::MAX, i64::MIN),
    }
}

fn describe_ms(ms: i64) -> String {
    for (unit, name) in [(DAY_MS, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")] {
        if ms % unit == 0 {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_of_known_dates() {
        assert_eq!(weekday(0), 3); // Thursday
        assert_eq!(weekday(1_492_592_400_000), 2); // 2017-04-19, a Wednesday
    }

    #[test]
    fn daily_returns_use_the_last_equity_of_each_day() {
        let h = 3_600_000;
        let time = [0, h, DAY_MS, DAY_MS + h, 3 * DAY_MS];
        let equity = [100.0, 110.0, 90.0, 121.0, 133.1];
        let a = Annualisation::infer(&time, Some(h));
        let r = a.period_returns(&time, &equity);
        assert_eq!(r.len(), 2);
        assert!((r[0] - 0.1).abs() < 1e-12 && (r[1] - 0.1).abs() < 1e-12);
        assert_eq!(a.bar_interval, "1h");
    }

    #[test]
    fn weekend_bars_and_weekly_groups_agree_with_the_per_bar_rules() {
        // Four weeks of 7-hourly bars, from a Wednesday.
        let h = 3_600_000;
        let time: Vec<i64> = (0..96).map(|i| 1_699_999_200_000 + i * 7 * h).collect();
        let per_bar = time.iter().filter(|&&t| weekday(t) >= 5).count();
        assert!(per_bar > 10);
        assert_eq!(count_weekend(&time), per_bar);
        let equity: Vec<f64> = (0..96).map(|i| 100.0 + f64::from(i)).collect();
        for group in [Group::Day, Group::Week] {
            let mut lasts: Vec<(i64, f64)> = Vec::new();
            for (&t, &e) in time.iter().zip(&equity) {
                let key = group_key(group, t);
                match lasts.last_mut() {
                    Some(last) if last.0 == key => last.1 = e,
                    _ => lasts.push((key, e)),
                }
            }
            let want: Vec<f64> = lasts.windows(2).map(|w| w[1].1 / w[0].1 - 1.0).collect();
            let a = Annualisation {
                period: if group == Group::Day {
                    "daily"
                } else {
                    "weekly"
                },
                ..Annualisation::infer(&time, Some(7 * h))
            };
            assert_eq!(a.period_returns(&time, &equity), want, "{group:?}");
        }
    }

    #[test]
    fn beta_in_chunks_is_the_two_pass_value() {
        // Past three chunks, so that merged co-moments are checked too.
        let close: Vec<f64> = (0..200_000)
            .map(|i| 100.0 + (f64::from(i) / 13.0).sin() * 4.0)
            .collect();
        let equity: Vec<f64> = close
            .iter()
            .enumerate()
            .map(|(i, c)| 0.5 * c + 50.0 + (i % 7) as f64 * 0.01)
            .collect();
        let logs = |v: &[f64]| -> Vec<f64> { v.windows(2).map(|w| (w[1] / w[0]).ln()).collect() };
        let (e, m) = (logs(&equity), logs(&close));
        let (me, mm) = (mean(&e), mean(&m));
        let cov: f64 = e.iter().zip(&m).map(|(a, b)| (a - me) * (b - mm)).sum();
        let var: f64 = m.iter().map(|b| (b - mm) * (b - mm)).sum();
        let two_pass = cov / var;
        let one = beta(&equity, &close);
        assert!(
            (one - two_pass).abs() <= 1e-12 * two_pass.abs(),
            "{one} {two_pass}"
        );
        assert!(beta(&[1.0, 2.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn geometric_mean_rules() {
        assert!(geometric_mean(&[]).is_nan());
        assert_eq!(geometric_mean(&[0.5, -1.0]), 0.0);
        assert!((geometric_mean(&[0.1, 0.1]) - 0.1).abs() < 1e-15);
    }
}
