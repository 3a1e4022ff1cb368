//! What the binary's end-to-end tests share: the checkout, the binary, and
//! the example plugins (built on first use, see
//! `candlewick_plugins::testing`).
#![allow(dead_code)] // each test file uses its own part

pub mod process;

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

/// The one `error: ` line of a command that failed with exit `code` (a
/// command reports its error once).
#[track_caller]
pub fn error_line(o: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "exit {}: {stderr}", o.status);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_owned()
}

/// A command's stdout then its stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Path of the built plugin `NAME.wasm`.
pub fn wasm(name: &str) -> String {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(|| candlewick_plugins::testing::build_plugins(&repo())) {
        Ok(dir) => dir.join(format!("{name}.wasm")).display().to_string(),
        Err(e) => panic!("{e}"),
    }
}
