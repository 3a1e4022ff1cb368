//! Building blocks shared by the indicators: a fixed ring, TA-Lib's SMA
//! and EMA cores, and a monotonic deque for rolling extremes.
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

/// Which extreme a [`RollingExtreme`] tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Extreme {
    Max,
    Min,
}

/// Rolling maximum or minimum over the last `period` values, O(1)
/// amortised, by a monotonic deque held in a fixed ring.
///
/// Invariant: the deque's values are strictly monotonic from front to back
/// (decreasing for `Max`), and every index is within the window, so the
/// front is the extreme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RollingExtreme {
    kind: Extreme,
    period: u64,
    indices: Vec<u64>,
    values: Vec<f64>,
    head: usize,
    len: usize,
    /// Index the next pushed value will get.
    count: u64,
}

impl RollingExtreme {
    pub(crate) fn new(kind: Extreme, period: usize) -> Self {
        let cap = period.max(1);
        RollingExtreme {
            kind,
            period: cap as u64,
            indices: vec![0; cap],
            values: vec![0.0; cap],
            head: 0,
            len: 0,
            count: 0,
        }
    }

    /// Ring position of the `i`-th deque entry (`i <= len`); a compare,
    /// not a modulo, because this runs several times per update.
    #[inline]
    fn slot(&self, i: usize) -> usize {
        let at = self.head + i;
        if at >= self.values.len() {
            at - self.values.len()
        } else {
            at
        }
    }

    /// Adds `v` and returns the extreme of the window ending with it.
    #[inline]
    pub(crate) fn push(&mut self, v: f64) -> f64 {
        let idx = self.count;
        self.count += 1;
        if self.len > 0 && self.indices[self.head] + self.period <= idx {
            self.head = self.slot(1);
            self.len -= 1;
        }
        while self.len > 0 {
            let back = self.values[self.slot(self.len - 1)];
            let dominated = match self.kind {
                Extreme::Max => back <= v,
                Extreme::Min => back >= v,
            };
            if !dominated {
                break;
            }
            self.len -= 1;
        }
        let at = self.slot(self.len);
        self.indices[at] = idx;
        self.values[at] = v;
        self.len += 1;
        self.values[self.head]
    }

    /// Number of values pushed so far.
    #[inline]
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
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
    fn rolling_extremes_match_a_rescan() {
        let xs: Vec<f64> = (0..200)
            .map(|i| ((i * 7919) % 97) as f64 - (i % 5) as f64)
            .collect();
        for period in [1, 2, 5, 14] {
            let mut hi = RollingExtreme::new(Extreme::Max, period);
            let mut lo = RollingExtreme::new(Extreme::Min, period);
            for (i, &x) in xs.iter().enumerate() {
                let w = &xs[i.saturating_sub(period - 1)..=i];
                assert_eq!(hi.push(x), w.iter().cloned().fold(f64::MIN, f64::max));
                assert_eq!(lo.push(x), w.iter().cloned().fold(f64::MAX, f64::min));
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
