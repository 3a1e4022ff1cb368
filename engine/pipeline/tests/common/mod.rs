//! What the pipeline's tests share: the bundled data and the example
//! plugins.

use std::path::{Path, PathBuf};

pub use candlewick_models::testing::eurusd;

/// The built `NAME.wasm` (the example plugins are built on demand).
pub fn wasm(name: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = candlewick_plugins::testing::build_plugins(&repo).unwrap_or_else(|e| panic!("{e}"));
    dir.join(format!("{name}.wasm"))
}
