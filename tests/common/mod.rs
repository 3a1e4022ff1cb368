//! What the binary's end-to-end tests share: the checkout, the binary, and
//! the example plugins (built on first use, see
//! `candlewick_plugins::testing`).
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// This checkout.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `candlewick ARGS` in `dir` (without the caller's `RUST_LOG`).
pub fn candlewick(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candlewick"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs")
}

/// Path of the built plugin `NAME.wasm`.
pub fn wasm(name: &str) -> String {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(|| candlewick_plugins::testing::build_plugins(&repo())) {
        Ok(dir) => dir.join(format!("{name}.wasm")).display().to_string(),
        Err(e) => panic!("{e}"),
    }
}
