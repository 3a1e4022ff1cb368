//! The three things a plugin may ask of the host: log, metric, event time.
//!
//! Outside WebAssembly (a strategy's unit tests on the build machine) these
//! do nothing and [`now_ms`] returns 0.

/// Severity of a [`log`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    const fn code(self) -> i32 {
        use crate::abi::level;
        match self {
            Level::Error => level::ERROR,
            Level::Warn => level::WARN,
            Level::Info => level::INFO,
            Level::Debug => level::DEBUG,
            Level::Trace => level::TRACE,
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod ffi {
    #[link(wasm_import_module = "cw")]
    unsafe extern "C" {
        pub fn log(level: i32, ptr: *const u8, len: usize);
        pub fn metric(name_ptr: *const u8, name_len: usize, value: f64);
        pub fn now_ms() -> i64;
    }
}

/// Sends one line to the engine's log, tagged with the plugin's name.
/// The host truncates long lines and limits how many lines a call may log.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host reads `len` bytes at `ptr`, which `message` owns for
    // the duration of the call; the import has exactly this signature.
    unsafe {
        ffi::log(level.code(), message.as_ptr(), message.len())
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level.code(), message);
}

/// Sets the plugin's gauge `name` to `value` (exported with the engine's metrics).
pub fn metric(name: &str, value: f64) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: as for `log`: `name` outlives the call and is only read.
    unsafe {
        ffi::metric(name.as_ptr(), name.len(), value)
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, value);
}

/// The event time of the current call, ms since the Unix epoch: the engine's
/// clock, which is simulated (and deterministic) in a backtest. Not the wall
/// clock.
pub fn now_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: a plain host call with no arguments.
    return unsafe { ffi::now_ms() };
    #[cfg(not(target_arch = "wasm32"))]
    0
}
