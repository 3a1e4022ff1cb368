//! Hand-written SVG line charts: no dependency, no script.

use std::fmt::Write;

/// At most this many points per drawn series; longer series are reduced
/// to each bucket's minimum and maximum, so spikes stay visible.
const MAX_POINTS: usize = 2_000;

pub(crate) const WIDTH: f64 = 960.0;
const PAD_LEFT: f64 = 70.0;
const PAD_RIGHT: f64 = 10.0;
const PAD_Y: f64 = 14.0;

/// A series as drawn: all its finite points, or for a long series each
/// pixel bucket's minimum and maximum in order, so that no spike is lost.
/// Built in one pass over the values, without a copy of the series.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    /// The series' length (the x axis spans all of it).
    n: usize,
    /// `(index, value)`, finite values only, indices increasing.
    kept: Vec<(usize, f64)>,
}

impl Points {
    /// Reduces `n` values.
    pub(crate) fn of(n: usize, values: impl IntoIterator<Item = f64>) -> Points {
        let size = if n <= MAX_POINTS {
            1
        } else {
            n.div_ceil(MAX_POINTS / 2)
        };
        let mut kept = Vec::with_capacity(MAX_POINTS.min(n));
        let mut bucket = Bucket::default();
        // Values left in the current bucket.
        let mut left = 0;
        for (i, v) in values.into_iter().enumerate().take(n) {
            if left == 0 {
                bucket.flush(&mut kept);
                left = size;
            }
            left -= 1;
            if v.is_finite() {
                bucket.add(i, v);
            }
        }
        bucket.flush(&mut kept);
        Points { n, kept }
    }

    /// The lowest and highest value kept (those of the whole series).
    fn range(&self) -> Option<(f64, f64)> {
        let mut values = self.kept.iter().map(|&(_, v)| v);
        let first = values.next()?;
        Some(values.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))))
    }
}

/// One bucket's lowest and highest point so far.
#[derive(Debug, Default)]
struct Bucket {
    lo: Option<(usize, f64)>,
    hi: Option<(usize, f64)>,
}

impl Bucket {
    fn add(&mut self, i: usize, v: f64) {
        if self.lo.is_none_or(|(_, lo)| v < lo) {
            self.lo = Some((i, v));
        }
        if self.hi.is_none_or(|(_, hi)| v > hi) {
            self.hi = Some((i, v));
        }
    }

    /// Appends the bucket's points in index order and empties it.
    fn flush(&mut self, out: &mut Vec<(usize, f64)>) {
        if let (Some(lo), Some(hi)) = (self.lo.take(), self.hi.take()) {
            let (first, second) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            out.push(first);
            if second.0 != first.0 {
                out.push(second);
            }
        }
    }
}

/// Maps series indices and values to pixels of one plot area.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub n: usize,
    pub lo: f64,
    pub hi: f64,
    pub height: f64,
}

impl Frame {
    pub(crate) fn fit(points: &Points, height: f64) -> Frame {
        let (lo, hi) = match points.range() {
            Some((lo, hi)) if hi > lo => (lo, hi),
            Some((lo, _)) => (lo - 1.0, lo + 1.0),
            None => (0.0, 1.0),
        };
        Frame {
            n: points.n,
            lo,
            hi,
            height,
        }
    }

    pub(crate) fn x(&self, i: usize) -> f64 {
        let span = (self.n.max(2) - 1) as f64;
        PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * i as f64 / span
    }

    pub(crate) fn y(&self, v: f64) -> f64 {
        let inner = self.height - 2.0 * PAD_Y;
        PAD_Y + inner * (1.0 - (v - self.lo) / (self.hi - self.lo))
    }
}

/// Opens an `<svg>` of the given height with a y axis of 5 labelled ticks.
pub(crate) fn open(frame: &Frame, title: &str, fmt_tick: &dyn Fn(f64) -> String) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {h}" width="100%" role="img" aria-label="{title}">"##,
        h = frame.height
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{}" fill="#fff"/>"##,
        frame.height
    );
    for k in 0..=4 {
        let v = frame.lo + (frame.hi - frame.lo) * f64::from(k) / 4.0;
        let y = frame.y(v);
        let _ = write!(
            s,
            r##"<line x1="{PAD_LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#555">{label}</text>"##,
            x2 = WIDTH - PAD_RIGHT,
            tx = PAD_LEFT - 4.0,
            ty = y + 3.0,
            label = fmt_tick(v)
        );
    }
    s
}

/// A polyline of `points` in `frame`.
pub(crate) fn line(frame: &Frame, points: &Points, color: &str) -> String {
    let mut pts = String::with_capacity(16 * points.kept.len());
    for &(i, v) in &points.kept {
        let _ = write!(pts, "{:.1},{:.1} ", frame.x(i), frame.y(v));
    }
    format!(r##"<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>"##)
}

/// A filled area between `points` and the frame's top value (for
/// drawdowns, which are <= 0).
pub(crate) fn area_from_top(frame: &Frame, points: &Points, color: &str) -> String {
    let (Some(&(first, _)), Some(&(last, _))) = (points.kept.first(), points.kept.last()) else {
        return String::new();
    };
    let top = frame.y(frame.hi);
    let mut pts = String::with_capacity(16 * points.kept.len() + 32);
    let _ = write!(pts, "{:.1},{top:.1} ", frame.x(first));
    for &(i, v) in &points.kept {
        let _ = write!(pts, "{:.1},{:.1} ", frame.x(i), frame.y(v));
    }
    let _ = write!(pts, "{:.1},{top:.1}", frame.x(last));
    format!(
        r##"<polygon fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="0.8" points="{pts}"/>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_series_are_reduced_keeping_extremes() {
        let mut v: Vec<f64> = (0..100_000).map(|i| f64::from(i % 7)).collect();
        v[54_321] = 1_000.0;
        v[12_345] = -3.0;
        v[777] = f64::NAN;
        let points = Points::of(v.len(), v.iter().copied());
        let idx: Vec<usize> = points.kept.iter().map(|&(i, _)| i).collect();
        assert!(idx.len() <= MAX_POINTS);
        assert!(idx.contains(&54_321) && idx.contains(&12_345));
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert!(points.kept.iter().all(|&(i, x)| x == v[i] && x.is_finite()));
        // The frame spans the whole series, not only what is drawn.
        let frame = Frame::fit(&points, 100.0);
        assert_eq!((frame.n, frame.lo, frame.hi), (100_000, -3.0, 1_000.0));
    }

    #[test]
    fn short_series_keep_every_finite_point() {
        let v = [3.0, f64::INFINITY, 1.0, 2.0];
        let points = Points::of(v.len(), v);
        assert_eq!(points.kept, vec![(0, 3.0), (2, 1.0), (3, 2.0)]);
        assert_eq!(points.range(), Some((1.0, 3.0)));
    }
}
