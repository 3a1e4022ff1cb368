//! From settings to parts: the strategies' modules found, compiled and
//! named, and the models verified, before an [`Engine`](crate::Engine)
//! starts. A refused part stops the start with a sentence naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use candlewick_inference::{InferenceError, NamedModel};
use candlewick_plugins::{HostConfig, LoadError, NameError, PluginHost};

use crate::Strategy;

/// One strategy as the configuration gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrategySpec {
    /// The module: a path, or a file name found where
    /// `scripts/build-plugins` puts modules ([`resolve_wasm`]).
    pub wasm: PathBuf,
    /// The name its signals carry; default the manifest's.
    pub name: Option<String>,
    /// Each call's deadline, in milliseconds; default the host's.
    pub deadline_ms: Option<f64>,
    /// Parameter overrides, as text (the manifest checks them).
    pub params: Vec<(String, String)>,
}

/// One model as the configuration gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The name strategies read it by; default the artifact's.
    pub name: Option<String>,
    /// The artifact's directory.
    pub dir: PathBuf,
}

/// Why the engine's parts could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    #[error(
        "{instances} plugin instances (streams x strategies) need about {need} memory \
         mappings, and vm.max_map_count is {limit}: raise it (`sysctl -w \
         vm.max_map_count={suggest}`, or a file in /etc/sysctl.d/) or run fewer streams \
         x strategies per engine"
    )]
    MapCount {
        instances: usize,
        need: usize,
        limit: usize,
        suggest: usize,
    },
    #[error("cannot start the plugin host: {0}")]
    Host(#[source] Box<LoadError>),
    #[error(
        "strategy {wasm}: module not found (looked in {looked}); build the example \
         strategies with scripts/build-plugins"
    )]
    NotFound { wasm: PathBuf, looked: String },
    #[error("strategy {path}: {source}")]
    Module {
        path: PathBuf,
        #[source]
        source: Box<LoadError>,
    },
    #[error("strategies: {0}")]
    Names(#[from] NameError),
    #[error("models[{index}] ({dir}): {source}")]
    Model {
        index: usize,
        dir: PathBuf,
        #[source]
        source: Box<InferenceError>,
    },
}

/// Plugin instances (streams x strategies) above which each linear memory
/// reserves only its cap of address space (`HostConfig::compact_memories`):
/// 8,192 default reservations already take 33 of a process's 128 TiB.
pub const COMPACT_MEMORIES_ABOVE: usize = 8192;

/// The plugin host and the strategies, compiled, for `streams` streams;
/// `None` and nothing when there are no strategies.
///
/// # Errors
/// Too many instances for the process's memory mappings, a module that
/// cannot be found or loaded, or names that clash (names key signals,
/// snapshots and subscriptions; `@...` is the engine's own).
pub fn load_strategies(
    specs: &[StrategySpec],
    streams: usize,
) -> Result<(Option<PluginHost>, Vec<Strategy>), AssemblyError> {
    if specs.is_empty() {
        return Ok((None, Vec::new()));
    }
    let instances = streams * specs.len();
    check_map_count(instances)?;
    let compact_memories = instances > COMPACT_MEMORIES_ABOVE;
    if compact_memories {
        tracing::info!(
            instances,
            "compact plugin memories: each reserves its cap, with explicit bounds checks"
        );
    }
    let host = PluginHost::new(
        HostConfig {
            compact_memories,
            ..HostConfig::default()
        }
        .with_user_cache(),
    )
    .map_err(|e| AssemblyError::Host(Box::new(e)))?;
    let mut strategies = Vec::with_capacity(specs.len());
    for spec in specs {
        let path = resolve_wasm(&spec.wasm)?;
        let module = host
            .load_file(&path)
            .map_err(|source| AssemblyError::Module {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let mut s = Strategy::new(module);
        if let Some(name) = &spec.name {
            s.name = Arc::from(name.as_str());
        }
        if let Some(ms) = spec.deadline_ms {
            s.limits.deadline = Duration::from_secs_f64(ms / 1000.0);
        }
        s.params.clone_from(&spec.params);
        tracing::info!(strategy = %s.name, wasm = %path.display(), "strategy loaded");
        strategies.push(s);
    }
    candlewick_plugins::check_strategy_names(strategies.iter().map(|s| &*s.name))?;
    Ok((Some(host), strategies))
}

/// The models, each verified (hash, version, tensors, scaler, features)
/// before anything runs: a refused artifact stops the start.
///
/// # Errors
/// The first artifact refused, with its place in the list.
pub fn load_models(specs: &[ModelSpec]) -> Result<Vec<NamedModel>, AssemblyError> {
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let m = NamedModel::load(spec.name.as_deref(), &spec.dir).map_err(|source| {
                AssemblyError::Model {
                    index,
                    dir: spec.dir.clone(),
                    source: Box::new(source),
                }
            })?;
            let a = m.artifact();
            tracing::info!(
                model = m.name(),
                arch = %a.manifest().arch.kind,
                window = a.window(),
                features = a.features().width(),
                sha256 = &m.sha256()[..12],
                "model verified"
            );
            Ok(m)
        })
        .collect()
}

