//! # The plugin host
//!
//! Strategies are WebAssembly modules written against ABI v1 (`sdk/ABI.md`,
//! usually with the `candlewick-sdk` crate). This crate runs them: an
//! author's bug or a hostile module can cost at most its own signals, never
//! the engine's health or another plugin's.
//!
//! ## A plugin's life
//!
//! 1. **Load** ([`PluginHost::load`]): the manifest is read from the
//!    `cw_manifest` section and checked; the module is compiled once per
//!    content hash (cached in memory, and on disk with
//!    [`HostConfig::cache_dir`]); any import other than `cw.log`,
//!    `cw.metric`, `cw.now_ms` is refused, naming it.
//! 2. **Instantiate** ([`PluginRunner::new`], or [`PluginHost::instantiate`]
//!    for the bare instance): `--param` overrides are type- and range-checked
//!    against the manifest (an error names the parameter); the ABI version
//!    must be 1; the exports must exist with their types; `cw_init` must
//!    accept the parameters; the io layout must lie inside memory.
//! 3. **Run** ([`PluginRunner::push`], [`PluginRunner::flush`]): the host
//!    computes the indicators the manifest asks for, copies the batch's bar
//!    records into the guest in one copy, calls `cw_on_batch` once, and
//!    validates every signal record (bar in range and in order, action
//!    known, strength finite in `[-1, 1]`, stops positive or absent).
//! 4. **Quarantine**: a trap, a missed deadline (epoch interruption), the
//!    memory cap, a stack overflow, or invalid output drops the instance. It
//!    is logged once and counted ([`PluginStats`]); after a bounded
//!    exponential backoff ([`RestartPolicy`]) the plugin is re-instantiated
//!    from its last snapshot. Bars arriving meanwhile are skipped.
//! 5. **Reload** ([`PluginRunner::reload`], [`ModuleWatcher`]): a new
//!    version is swapped in between batches, carrying the snapshot when the
//!    new version accepts it; a version that fails any check above is
//!    refused and the old one keeps running.
//!
//! ## Threads
//!
//! One [`PluginHost`] per engine: its wasmtime engine and compiled modules
//! are shared. Each [`Plugin`]/[`PluginRunner`] has its own store and is
//! driven by one worker thread. The host owns one thread, the epoch ticker;
//! it stops when the host and all its plugins are dropped.
//!
//! ## Limits
//!
//! See [`Limits`] for what is capped (and what is not). Defaults: 1 ms per
//! batch call, 64 MiB memory, 512 KiB wasm stack.

mod bars;
pub mod conformance;
mod error;
mod host;
mod imports;
mod limits;
mod manifest;
mod names;
mod plugin;
mod reload;
mod runner;
mod signal;
mod ticker;

pub mod testing;

pub use bars::BarBatch;
pub use candlewick_core::{PluginHealth as Health, PluginStats};
pub use candlewick_sdk::abi::Action;
pub use error::{Fault, LoadError, ManifestError, ParamError};
pub use host::{user_cache_dir, HostConfig, LoadedModule, PluginHost, DISK_CACHE_ENTRIES};
pub use limits::*;
pub use manifest::{manifest_limits, Manifest, ParamDecl, ParamType};
pub use names::{check_strategy_names, is_strategy_name, NameError};
pub use plugin::Plugin;
pub use reload::ModuleWatcher;
pub use runner::{PluginRunner, ReloadOutcome};
pub use signal::PluginSignal;

/// For the fuzz targets (`fuzz/`): validates `bytes` as the signal records
/// a guest wrote for an `n`-bar batch, as `run_batch` does; the number
/// accepted before the first refusal.
#[doc(hidden)]
pub fn fuzz_signal_records(bytes: &[u8], n: u32) -> usize {
    use candlewick_sdk::abi::{SignalRecord, SIGNAL_RECORD_SIZE};
    let mut next = 0;
    let mut ok = 0;
    for chunk in bytes.chunks_exact(SIGNAL_RECORD_SIZE) {
        let mut b = [0u8; SIGNAL_RECORD_SIZE];
        b.copy_from_slice(chunk);
        let r = SignalRecord::from_le_bytes(&b);
        if signal::validate(&r, n, next).is_err() {
            break;
        }
        next = r.bar + 1;
        ok += 1;
    }
    ok
}
