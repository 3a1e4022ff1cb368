//! Hand-written SVG line charts: no dependency, no script.

use std::fmt::Write;

/// At most this many points per drawn series; longer series are reduced
/// to each bucket's minimum and maximum, so spikes stay visible.
const MAX_POINTS: usize = 2_000;

pub(crate) const WIDTH: f64 = 960.0;
const PAD_LEFT: f64 = 70.0;
const PAD_RIGHT: f64 = 10.0;
const PAD_Y: f64 = 14.0;

/// Maps series indices and values to pixels of one plot area.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub n: usize,
    pub lo: f64,
    pub hi: f64,
    pub height: f64,
}

impl Frame {
    pub(crate) fn fit(values: &[f64], height: f64) -> Frame {
        let finite = values.iter().copied().filter(|v| v.is_finite());
        let lo = finite.clone().fold(f64::INFINITY, f64::min);
        let hi = finite.fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = match (lo.is_finite(), hi > lo) {
            (true, true) => (lo, hi),
            (true, false) => (lo - 1.0, lo + 1.0),
            _ => (0.0, 1.0),
        };
        Frame {
            n: values.len(),
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

/// Indices to draw: all of them, or each bucket's min and max in order.
fn reduced(values: &[f64]) -> Vec<usize> {
    if values.len() <= MAX_POINTS {
        return (0..values.len()).collect();
    }
    let buckets = MAX_POINTS / 2;
    let size = values.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(MAX_POINTS);
    for start in (0..values.len()).step_by(size) {
        let end = (start + size).min(values.len());
        let (mut lo, mut hi) = (start, start);
        for i in start..end {
            if values[i] < values[lo] {
                lo = i;
            }
            if values[i] > values[hi] {
                hi = i;
            }
        }
        out.push(lo.min(hi));
        out.push(lo.max(hi));
    }
    out.dedup();
    out
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

/// A polyline of `values` in `frame`.
pub(crate) fn line(frame: &Frame, values: &[f64], color: &str) -> String {
    let mut pts = String::new();
    for i in reduced(values) {
        if values[i].is_finite() {
            let _ = write!(pts, "{:.1},{:.1} ", frame.x(i), frame.y(values[i]));
        }
    }
    format!(r##"<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{pts}"/>"##)
}

/// A filled area between `values` and the frame's top value (for
/// drawdowns, which are <= 0).
pub(crate) fn area_from_top(frame: &Frame, values: &[f64], color: &str) -> String {
    let idx = reduced(values);
    let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
        return String::new();
    };
    let top = frame.y(frame.hi);
    let mut pts = format!("{:.1},{top:.1} ", frame.x(first));
    for i in idx {
        let _ = write!(pts, "{:.1},{:.1} ", frame.x(i), frame.y(values[i]));
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
        let idx = reduced(&v);
        assert!(idx.len() <= MAX_POINTS);
        assert!(idx.contains(&54_321));
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
    }
}
