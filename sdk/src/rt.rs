//! The guest runtime behind [`export_strategy!`](crate::export_strategy).
//! Not for direct use: public only so the macro's expansion can reach it.
//!
//! It owns the buffers of the ABI (scratch for `cw_alloc`, input, output,
//! snapshot) and the strategy instance, and turns each export into a safe
//! method call. All pointer work is here, so authors never see it.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use crate::abi::{self, ErrorCode, IoLayout, SignalRecord, ABI_VERSION, BAR_HEADER_SIZE};
use crate::manifest::Manifest;
use crate::{host, Bars, Params, Signals, Strategy};

/// A cell for the one runtime of a plugin module.
///
/// `Sync` only on `wasm32` without the `atomics` feature, where a module
/// instance has a single thread, so the contents cannot be reached from two
/// threads. Everywhere else the cell cannot be put in a `static`.
pub struct GuestCell<T>(UnsafeCell<T>);

// SAFETY: on wasm32 without atomics there are no threads: an instance runs
// one call at a time on one thread, so no data race is possible.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl<T> Sync for GuestCell<T> {}

impl<T> core::fmt::Debug for GuestCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("GuestCell(..)")
    }
}

impl<T> GuestCell<T> {
    pub const fn new(value: T) -> Self {
        GuestCell(UnsafeCell::new(value))
    }

    /// Runs `f` on the contents.
    ///
    /// # Safety
    /// No other reference to the contents may be live, i.e. calls must not
    /// nest. The exports are the only callers; the host calls them one at a
    /// time and never calls into the guest from an import, so they do not.
    pub unsafe fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: exclusivity is the caller's duty, stated above.
        f(unsafe { &mut *self.0.get() })
    }
}

/// A plugin's state between calls.
pub struct Runtime<S> {
    strategy: Option<S>,
    /// `cw_alloc`'s buffer; 8-aligned because it is made of `u64`s.
    scratch: Vec<u64>,
    params: Vec<f64>,
    /// Input records: `layout.input_capacity * stride_words` words.
    input: Vec<u64>,
    output: Vec<SignalRecord>,
    layout: IoLayout,
    stride_words: usize,
    models_at: usize,
    snapshot: Vec<u8>,
}

impl<S> core::fmt::Debug for Runtime<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Runtime")
            .field("initialised", &self.strategy.is_some())
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<S: Strategy> Default for Runtime<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Strategy> Runtime<S> {
    pub const fn new() -> Self {
        Runtime {
            strategy: None,
            scratch: Vec::new(),
            params: Vec::new(),
            input: Vec::new(),
            output: Vec::new(),
            layout: IoLayout {
                abi_version: ABI_VERSION,
                bar_stride: 0,
                input_ptr: 0,
                input_capacity: 0,
                output_ptr: 0,
                output_capacity: 0,
            },
            stride_words: 0,
            models_at: 0,
            snapshot: Vec::new(),
        }
    }

    /// `cw_alloc`: a scratch buffer of at least `len` bytes, replacing the last.
    pub fn alloc(&mut self, len: u32) -> u32 {
        self.scratch = vec![0u64; (len as usize).div_ceil(8)];
        addr(self.scratch.as_ptr())
    }

    /// The scratch bytes the host filled, if `(ptr, len)` names them.
    fn scratch_words(&self, ptr: u32, len: u32) -> Option<&[u64]> {
        let len = len as usize;
        if ptr != addr(self.scratch.as_ptr()) || len > self.scratch.len() * 8 || len % 8 != 0 {
            return None;
        }
        Some(&self.scratch[..len / 8])
    }

    /// `cw_init`.
    pub fn init(&mut self, manifest: &'static Manifest, ptr: u32, len: u32) -> i32 {
        let Some(words) = self.scratch_words(ptr, len) else {
            return ErrorCode::BadInput as i32;
        };
        let Some((&w0, rest)) = words.split_first() else {
            return ErrorCode::BadInput as i32;
        };
        let Some((&w1, values)) = rest.split_first() else {
            return ErrorCode::BadInput as i32;
        };
        let (version, n_values) = (w0 as u32, (w0 >> 32) as usize);
        let (n_params, n_models) = ((w1 as u32) as usize, (w1 >> 32) as usize);
        if version != ABI_VERSION || n_params != values.len() || n_models > n_values {
            return ErrorCode::BadInput as i32;
        }
        self.params = values.iter().map(|w| f64::from_bits(*w)).collect();
        let strategy = match S::init(&Params::new(manifest, &self.params)) {
            Ok(s) => s,
            Err(e) => {
                host::log(host::Level::Error, e.message());
                return ErrorCode::InitFailed as i32;
            }
        };
        self.strategy = Some(strategy);
        self.stride_words = abi::bar_stride(n_values) / 8;
        self.models_at = n_values - n_models;
        let capacity = S::BATCH_CAPACITY.max(1);
        self.input = vec![0u64; capacity * self.stride_words];
        self.output = vec![SignalRecord::default(); capacity];
        self.layout = IoLayout {
            abi_version: ABI_VERSION,
            bar_stride: (BAR_HEADER_SIZE + 8 * n_values) as u32,
            input_ptr: addr(self.input.as_ptr()),
            input_capacity: capacity as u32,
            output_ptr: addr(self.output.as_ptr()),
            output_capacity: capacity as u32,
        };
        0
    }

    /// `cw_io_layout`: the layout's address (stable: the runtime is a static).
    pub fn io_layout(&self) -> u32 {
        addr(&self.layout as *const IoLayout)
    }

    /// `cw_on_batch`.
    #[inline]
    pub fn on_batch(&mut self, n: u32) -> i32 {
        let Some(strategy) = self.strategy.as_mut() else {
            return ErrorCode::NotInitialised as i32;
        };
        let n = n as usize;
        if n > self.output.len() {
            return ErrorCode::BatchTooLarge as i32;
        }
        let bars = Bars::new(
            &self.input[..n * self.stride_words],
            self.stride_words,
            self.models_at,
        );
        let mut out = Signals::new(&mut self.output);
        strategy.on_batch(&bars, &mut out);
        out.len() as i32
    }

    /// `cw_snapshot`: `(len << 32) | ptr`, or a negative code.
    pub fn snapshot(&mut self) -> i64 {
        let Some(strategy) = self.strategy.as_ref() else {
            return ErrorCode::NotInitialised as i64;
        };
        match strategy.snapshot() {
            Some(bytes) if bytes.len() <= i32::MAX as usize => {
                self.snapshot = bytes;
                ((self.snapshot.len() as i64) << 32) | i64::from(addr(self.snapshot.as_ptr()))
            }
            Some(_) => ErrorCode::BadInput as i64,
            None => ErrorCode::SnapshotUnsupported as i64,
        }
    }

    /// `cw_restore`.
    pub fn restore(&mut self, ptr: u32, len: u32) -> i32 {
        let Some(strategy) = self.strategy.as_mut() else {
            return ErrorCode::NotInitialised as i32;
        };
        let n = len as usize;
        if ptr != addr(self.scratch.as_ptr()) || n > self.scratch.len() * 8 {
            return ErrorCode::BadInput as i32;
        }
        let bytes: Vec<u8> = self
            .scratch
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(n)
            .collect();
        match strategy.restore(&bytes) {
            Ok(()) => 0,
            Err(_) => ErrorCode::RestoreRejected as i32,
        }
    }
}

/// The wasm32 address of `p` (pointers are 32-bit there; the runtime's
/// exports exist only on wasm32).
fn addr<T>(p: *const T) -> u32 {
    p as usize as u32
}
