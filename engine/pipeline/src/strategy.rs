//! [`Strategy`]: one configured plugin, instantiated once per stream.

use std::sync::Arc;

use candlewick_plugins::{Limits, LoadedModule, RestartPolicy};

/// A strategy as configured: a compiled module, the operator's parameter
/// overrides and its limits. The pipeline runs one
/// [`PluginRunner`](candlewick_plugins::PluginRunner) of it per stream.
#[derive(Clone)]
pub struct Strategy {
    /// The name signals carry (`"sma_cross"`); defaults to the manifest's.
    pub name: Arc<str>,
    pub module: LoadedModule,
    pub params: Vec<(String, String)>,
    pub limits: Limits,
    pub policy: RestartPolicy,
}

impl Strategy {
    /// A strategy named after its manifest, with default limits.
    pub fn new(module: LoadedModule) -> Self {
        Strategy {
            name: module.manifest().name.as_str().into(),
            module,
            params: Vec::new(),
            limits: Limits::default(),
            policy: RestartPolicy::default(),
        }
    }
}

impl std::fmt::Debug for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strategy")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}
