//! Read-only views of the bar records the host wrote into the input buffer.

/// One bar: the candle and the values the manifest asked for.
///
/// Values are in manifest order: every column of each declared indicator
/// (a multi-output indicator such as `bbands(20,2)` gives three, `.upper`,
/// `.middle`, `.lower`), then each declared model output. While an indicator
/// warms up, or when a model has no output for the bar, its value is NaN and
/// the checked accessors ([`Bar::value`], [`Bar::indicator`], [`Bar::model`])
/// return `None`.
#[derive(Debug, Clone, Copy)]
pub struct Bar<'a> {
    index: usize,
    /// The record as little-endian 64-bit words: header (6 words), values.
    words: &'a [u64],
    /// Index (into the values) of the first model output.
    models_at: usize,
}

impl<'a> Bar<'a> {
    /// A view of one record; `words` is the whole record.
    pub(crate) fn new(index: usize, words: &'a [u64], models_at: usize) -> Self {
        Bar {
            index,
            words,
            models_at,
        }
    }

    /// Position of this bar in its batch (0-based).
    #[inline]
    pub fn index(&self) -> usize {
        self.index
    }

    /// Candle open time, ms since the Unix epoch, UTC.
    #[inline]
    pub fn time(&self) -> i64 {
        self.words[0] as i64
    }

    #[inline]
    pub fn open(&self) -> f64 {
        f64::from_bits(self.words[1])
    }

    #[inline]
    pub fn high(&self) -> f64 {
        f64::from_bits(self.words[2])
    }

    #[inline]
    pub fn low(&self) -> f64 {
        f64::from_bits(self.words[3])
    }

    #[inline]
    pub fn close(&self) -> f64 {
        f64::from_bits(self.words[4])
    }

    #[inline]
    pub fn volume(&self) -> f64 {
        f64::from_bits(self.words[5])
    }

    /// Number of values after the candle (indicator columns + model outputs).
    #[inline]
    pub fn n_values(&self) -> usize {
        self.words.len() - 6
    }

    /// The `i`-th value as stored: NaN while not ready; NaN also past the end.
    #[inline]
    pub fn raw_value(&self, i: usize) -> f64 {
        self.words
            .get(6 + i)
            .map_or(f64::NAN, |w| f64::from_bits(*w))
    }

    /// The `i`-th value, `None` while not ready (NaN) or past the end.
    #[inline]
    pub fn value(&self, i: usize) -> Option<f64> {
        let v = self.raw_value(i);
        (!v.is_nan()).then_some(v)
    }

    /// The `i`-th indicator column; `None` while warming up.
    #[inline]
    pub fn indicator(&self, i: usize) -> Option<f64> {
        if i < self.models_at {
            self.value(i)
        } else {
            None
        }
    }

    /// The `i`-th declared model output; `None` when absent for this bar.
    #[inline]
    pub fn model(&self, i: usize) -> Option<f64> {
        self.value(self.models_at + i)
    }
}

/// The bars of one batch, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Bars<'a> {
    words: &'a [u64],
    stride_words: usize,
    models_at: usize,
}

impl<'a> Bars<'a> {
    /// `words` holds whole records of `stride_words` words each.
    pub(crate) fn new(words: &'a [u64], stride_words: usize, models_at: usize) -> Self {
        Bars {
            words,
            stride_words,
            models_at,
        }
    }

    /// Number of bars.
    #[inline]
    pub fn len(&self) -> usize {
        self.words.len() / self.stride_words
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th bar, if there is one.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Bar<'a>> {
        let start = i.checked_mul(self.stride_words)?;
        let rec = self.words.get(start..start + self.stride_words)?;
        Some(Bar::new(i, rec, self.models_at))
    }

    /// The bars in order.
    pub fn iter(&self) -> impl Iterator<Item = Bar<'a>> + 'a {
        let models_at = self.models_at;
        self.words
            .chunks_exact(self.stride_words)
            .enumerate()
            .map(move |(i, rec)| Bar::new(i, rec, models_at))
    }
}
