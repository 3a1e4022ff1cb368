//! Parameter sweeps: a grid of runs in parallel, ranked by a statistic.
//!
//! `fast=5..50:5` is the values 5, 10, ..., 50 (both ends included);
//! `fast=5..50` steps by 1; `fast=7` is one value; `fast=3,5,8` a list.
//! The grid is the product of all ranges. Each point is an independent
//! run (its own strategy instance, indicators and broker), so the points
//! run on all cores with rayon and the result does not depend on the
//! thread count: rows are ranked by the statistic, ties broken by grid
//! order.

use std::fmt::Write;

use rayon::prelude::*;

use crate::error::RunError;
use crate::result::RunResult;
use crate::stats::Stats;

/// Most points a sweep may have (a typo like `1..1000000` should fail fast).
pub const MAX_POINTS: usize = 100_000;

/// A `--param` that is a range or list of values.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRange {
    pub name: String,
    pub values: Vec<f64>,
}

/// A `--param` that cannot be read as a range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--param {text:?}: {reason}")]
pub struct RangeError {
    pub text: String,
    pub reason: String,
}

impl ParamRange {
    /// Parses `name=a..b[:step]`, `name=v` or `name=v1,v2,...`.
    ///
    /// # Errors
    /// A missing `=`, a value that is not a number, a step that is not
    /// positive, an empty range, or more than [`MAX_POINTS`] values.
    pub fn parse(text: &str) -> Result<Self, RangeError> {
        let err = |reason: &str| RangeError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, spec) = text
            .split_once('=')
            .ok_or_else(|| err("expected name=value"))?;
        let num = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(&format!("{s:?} is not a finite number")))
        };
        let values = if let Some((from, rest)) = spec.split_once("..") {
            let (to, step) = match rest.split_once(':') {
                Some((to, step)) => (num(to)?, num(step)?),
                None => (num(rest)?, 1.0),
            };
            let from = num(from)?;
            if step <= 0.0 {
                return Err(err("the step must be > 0"));
            }
            if to < from {
                return Err(err("the range is empty (end before start)"));
            }
            let count = ((to - from) / step + 1e-9).floor() + 1.0;
            if count > MAX_POINTS as f64 {
                return Err(err("too many values"));
            }
            (0..count as usize)
                .map(|k| from + step * k as f64)
                .collect()
        } else {
            spec.split(',').map(num).collect::<Result<Vec<_>, _>>()?
        };
        Ok(ParamRange {
            name: name.trim().to_owned(),
            values,
        })
    }

    /// Whether this is a single value (an ordinary `--param`).
    pub fn is_single(&self) -> bool {
        self.values.len() == 1
    }
}

/// One point of the grid: `(name, value)` in the order the ranges came.
pub type Point = Vec<(String, f64)>;

