//! Test support: the example and hostile plugins, built on demand for the
//! tests and benchmarks of any crate of this workspace.
//!
//! [`build_plugins`] runs `cargo build --target wasm32-unknown-unknown`
//! over `plugins/` and `tests/plugins/` into `target/wasm` of the checkout
//! (the directory `scripts/build-plugins` uses; override with
//! `WASM_TARGET_DIR`). That is never the target dir of the running `cargo
//! test`, so the two builds cannot wait on each other's lock. The wasm32
//! target must be installed (`rustup target add wasm32-unknown-unknown`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds both plugin workspaces of the checkout at `repo` (a no-op when
/// they are fresh) and returns the directory holding every `NAME.wasm`.
///
/// # Errors
/// Cargo could not run or the build failed; the message says what to run
/// to see why.
pub fn build_plugins(repo: &Path) -> Result<PathBuf, String> {
    let target = std::env::var_os("WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target/wasm"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for ws in ["plugins", "tests/plugins"] {
        let status = Command::new(&cargo)
            .args(["build", "--quiet", "--release", "--workspace"])
            .args(["--target", "wasm32-unknown-unknown"])
            .arg("--manifest-path")
            .arg(repo.join(ws).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building {ws} for wasm32 failed ({status}); is the target installed? \
                 run scripts/build-plugins to see why"
            ));
        }
    }
    Ok(target.join("wasm32-unknown-unknown/release"))
}
