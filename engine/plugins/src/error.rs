//! Errors: [`LoadError`] refuses a plugin before it runs; [`Fault`] is why a
//! running plugin was quarantined.

use std::path::PathBuf;

pub use candlewick_core::Fault;

/// Why a plugin was not loaded (or not reloaded). The old version, if any,
/// keeps running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("module is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// The bytes are not a binary WebAssembly module at all (a source
    /// file, a text module, a native library...).
    #[error("not a WebAssembly module: {0}")]
    NotWasm(String),
    #[error("not a valid WebAssembly module: {0}")]
    Compile(String),
    #[error("manifest: {0}")]
    Manifest(#[from] ManifestError),
    #[error("parameter {0}")]
    Param(#[from] ParamError),
    #[error("forbidden import `{module}.{name}`: a plugin may import only cw.log, cw.metric and cw.now_ms")]
    ForbiddenImport { module: String, name: String },
    #[error("import `cw.{name}` has type {found}, expected {expected}")]
    ImportType {
        name: String,
        found: String,
        expected: &'static str,
    },
    #[error("export `{name}`: {reason}")]
    Export { name: &'static str, reason: String },
    #[error("ABI version {found} is not supported (this host speaks version {expected})")]
    AbiVersion { found: u32, expected: u32 },
    #[error("indicators {spec:?}: {reason}")]
    Indicators { spec: String, reason: String },
    #[error("initial memory exceeds the {limit}-byte cap")]
    MemoryLimit { limit: usize },
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    #[error("cw_init refused (code {code}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Init { code: i32, message: Option<String> },
    #[error("during {stage}: {fault}")]
    Faulted { stage: &'static str, fault: Fault },
    #[error("bad io layout: {0}")]
    Layout(String),
    #[error("module cache {path}: {reason}")]
    Cache { path: PathBuf, reason: String },
    #[error("cannot reload with {0} bars pending; reload between batches")]
    BatchInProgress(usize),
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error(
        "a WebAssembly module, but not a Candlewick strategy: it has no `cw_manifest` section, \
         which the SDK's export_strategy! macro adds (start one with `candlewick plugin new NAME`, \
         build it with `candlewick plugin build NAME`)"
    )]
    Missing,
    #[error("more than one `cw_manifest` section")]
    Duplicate,
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("manifest ABI {0} is not 1")]
    Abi(u32),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// A parameter override that does not fit the schema. Displays as
/// "`name`: reason" after the word "parameter".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    #[error("`{name}` is not declared by the plugin (declared: {declared})")]
    Unknown { name: String, declared: String },
    #[error("`{name}`: {value:?} is not {expected}")]
    Type {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("`{name}`: {value} is outside [{min}, {max}]")]
    Range {
        name: String,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("`{name}` given twice")]
    Duplicate { name: String },
}