/// The product of the ranges, the last range varying fastest.
///
/// # Errors
/// More than [`MAX_POINTS`] points.
pub fn grid(ranges: &[ParamRange]) -> Result<Vec<Point>, RangeError> {
    let total = ranges
        .iter()
        .map(|r| r.values.len())
        .try_fold(1_usize, usize::checked_mul);
    if total.is_none_or(|t| t > MAX_POINTS) {
        return Err(RangeError {
            text: ranges
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(" x "),
            reason: format!("the grid has more than {MAX_POINTS} points"),
        });
    }
    let mut points: Vec<Point> = vec![Vec::new()];
    for r in ranges {
        points = points
            .into_iter()
            .flat_map(|p| {
                r.values.iter().map(move |&v| {
                    let mut q = p.clone();
                    q.push((r.name.clone(), v));
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

/// One finished point.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub point: Point,
    /// The statistic ranked by (NaN when undefined or failed).
    pub score: f64,
    pub outcome: Result<Stats, String>,
}

/// Runs `job` at every point in parallel and ranks by `rank_by`, a
/// statistic's backtesting.py name; best first (highest, or lowest when
/// `minimise`). Failed points and NaN scores sort last.
///
/// # Errors
/// `rank_by` is not a numeric statistic.
pub fn sweep<F>(
    points: Vec<Point>,
    rank_by: &str,
    minimise: bool,
    job: F,
) -> Result<Vec<SweepRow>, RangeError>
where
    F: Fn(&Point) -> Result<RunResult, RunError> + Sync,
{
    if !Stats::numeric_names().iter().any(|n| n == rank_by) {
        return Err(RangeError {
            text: rank_by.to_owned(),
            reason: format!(
                "not a numeric statistic; one of: {}",
                Stats::numeric_names().join(", ")
            ),
        });
    }
    let mut rows: Vec<(usize, SweepRow)> = points
        .into_par_iter()
        .enumerate()
        .map(|(i, point)| {
            let outcome = job(&point).map(|r| r.stats).map_err(|e| e.to_string());
            let score = outcome
                .as_ref()
                .ok()
                .and_then(|s| s.get(rank_by))
                .unwrap_or(f64::NAN);
            (
                i,
                SweepRow {
                    point,
                    score,
                    outcome,
                },
            )
        })
        .collect();
    let key = |s: f64| if minimise { s } else { -s };
    rows.sort_by(
        |(ia, a), (ib, b)| match (a.score.is_nan(), b.score.is_nan()) {
            (false, false) => key(a.score).total_cmp(&key(b.score)).then(ia.cmp(ib)),
            (x, y) => x.cmp(&y).then(ia.cmp(ib)),
        },
    );
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// The ranked rows as CSV: parameters, the score, return, drawdown,
/// trades, Sharpe, and an error column.
pub fn to_csv(rows: &[SweepRow], rank_by: &str) -> String {
    let mut s = String::new();
    if let Some(first) = rows.first() {
        for (name, _) in &first.point {
            let _ = write!(s, "{name},");
        }
    }
    let _ = writeln!(
        s,
        "rank,\"{rank_by}\",Return [%],Max. Drawdown [%],# Trades,Sharpe Ratio,error"
    );
    for (rank, row) in rows.iter().enumerate() {
        for (_, v) in &row.point {
            let _ = write!(s, "{v},");
        }
        match &row.outcome {
            Ok(st) => {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},",
                    rank + 1,
                    row.score,
                    st.return_pct,
                    st.max_drawdown_pct,
                    st.trades,
                    st.sharpe
                );
            }
            Err(e) => {
                let _ = writeln!(s, "{},,,,,,\"{}\"", rank + 1, e.replace('"', "'"));
            }
        }
    }
    s
}

/// A heat map (SVG) of the score over the first two parameters; other
/// parameters are reduced by taking the best score. `None` unless there
/// are at least two parameters.
pub fn heatmap_svg(rows: &[SweepRow], rank_by: &str, minimise: bool) -> Option<String> {
    let first = rows.first()?;
    if first.point.len() < 2 {
        return None;
    }
    let axis = |k: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r.point[k].1).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let (xs, ys) = (axis(0), axis(1));
    let better = |a: f64, b: f64| if minimise { a < b } else { a > b };
    let mut cells = vec![f64::NAN; xs.len() * ys.len()];
    for r in rows {
        let xi = xs.iter().position(|&v| v == r.point[0].1)?;
        let yi = ys.iter().position(|&v| v == r.point[1].1)?;
        let c = &mut cells[yi * xs.len() + xi];
        if !r.score.is_nan() && (c.is_nan() || better(r.score, *c)) {
            *c = r.score;
        }
    }
    let finite = cells.iter().copied().filter(|v| v.is_finite());
    let lo = finite.clone().fold(f64::INFINITY, f64::min);
    let hi = finite.fold(f64::NEG_INFINITY, f64::max);
    let (cw, ch, left, top) = (44.0, 22.0, 60.0, 30.0);
    let width = left + cw * xs.len() as f64 + 10.0;
    let height = top + ch * ys.len() as f64 + 30.0;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" font-family="sans-serif" font-size="10"><text x="{left}" y="14" font-size="12">{} by {} (x) and {} (y)</text>"##,
        rank_by, first.point[0].0, first.point[1].0
    );
    for (yi, y) in ys.iter().enumerate() {
        let py = top + ch * yi as f64;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end">{y}</text>"##,
            left - 4.0,
            py + 14.0
        );
        for (xi, _) in xs.iter().enumerate() {
            let v = cells[yi * xs.len() + xi];
            let px = left + cw * xi as f64;
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            let t = if minimise { 1.0 - t } else { t };
            let fill = if v.is_finite() {
                format!(
                    "rgb({},{},{})",
                    (230.0 - 200.0 * t) as u8,
                    (80.0 + 120.0 * t) as u8,
                    90
                )
            } else {
                "#ddd".to_owned()
            };
            let _ = write!(
                s,
                r##"<rect x="{px}" y="{py}" width="{cw}" height="{ch}" fill="{fill}" stroke="#fff"><title>{v}</title></rect><text x="{}" y="{}" text-anchor="middle" font-size="9">{}</text>"##,
                px + cw / 2.0,
                py + 14.0,
                if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    "-".to_owned()
                }
            );
        }
    }
    let base = top + ch * ys.len() as f64 + 14.0;
    for (xi, x) in xs.iter().enumerate() {
        let _ = write!(
            s,
            r##"<text x="{}" y="{base}" text-anchor="middle">{x}</text>"##,
            left + cw * xi as f64 + cw / 2.0
        );
    }
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_lists_and_single_values() {
        let r = ParamRange::parse("fast=5..50:5").unwrap();
        assert_eq!(r.name, "fast");
        assert_eq!(
            r.values,
            (1..=10).map(|k| f64::from(k * 5)).collect::<Vec<_>>()
        );
        assert_eq!(ParamRange::parse("slow=3,5").unwrap().values, [3.0, 5.0]);
        assert!(ParamRange::parse("x=7").unwrap().is_single());
        assert_eq!(
            ParamRange::parse("x=0.5..1:0.25").unwrap().values,
            [0.5, 0.75, 1.0]
        );
        assert!(ParamRange::parse("fast").is_err());
        assert!(ParamRange::parse("fast=5..1").is_err());
        assert!(ParamRange::parse("fast=1..5:0").is_err());
        assert!(ParamRange::parse("fast=a").is_err());
    }

    #[test]
    fn grid_is_the_product_last_fastest() {
        let g = grid(&[
            ParamRange::parse("a=1,2").unwrap(),
            ParamRange::parse("b=3,4").unwrap(),
        ])
        .unwrap();
        let flat: Vec<(f64, f64)> = g.iter().map(|p| (p[0].1, p[1].1)).collect();
        assert_eq!(flat, [(1.0, 3.0), (1.0, 4.0), (2.0, 3.0), (2.0, 4.0)]);
        assert!(grid(&[
            ParamRange::parse("a=1..1000").unwrap(),
            ParamRange::parse("b=1..1000").unwrap()
        ])
        .is_err());
    }
}
