//! ABI v1: the records and numbers that host and guest share.
//!
//! Everything here is plain `#[repr(C)]` data, little-endian (WebAssembly is
//! little-endian, and so is every host Candlewick runs on). The host reads and
//! writes these records straight into the guest's linear memory; nothing on
//! the hot path is serialised. `sdk/ABI.md` is the normative, language-neutral
//! description: this module is its Rust transcription, and the size asserts
//! at the bottom keep the two from drifting apart.
//!
//! The life of a plugin instance, as the host drives it:
//!
//! 1. `cw_abi_version()` must return [`ABI_VERSION`].
//! 2. `cw_alloc(len)` returns a guest buffer; the host writes an [`InitHeader`]
//!    followed by one `f64` per declared parameter, then calls
//!    `cw_init(ptr, len)`.
//! 3. `cw_io_layout()` returns the address of an [`IoLayout`] naming the input
//!    (bar records) and output ([`SignalRecord`]s) buffers.
//! 4. Per batch: the host writes `n` bar records (each [`BarHeader`] followed
//!    by `n_values` `f64`s) at `input_ptr` and calls `cw_on_batch(n)`, which
//!    returns the number of signal records written at `output_ptr`.
//! 5. Optionally `cw_snapshot()` / `cw_restore(ptr, len)` carry state across a
//!    restart or a hot reload.

/// The ABI version this SDK speaks; `cw_abi_version()` returns it.
pub const ABI_VERSION: u32 = 1;

/// Module name of every host import (`log`, `metric`, `now_ms`).
pub const IMPORT_MODULE: &str = "cw";

/// Name of the custom section holding the manifest (UTF-8 JSON).
pub const MANIFEST_SECTION: &str = "cw_manifest";

/// Export names, in the order the host calls them.
pub mod exports {
    /// `() -> i32`: must return [`super::ABI_VERSION`].
    pub const ABI_VERSION: &str = "cw_abi_version";
    /// `(len: i32) -> i32`: address of a guest buffer of at least `len` bytes, 8-aligned; 0 on failure.
    pub const ALLOC: &str = "cw_alloc";
    /// `(ptr: i32, len: i32) -> i32`: 0, or a negative [`super::ErrorCode`].
    pub const INIT: &str = "cw_init";
    /// `() -> i32`: address of an [`super::IoLayout`].
    pub const IO_LAYOUT: &str = "cw_io_layout";
    /// `(n_bars: i32) -> i32`: signals written, or a negative [`super::ErrorCode`].
    pub const ON_BATCH: &str = "cw_on_batch";
    /// Optional. `() -> i64`: `(len << 32) | ptr`, or a negative [`super::ErrorCode`].
    pub const SNAPSHOT: &str = "cw_snapshot";
    /// Optional. `(ptr: i32, len: i32) -> i32`: 0, or a negative [`super::ErrorCode`].
    pub const RESTORE: &str = "cw_restore";
    /// The guest's linear memory.
    pub const MEMORY: &str = "memory";
}

/// Import names (module [`IMPORT_MODULE`](super::abi::IMPORT_MODULE)).
pub mod imports {
    /// `(level: i32, ptr: i32, len: i32) -> ()`: one UTF-8 log line.
    pub const LOG: &str = "log";
    /// `(name_ptr: i32, name_len: i32, value: f64) -> ()`: set a gauge.
    pub const METRIC: &str = "metric";
    /// `() -> i64`: the event time of the current call, ms since the Unix epoch.
    pub const NOW_MS: &str = "now_ms";
}

/// Log levels for the `log` import.
pub mod level {
    pub const ERROR: i32 = 0;
    pub const WARN: i32 = 1;
    pub const INFO: i32 = 2;
    pub const DEBUG: i32 = 3;
    pub const TRACE: i32 = 4;
}