/// Finds a strategy's module: as given, then (for a relative path) in
/// `$CANDLEWICK_PLUGIN_DIR`, under `$WASM_TARGET_DIR`, and where
/// `scripts/build-plugins` puts modules beside the working directory, the
/// running binary and this checkout.
///
/// # Errors
/// [`AssemblyError::NotFound`], naming every place looked in.
pub fn resolve_wasm(wasm: &Path) -> Result<PathBuf, AssemblyError> {
    if wasm.is_file() {
        return Ok(wasm.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if wasm.is_relative() {
        const BUILT: &str = "wasm32-unknown-unknown/release";
        if let Some(d) = std::env::var_os("CANDLEWICK_PLUGIN_DIR") {
            dirs.push(PathBuf::from(d));
        }
        if let Some(d) = std::env::var_os("WASM_TARGET_DIR") {
            dirs.push(PathBuf::from(d).join(BUILT));
        }
        dirs.push(PathBuf::from("target/wasm").join(BUILT));
        if let Ok(exe) = std::env::current_exe() {
            // target/release/candlewick -> target/wasm/...
            if let Some(target) = exe.parent().and_then(Path::parent) {
                dirs.push(target.join("wasm").join(BUILT));
            }
        }
        dirs.push(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm")
                .join(BUILT),
        );
    }
    if let Some(found) = dirs.iter().map(|d| d.join(wasm)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(AssemblyError::NotFound {
        wasm: wasm.to_path_buf(),
        looked: if looked.is_empty() {
            "the given path".to_owned()
        } else {
            looked.join(", ")
        },
    })
}

/// Refuses, in words, a number of plugin instances that would run out of
/// the process's memory mappings (`vm.max_map_count`) partway through
/// instantiation.
fn check_map_count(instances: usize) -> Result<(), AssemblyError> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let (Some(limit), Some(maps)) = (
        read("/proc/sys/vm/max_map_count").and_then(|s| s.trim().parse::<usize>().ok()),
        read("/proc/self/maps"),
    ) else {
        return Ok(()); // not Linux: no such limit to check
    };
    map_count_fits(instances, maps.lines().count(), limit)
}

/// Whether `instances` more plugin instances fit beside `in_use` mappings
/// under `limit`, with room for the rest of the engine.
fn map_count_fits(instances: usize, in_use: usize, limit: usize) -> Result<(), AssemblyError> {
    const HEADROOM: usize = 4096;
    let need = instances * candlewick_plugins::MAPPINGS_PER_INSTANCE + in_use + HEADROOM;
    if need > limit {
        return Err(AssemblyError::MapCount {
            instances,
            need,
            limit,
            suggest: need.next_power_of_two().max(262_144),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_many_instances_for_the_mapping_limit_are_refused_in_words() {
        map_count_fits(10_000, 2_000, 65_530).unwrap();
        let e = map_count_fits(30_000, 2_000, 65_530)
            .unwrap_err()
            .to_string();
        assert!(e.contains("30000 plugin instances"), "{e}");
        assert!(e.contains("vm.max_map_count is 65530"), "{e}");
        assert!(e.contains("sysctl -w vm.max_map_count=262144"), "{e}");
    }

    #[test]
    fn a_module_not_found_names_every_place_looked_in() {
        let e = resolve_wasm(Path::new("no_such_strategy.wasm"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no_such_strategy.wasm: module not found"), "{e}");
        assert!(e.contains("target/wasm"), "{e}");
        assert!(e.contains("scripts/build-plugins"), "{e}");
    }
}
