//! Building blocks shared by the indicators: a fixed ring, TA-Lib's SMA
//! and EMA cores, and a window's highest and lowest.
//!
//! Each allocates once, at construction, and never on update.

use serde::{Deserialize, Serialize};

/// TA-Lib 0.6's zero test: `|v| < 1e-14` (0.4 used 1e-8, which broke
/// low-priced assets).
#[inline]
pub(crate) fn is_zero(v: f64) -> bool {
    -1e-14 < v && v < 1e-14
}

/// TA-Lib's `TA_IS_ZERO_OR_NEG`.
#[inline]
pub(crate) fn is_zero_or_neg(v: f64) -> bool {
    v < 1e-14
}

/// TA-Lib's true range: `H - L`, widened to the previous close's gap.
#[inline]
pub(crate) fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    let mut out = high - low;
    let up = (high - prev_close).abs();
    if up > out {
        out = up;
    }
    let down = (low - prev_close).abs();
    if down > out {
        out = down;
    }
    out
}

/// A ring of the last `capacity` values.
///
/// Invariant: `slots.len() == capacity`; `next` is where the next value
/// goes, which is also the oldest value once the ring is full. Slot order
/// (not time order) is exposed by [`Ring::slots`] because TA-Lib's CCI
/// sums its circular buffer in slot order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ring {
    slots: Vec<f64>,
    next: usize,
    len: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Self {
        Ring {
            slots: vec![0.0; capacity.max(1)],
            next: 0,
            len: 0,
        }
    }

    /// Stores `v`, returning the value it displaced once the ring is full.
    #[inline]
    pub(crate) fn push(&mut self, v: f64) -> Option<f64> {
        let old = self.slots[self.next];
        self.slots[self.next] = v;
        self.next += 1;
        if self.next == self.slots.len() {
            self.next = 0;
        }
        if self.len == self.slots.len() {
            Some(old)
        } else {
            self.len += 1;
            None
        }
    }

    /// The oldest value held (meaningful once full).
    #[inline]
    pub(crate) fn oldest(&self) -> f64 {
        self.slots[self.next]
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len == self.slots.len()
    }

    pub(crate) fn slots(&self) -> &[f64] {
        &self.slots
    }
}

/// TA-Lib's simple moving average, in its operation order: the running
/// total gains the new value, is divided by N for the output, then loses
/// the value leaving the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SmaCore {
    period: usize,
    total: f64,
    window: Ring,
}

impl SmaCore {
    pub(crate) fn new(period: usize) -> Self {
        SmaCore {
            period,
            total: 0.0,
            window: Ring::new(period),
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, x: f64) -> Option<f64> {
        self.total += x;
        self.window.push(x);
        if !self.window.is_full() {
            return None;
        }
        let out = self.total / self.period as f64;
        self.total -= self.window.oldest();
        Some(out)
    }
}

/// TA-Lib's exponential moving average: seeded with the plain mean of the
/// first N values (summed left to right), then
/// `prev = (x - prev) * k + prev` with `k = 2 / (N + 1)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EmaCore {
    period: usize,
    k: f64,
    seen: usize,
    /// The seed's running sum until `seen == period`, then the EMA.
    value: f64,
}

impl EmaCore {
    pub(crate) fn new(period: usize) -> Self {
        EmaCore {
            period,
            k: 2.0 / (period as f64 + 1.0),
            seen: 0,
            value: 0.0,
        }
    }

    #[inline]
    pub(crate) fn update(&mut self, x: f64) -> Option<f64> {
        if self.seen < self.period {
            self.value += x;
            self.seen += 1;
            if self.seen < self.period {
                return None;
            }
            self.value /= self.period as f64;
            return Some(self.value);
        }
        self.value = (x - self.value) * self.k + self.value;
        Some(self.value)
    }
}

