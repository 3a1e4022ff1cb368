//! [`BarBatch`]: bar records laid out exactly as the guest reads them.

use candlewick_market::Candle;
use candlewick_sdk::abi;

/// A batch of bar records in ABI layout (`sdk/ABI.md`, "Bar record"), ready
/// to be copied into a guest in one `memcpy`.
///
/// Each record is the candle (time, OHLCV) followed by `n_values` values:
/// the plugin's indicator columns, then its model outputs, NaN where not
/// available.
#[derive(Debug, Clone)]
pub struct BarBatch {
    /// Invariant: `bytes.len() == len * stride`.
    bytes: Vec<u8>,
    stride: usize,
    n_values: usize,
    len: usize,
}

impl BarBatch {
    /// An empty batch of records with `n_values` values each.
    pub fn new(n_values: usize) -> Self {
        BarBatch {
            bytes: Vec::new(),
            stride: abi::bar_stride(n_values),
            n_values,
            len: 0,
        }
    }

    /// Appends one bar. `values` shorter than `n_values` is padded with NaN;
    /// extra values are ignored.
    #[inline]
    pub fn push(&mut self, candle: &Candle, values: &[f64]) {
        // The header in one copy: appending it word by word paid a
        // capacity check per word, on every bar of every backtest.
        let mut header = [0u8; abi::BAR_HEADER_SIZE];
        let words = [
            candle.open_time.to_le_bytes(),
            candle.open.to_le_bytes(),
            candle.high.to_le_bytes(),
            candle.low.to_le_bytes(),
            candle.close.to_le_bytes(),
            candle.volume.to_le_bytes(),
        ];
        for (slot, word) in header.chunks_exact_mut(8).zip(words) {
            slot.copy_from_slice(&word);
        }
        self.bytes.reserve(self.stride);
        self.bytes.extend_from_slice(&header);
        for i in 0..self.n_values {
            self.bytes
                .extend_from_slice(&values.get(i).copied().unwrap_or(f64::NAN).to_le_bytes());
        }
        self.len += 1;
    }

    /// Bars in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the batch, keeping its allocation.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.len = 0;
    }

    /// Values per bar.
    pub fn n_values(&self) -> usize {
        self.n_values
    }

    /// Bytes per record.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Open time of bar `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn time(&self, i: usize) -> i64 {
        let at = i * self.stride;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        i64::from_le_bytes(b)
    }

    /// The records of bars `first..first + n`.
    pub(crate) fn record_bytes(&self, first: usize, n: usize) -> &[u8] {
        &self.bytes[first * self.stride..(first + n) * self.stride]
    }

    /// All records.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