/// Negative return codes of the exports. Any negative value is a failure; the
/// named ones let the host say why.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The init block or a buffer handed in was malformed.
    BadInput = -1,
    /// The strategy refused its parameters.
    InitFailed = -2,
    /// Called before a successful `cw_init`.
    NotInitialised = -3,
    /// `n_bars` exceeded the input capacity.
    BatchTooLarge = -4,
    /// `cw_restore` did not accept the snapshot.
    RestoreRejected = -5,
    /// The strategy keeps no snapshot.
    SnapshotUnsupported = -6,
}

impl ErrorCode {
    /// The code for a raw return value, if it is one of the named codes.
    pub const fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            -1 => Self::BadInput,
            -2 => Self::InitFailed,
            -3 => Self::NotInitialised,
            -4 => Self::BatchTooLarge,
            -5 => Self::RestoreRejected,
            -6 => Self::SnapshotUnsupported,
            _ => return None,
        })
    }
}

/// The head of the block handed to `cw_init`; `n_params` little-endian `f64`
/// parameter values follow it, in manifest order.
///
/// Parameter values are already validated and defaulted by the host: an
/// `int` is an exact integer, a `bool` is 0.0 or 1.0.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InitHeader {
    /// Always [`ABI_VERSION`].
    pub abi_version: u32,
    /// `f64` values after each [`BarHeader`]: declared indicator columns, then model outputs.
    pub n_values: u32,
    /// Parameter values following this header.
    pub n_params: u32,
    /// How many of the `n_values` (the last ones) are model outputs.
    pub n_models: u32,
}

/// Where the guest's buffers are. Returned (by address) from `cw_io_layout`,
/// valid from a successful `cw_init` on and never moved afterwards.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoLayout {
    /// Always [`ABI_VERSION`].
    pub abi_version: u32,
    /// Bytes per bar record: `size_of::<BarHeader>() + 8 * n_values`.
    pub bar_stride: u32,
    /// Address of the input buffer (8-aligned).
    pub input_ptr: u32,
    /// Bars the input buffer holds; the host never passes more in one call.
    pub input_capacity: u32,
    /// Address of the output buffer (8-aligned).
    pub output_ptr: u32,
    /// Signal records the output buffer holds.
    pub output_capacity: u32,
}

/// The fixed head of each bar record; `n_values` `f64`s follow.
///
/// A value of NaN means "not available yet": an indicator still warming up,
/// or a model output not produced for this bar.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BarHeader {
    /// Candle open time, ms since the Unix epoch, UTC.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// Bytes in a [`BarHeader`].
pub const BAR_HEADER_SIZE: usize = 48;

/// Bytes per bar record with `n_values` trailing values.
pub const fn bar_stride(n_values: usize) -> usize {
    BAR_HEADER_SIZE + 8 * n_values
}

/// What a signal asks for. Stored as `u32` in [`SignalRecord::action`].
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Hold = 0,
    Buy = 1,
    Sell = 2,
    Exit = 3,
}

impl Action {
    /// The action for a raw record value; `None` when out of range.
    pub const fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Hold,
            1 => Self::Buy,
            2 => Self::Sell,
            3 => Self::Exit,
            _ => return None,
        })
    }

    /// The lower-case name used in the feed (`"buy"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Buy => "buy",
            Self::Sell => "sell",
            Self::Exit => "exit",
        }
    }
}

/// One signal as the guest writes it. The host treats every field as
/// untrusted and checks it (see `ABI.md`, "Output validation").
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SignalRecord {
    /// Index of the bar in this batch the signal is for; strictly increasing
    /// across the records of one call.
    pub bar: u32,
    /// An [`Action`] as `u32`.
    pub action: u32,
    /// Conviction, finite, in `[-1, 1]`.
    pub strength: f64,
    /// Stop-loss price, or NaN for none. Otherwise finite and > 0.
    pub stop_loss: f64,
    /// Take-profit price, or NaN for none. Otherwise finite and > 0.
    pub take_profit: f64,
    /// Free for the strategy (a reason code); passed through.
    pub tag: u32,
    /// Zero.
    pub reserved: u32,
}