/// Highest and lowest of the last `period` (high, low) pairs, as the
/// stochastics and Williams %R use them.
///
/// Each update scans both rings with packed max/min compares: O(N) in the
/// period (like CCI), independent of the stream's length, with no
/// data-dependent branch. Two ways that keep the update O(1) amortised
/// were measured slower in the 10-indicator set (`benches/README.md`): a
/// monotonic deque, whose pops mispredict (the set took 87 ns a bar with
/// it against 70 with this scan), and TA-Lib's own tracked extreme with a
/// rescan when it leaves the window, whose new-extreme and rescan
/// branches mispredict (78 ns). Ties need no rule: the value is the same,
/// and the inputs are finite prices, so no signed zero can tie.
///
/// Invariant: both rings hold `period` slots; `next` is the slot of the
/// next pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Range {
    highs: Vec<f64>,
    lows: Vec<f64>,
    next: usize,
    /// Pairs pushed so far, up to `period`.
    seen: usize,
}

impl Range {
    pub(crate) fn new(period: usize) -> Self {
        let period = period.max(1);
        Range {
            highs: vec![0.0; period],
            lows: vec![0.0; period],
            next: 0,
            seen: 0,
        }
    }

    /// Adds one pair; `(highest, lowest)` of the window ending with it
    /// once `period` pairs have been seen.
    #[inline]
    pub(crate) fn push(&mut self, high: f64, low: f64) -> Option<(f64, f64)> {
        let period = self.highs.len();
        self.highs[self.next] = high;
        self.lows[self.next] = low;
        self.next += 1;
        if self.next == period {
            self.next = 0;
        }
        if self.seen < period {
            self.seen += 1;
            if self.seen < period {
                return None;
            }
        }
        Some((
            extreme(&self.highs, |v, best| v > best),
            extreme(&self.lows, |v, best| v < best),
        ))
    }
}

/// The value of `values` that no other `beats`, in four independent lanes
/// so that the compiler packs the compares (`maxpd` / `minpd`).
#[inline]
fn extreme(values: &[f64], beats: impl Fn(f64, f64) -> bool) -> f64 {
    let pick = |v: f64, best: f64| if beats(v, best) { v } else { best };
    let mut lanes = [values[0]; 4];
    let mut chunks = values.chunks_exact(4);
    for chunk in &mut chunks {
        lanes = [
            pick(chunk[0], lanes[0]),
            pick(chunk[1], lanes[1]),
            pick(chunk[2], lanes[2]),
            pick(chunk[3], lanes[3]),
        ];
    }
    for &v in chunks.remainder() {
        lanes[0] = pick(v, lanes[0]);
    }
    let [a, b, c, d] = lanes;
    pick(pick(b, a), pick(d, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_displaces_the_oldest() {
        let mut r = Ring::new(3);
        assert_eq!(r.push(1.0), None);
        assert_eq!(r.push(2.0), None);
        assert_eq!(r.push(3.0), None);
        assert_eq!(r.oldest(), 1.0);
        assert_eq!(r.push(4.0), Some(1.0));
        assert_eq!(r.oldest(), 2.0);
    }

    #[test]
    fn window_range_matches_a_rescan() {
        // Falling, rising, flat and repeated stretches, so that extremes
        // leave the window, tie, and are replaced.
        let xs: Vec<f64> = (0..300)
            .map(|i| match i / 60 {
                0 => ((i * 7919) % 97) as f64 - (i % 5) as f64,
                1 => 200.0 - i as f64,
                2 => i as f64,
                3 => 7.0,
                _ => ((i * 31) % 4) as f64,
            })
            .collect();
        for period in [1, 2, 5, 14] {
            let mut range = Range::new(period);
            for (i, &x) in xs.iter().enumerate() {
                let got = range.push(x, -x);
                if i + 1 < period {
                    assert_eq!(got, None);
                    continue;
                }
                let w = &xs[i + 1 - period..=i];
                let hh = w.iter().cloned().fold(f64::MIN, f64::max);
                let ll = w.iter().cloned().fold(f64::MAX, |a, v| a.min(-v));
                assert_eq!(got, Some((hh, ll)), "period {period}, bar {i}");
            }
        }
    }

    #[test]
    fn ema_is_seeded_with_the_mean() {
        let mut e = EmaCore::new(3);
        assert_eq!(e.update(1.0), None);
        assert_eq!(e.update(2.0), None);
        assert_eq!(e.update(3.0), Some(2.0));
        assert_eq!(e.update(4.0), Some(3.0));
    }
}
