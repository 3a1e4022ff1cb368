//! [`PluginHost`]: the shared engine, the module cache and the epoch ticker.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, Linker, Module};

use crate::error::LoadError;
use crate::imports::{self, LogGate, StoreData};
use crate::limits::{
    Limits, DEFAULT_EPOCH_TICK, DEFAULT_HOST_LOG_LINES_PER_SEC, DEFAULT_MODULE_BYTES,
};
use crate::manifest::Manifest;
use crate::plugin::Plugin;
use crate::ticker::EpochTicker;

/// How a [`PluginHost`] is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Default limits for the plugins it instantiates.
    pub limits: Limits,
    /// Granularity of deadlines. A call is interrupted between `deadline`
    /// and `deadline + epoch_tick` after it starts.
    pub epoch_tick: Duration,
    /// Where compiled modules are kept across runs, by content hash; `None`
    /// keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Largest module accepted.
    pub max_module_bytes: usize,
    /// Guest log lines per second across all of this host's plugins (a
    /// burst of twice that); the rest are dropped and counted.
    pub log_lines_per_sec: u32,
    /// Reserve only each linear memory's cap (`limits.memory_bytes`) of
    /// address space instead of wasmtime's 4 GiB plus guards, at the price
    /// of explicit bounds checks (Rust's `sma_cross`: +2% per bar at batch 1,
    /// +37% at batch 64; `benches/README.md`). Needed towards 30,000 instances in
    /// one process, which the default reservations cannot fit in 128 TiB.
    pub compact_memories: bool,
}

impl HostConfig {
    /// The same configuration, keeping compiled modules in the user's cache
    /// ([`user_cache_dir`]) when there is one: a second run of the same
    /// plugin then loads it in about a millisecond instead of compiling it
    /// (about 20 ms for the example strategies).
    pub fn with_user_cache(self) -> Self {
        HostConfig {
            cache_dir: user_cache_dir(),
            ..self
        }
    }
}

/// Compiled modules a disk cache keeps at most; past it, writing a new one
/// removes those unused longest. A plugin rebuilt many times while it is
/// written would otherwise leave an entry (about 50 KB) per build.
pub const DISK_CACHE_ENTRIES: usize = 256;

/// Removes the `.cwasm` entries of `dir` beyond the `keep` most recently
/// used (written or loaded). Best effort: an entry that cannot be read or
/// removed is left.
fn prune_disk(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut cached: Vec<(SystemTime, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            let used = e.metadata().ok()?.modified().ok()?;
            (path.extension()? == "cwasm").then_some((used, path))
        })
        .collect();
    if cached.len() <= keep {
        return;
    }
    cached.sort();
    for (_, path) in &cached[..cached.len() - keep] {
        let _ = std::fs::remove_file(path);
    }
}

/// Where compiled plugins are kept across runs: `$CANDLEWICK_PLUGIN_CACHE`,
/// else `$XDG_CACHE_HOME/candlewick/plugins`, else
/// `$HOME/.cache/candlewick/plugins`; `None` when none is set (or
/// `CANDLEWICK_PLUGIN_CACHE` is empty, which turns the cache off).
///
/// Entries are named by the module's SHA-256 and the engine's settings and
/// carry a checksum, so a stale or damaged one is recompiled, never used.
/// The directory must be as trusted as the binary itself.
pub fn user_cache_dir() -> Option<PathBuf> {
    candlewick_core::cache_dir::user_cache_dir("CANDLEWICK_PLUGIN_CACHE", "plugins")
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            limits: Limits::default(),
            epoch_tick: DEFAULT_EPOCH_TICK,
            cache_dir: None,
            max_module_bytes: DEFAULT_MODULE_BYTES,
            log_lines_per_sec: DEFAULT_HOST_LOG_LINES_PER_SEC,
            compact_memories: false,
        }
    }
}

/// A compiled, checked module and its manifest; cheap to clone. Instantiate
/// it with [`PluginHost::instantiate`] or run it with a
/// [`PluginRunner`](crate::PluginRunner).
#[derive(Clone)]
pub struct LoadedModule {
    pub(crate) module: Module,
    pub(crate) manifest: Arc<Manifest>,
    hash: [u8; 32],
    size: usize,
}

impl LoadedModule {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the module's bytes.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The hash as lower-case hex.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }

    /// Size of the module in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModule")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("hash", &self.hash_hex())
            .finish()
    }
}

/// What every plugin of a host shares. The ticker stops when the last
/// holder (the host or a plugin) drops it.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreData>,
    pub(crate) config: HostConfig,
    /// The host-wide budget of guest log lines.
    pub(crate) log_gate: Arc<LogGate>,
    /// Compiled modules by content hash. Only the load path takes the lock.
    modules: Mutex<HashMap<[u8; 32], Module>>,
    /// Digest of the engine's compilation settings: part of the disk cache key.
    engine_key: u64,
    _ticker: EpochTicker,
}