/// Bytes in a [`SignalRecord`].
pub const SIGNAL_RECORD_SIZE: usize = 40;
/// Bytes in an [`IoLayout`].
pub const IO_LAYOUT_SIZE: usize = 24;
/// Bytes in an [`InitHeader`].
pub const INIT_HEADER_SIZE: usize = 16;

const _: () = {
    assert!(core::mem::size_of::<BarHeader>() == BAR_HEADER_SIZE);
    assert!(core::mem::size_of::<SignalRecord>() == SIGNAL_RECORD_SIZE);
    assert!(core::mem::align_of::<SignalRecord>() == 8);
    assert!(core::mem::size_of::<IoLayout>() == IO_LAYOUT_SIZE);
    assert!(core::mem::size_of::<InitHeader>() == INIT_HEADER_SIZE);
};

impl SignalRecord {
    /// Decodes a record from its 40 little-endian bytes.
    pub fn from_le_bytes(b: &[u8; SIGNAL_RECORD_SIZE]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let f64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            f64::from_le_bytes(w)
        };
        SignalRecord {
            bar: u32_at(0),
            action: u32_at(4),
            strength: f64_at(8),
            stop_loss: f64_at(16),
            take_profit: f64_at(24),
            tag: u32_at(32),
            reserved: u32_at(36),
        }
    }

    /// Encodes the record as 40 little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; SIGNAL_RECORD_SIZE] {
        let mut b = [0u8; SIGNAL_RECORD_SIZE];
        b[0..4].copy_from_slice(&self.bar.to_le_bytes());
        b[4..8].copy_from_slice(&self.action.to_le_bytes());
        b[8..16].copy_from_slice(&self.strength.to_le_bytes());
        b[16..24].copy_from_slice(&self.stop_loss.to_le_bytes());
        b[24..32].copy_from_slice(&self.take_profit.to_le_bytes());
        b[32..36].copy_from_slice(&self.tag.to_le_bytes());
        b[36..40].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }
}

impl IoLayout {
    /// Decodes a layout from its 24 little-endian bytes.
    pub fn from_le_bytes(b: &[u8; IO_LAYOUT_SIZE]) -> Self {
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        IoLayout {
            abi_version: u(0),
            bar_stride: u(4),
            input_ptr: u(8),
            input_capacity: u(12),
            output_ptr: u(16),
            output_capacity: u(20),
        }
    }
}

impl InitHeader {
    /// Encodes the header as 16 little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; INIT_HEADER_SIZE] {
        let mut b = [0u8; INIT_HEADER_SIZE];
        b[0..4].copy_from_slice(&self.abi_version.to_le_bytes());
        b[4..8].copy_from_slice(&self.n_values.to_le_bytes());
        b[8..12].copy_from_slice(&self.n_params.to_le_bytes());
        b[12..16].copy_from_slice(&self.n_models.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_record_round_trips_through_bytes() {
        let r = SignalRecord {
            bar: 7,
            action: Action::Sell as u32,
            strength: -0.25,
            stop_loss: f64::NAN,
            take_profit: 101.5,
            tag: 42,
            reserved: 0,
        };
        let back = SignalRecord::from_le_bytes(&r.to_le_bytes());
        assert_eq!(back.bar, 7);
        assert_eq!(back.strength, -0.25);
        assert!(back.stop_loss.is_nan());
        assert_eq!(back.take_profit, 101.5);
        assert_eq!(back.tag, 42);
    }

    #[test]
    fn stride_of_two_values_is_the_64_byte_record() {
        assert_eq!(bar_stride(2), 64);
    }

    #[test]
    fn actions_round_trip_and_out_of_range_is_none() {
        for a in [Action::Hold, Action::Buy, Action::Sell, Action::Exit] {
            assert_eq!(Action::from_u32(a as u32), Some(a));
        }
        assert_eq!(Action::from_u32(4), None);
    }
}
