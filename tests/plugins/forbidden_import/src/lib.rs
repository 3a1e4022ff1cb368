//! A plugin that imports a WASI function: the host must refuse it at load,
//! naming the import, before any of its code runs.
#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

use candlewick_sdk::{export_strategy, Bar, InitError, Params, Signal, Strategy};

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    fn fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32;
}

pub struct Forbidden;

impl Strategy for Forbidden {
    fn init(_: &Params<'_>) -> Result<Self, InitError> {
        Ok(Forbidden)
    }

    fn on_bar(&mut self, _bar: &Bar<'_>) -> Option<Signal> {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: never runs: the host refuses this module at load. Were it
        // to run, the call only passes integers.
        unsafe {
            fd_write(1, 0, 0, 0);
        }
        None
    }
}

export_strategy! {
    strategy: Forbidden,
    name: "forbidden_import",
    version: "0.1.0",
    params: {},
    indicators: [],
    models: [],
}