/// The WebAssembly plugin host: compiles and checks modules, caches them by
/// content hash, and instantiates sandboxed plugins.
///
/// One host serves a whole engine: its wasmtime `Engine` and compiled
/// modules are shared by every plugin instance (across worker threads); each
/// [`Plugin`] then has its own store, pinned to the worker that drives it.
/// The host owns one thread, the epoch ticker that enforces deadlines; it
/// runs while the host or any plugin it made is alive, and is joined when
/// the last of them is dropped.
///
/// ```no_run
/// use candlewick_plugins::{HostConfig, PluginHost};
///
/// let host = PluginHost::new(HostConfig::default())?;
/// let module = host.load_file("target/wasm/sma_cross.wasm".as_ref())?;
/// let params = module.manifest().resolve_params(&[("fast", "5")])?;
/// assert_eq!(module.manifest().name, "sma_cross");
/// # let _ = params;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PluginHost {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHost")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Reserves address space for a linear memory's cap, not wasmtime's default
/// (4 GiB plus guard regions per memory, so that bounds checks can be left
/// to the MMU). An engine runs one instance per (stream, strategy): 30,000
/// default reservations would take about 120 of a process's 128 TiB of
/// address space. With the cap reserved, wasm code checks its bounds
/// explicitly; a memory allowed to grow beyond it (a plugin with a larger
/// limit) moves.
fn reserve_capped_memories(wasm: &mut Config, memory_bytes: usize) {
    const WASM_PAGE: u64 = 64 << 10;
    let cap = (memory_bytes as u64).div_ceil(WASM_PAGE).max(1) * WASM_PAGE;
    wasm.memory_reservation(cap);
    wasm.memory_guard_size(WASM_PAGE);
    wasm.memory_reservation_for_growth(WASM_PAGE * 16);
}

impl PluginHost {
    /// Builds the engine (epoch interruption on, stack capped) and starts
    /// the ticker.
    ///
    /// # Errors
    /// [`LoadError::Instantiate`] if wasmtime rejects the configuration or
    /// the ticker thread cannot start.
    pub fn new(config: HostConfig) -> Result<Self, LoadError> {
        let mut wasm = Config::new();
        wasm.epoch_interruption(true);
        wasm.max_wasm_stack(config.limits.stack_bytes);
        if config.compact_memories {
            reserve_capped_memories(&mut wasm, config.limits.memory_bytes);
        }
        let engine = Engine::new(&wasm).map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let linker = imports::linker(&engine).map_err(|e| LoadError::Instantiate(e.to_string()))?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Instantiate(format!("epoch ticker: {e}")))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Ok(PluginHost {
            shared: Arc::new(Shared {
                engine,
                linker,
                modules: Mutex::new(HashMap::new()),
                engine_key: hasher.finish(),
                log_gate: Arc::new(LogGate::new(config.log_lines_per_sec)),
                config,
                _ticker: ticker,
            }),
        })
    }

    pub fn config(&self) -> &HostConfig {
        &self.shared.config
    }

    /// [`PluginHost::load`] of a file's bytes.
    ///
    /// # Errors
    /// [`LoadError::Io`] naming the path, or as [`PluginHost::load`].
    pub fn load_file(&self, path: &Path) -> Result<LoadedModule, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load(&bytes)
    }

    /// Checks a module and compiles it, or takes it from the cache.
    ///
    /// Checks, in order: that it is WebAssembly at all (its first bytes, so
    /// that a native executable or a text file is named as such whatever
    /// its size); size; manifest (present, valid); compilation (which
    /// validates the WebAssembly); imports (only `cw.log`, `cw.metric`,
    /// `cw.now_ms`, each with its type). Exports and the ABI version are
    /// checked when instantiating, because the version is a function's answer.
    ///
    /// # Errors
    /// The first check that fails, as a [`LoadError`].
    pub fn load(&self, wasm: &[u8]) -> Result<LoadedModule, LoadError> {
        not_wasm(wasm)?;
        let limit = self.shared.config.max_module_bytes;
        if wasm.len() > limit {
            return Err(LoadError::TooLarge {
                size: wasm.len(),
                limit,
            });
        }
        let manifest = Manifest::from_module(wasm)?;
        let hash: [u8; 32] = Sha256::digest(wasm).into();
        let module = self.compile_cached(wasm, &hash)?;
        imports::check_imports(&module)?;
        Ok(LoadedModule {
            module,
            manifest: Arc::new(manifest),
            hash,
            size: wasm.len(),
        })
    }

    fn compile_cached(&self, wasm: &[u8], hash: &[u8; 32]) -> Result<Module, LoadError> {
        if let Some(m) = self.cached(hash) {
            return Ok(m);
        }
        let module = match self.disk_path(hash) {
            Some(path) => match self.read_disk(&path) {
                Some(m) => m,
                None => {
                    let m = self.compile(wasm)?;
                    self.write_disk(&path, &m);
                    m
                }
            },
            None => self.compile(wasm)?,
        };
        if let Ok(mut modules) = self.shared.modules.lock() {
            modules.insert(*hash, module.clone());
        }
        Ok(module)
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<Module> {
        self.shared.modules.lock().ok()?.get(hash).cloned()
    }

    fn compile(&self, wasm: &[u8]) -> Result<Module, LoadError> {
        Module::new(&self.shared.engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))
    }

    /// Modules compiled in this process (the in-memory cache).
    pub fn cached_modules(&self) -> usize {
        self.shared.modules.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn disk_path(&self, hash: &[u8; 32]) -> Option<PathBuf> {
        let dir = self.shared.config.cache_dir.as_ref()?;
        Some(dir.join(format!(
            "{}-{:016x}.cwasm",
            hex(hash),
            self.shared.engine_key
        )))
    }

    /// A module from the disk cache; `None` (recompile) when absent, corrupt
    /// or from another engine configuration.
    ///
    /// The file holds the SHA-256 of the artifact, then the artifact as
    /// `Module::serialize` wrote it.
    fn read_disk(&self, path: &Path) -> Option<Module> {
        let bytes = std::fs::read(path).ok()?;
        if bytes.len() < 32 || bytes[..32] != Sha256::digest(&bytes[32..])[..] {
            tracing::warn!(path = %path.display(), "ignoring corrupt plugin cache entry");
            return None;
        }
        // SAFETY: `deserialize` trusts the artifact to be wasmtime's own
        // output. This one was written by `write_disk` below from
        // `Module::serialize`, into the host's private cache directory, and
        // its checksum matched, so it is intact; wasmtime itself checks that
        // it was compiled by this version with compatible settings and
        // errors (we then recompile) otherwise. The cache directory must be
        // as trusted as the engine binary: that is stated on `cache_dir`.
        let module = unsafe { Module::deserialize(&self.shared.engine, &bytes[32..]) }.ok()?;
        // Marked as used, so that pruning removes the entries unused longest.
        let _ = std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        Some(module)
    }

    /// Writes a module to the disk cache, atomically (temp file, rename).
    /// Failures are logged and otherwise ignored: the cache is an optimisation.
    fn write_disk(&self, path: &Path, module: &Module) {
        let result = (|| -> Result<(), String> {
            let artifact = module.serialize().map_err(|e| e.to_string())?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            let mut file = Sha256::digest(&artifact).to_vec();
            file.extend_from_slice(&artifact);
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, &file).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
            if let Some(dir) = path.parent() {
                prune_disk(dir, DISK_CACHE_ENTRIES);
            }
            Ok(())
        })();
        if let Err(reason) = result {
            tracing::warn!(path = %path.display(), %reason, "could not write plugin cache entry");
        }
    }

    /// Instantiates a loaded module with parameter values from
    /// [`Manifest::resolve_params`], for bars carrying `n_values` values
    /// (indicator columns, then the manifest's model outputs).
    ///
    /// # Errors
    /// A [`LoadError`] for a wrong ABI version, a missing or mistyped export,
    /// a refused init, a bad io layout, or a fault while doing any of these.
    pub fn instantiate(
        &self,
        module: &LoadedModule,
        params: &[f64],
        n_values: usize,
    ) -> Result<Plugin, LoadError> {
        Plugin::new(
            self.shared.clone(),
            module,
            params,
            n_values,
            &self.shared.config.limits,
        )
    }

    /// As [`PluginHost::instantiate`] with limits other than the host's defaults.
    ///
    /// # Errors
    /// As [`PluginHost::instantiate`].
    pub fn instantiate_with(
        &self,
        module: &LoadedModule,
        params: &[f64],
        n_values: usize,
        limits: &Limits,
    ) -> Result<Plugin, LoadError> {
        Plugin::new(self.shared.clone(), module, params, n_values, limits)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses bytes that are not a binary WebAssembly module, saying what
/// they look like, before a parser reports magic numbers.
fn not_wasm(bytes: &[u8]) -> Result<(), LoadError> {
    const MAGIC: &[u8] = b"\0asm";
    if bytes.starts_with(MAGIC) {
        return Ok(());
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    let what = if bytes.is_empty() {
        "the file is empty".to_owned()
    } else if head.trim_start().starts_with("(module") {
        "this is WebAssembly text (.wat); compile it to a binary .wasm first".to_owned()
    } else if bytes.starts_with(b"\x7fELF")
        || bytes.starts_with(b"MZ")
        || bytes.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
    {
        "this is a native executable or library; a strategy is built for wasm32-unknown-unknown \
         (`candlewick plugin build NAME`)"
            .to_owned()
    } else if std::str::from_utf8(&bytes[..bytes.len().min(512)]).is_ok() {
        "this is a text file; a strategy is the .wasm that `candlewick plugin build NAME` writes"
            .to_owned()
    } else {
        "a .wasm file starts with the bytes \\0asm, and this one does not; give the .wasm that \
         `candlewick plugin build NAME` writes"
            .to_owned()
    };
    Err(LoadError::NotWasm(what))
}
