//! [`PluginRunner`]: one plugin on one symbol stream, with its indicators,
//! its quarantine and its hot reload.

use std::time::Instant;

use candlewick_core::{PluginHealth as Health, PluginStats};
use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;

use crate::bars::BarBatch;
use crate::error::{Fault, LoadError};
use crate::host::{LoadedModule, PluginHost};
use crate::limits::{Limits, RestartPolicy};
use crate::plugin::Plugin;
use crate::reload::ModuleWatcher;
use crate::signal::PluginSignal;

/// What a successful [`PluginRunner::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The new version accepted the old version's snapshot.
    pub snapshot_carried: bool,
    /// The indicator spec changed, so the indicators start warming up again.
    pub indicators_reset: bool,
}

/// One plugin over one candle stream: computes the indicators the manifest
/// asks for, batches bars, calls the plugin, and keeps it healthy.
///
/// Its life: [`PluginRunner::push`] closed candles, then
/// [`PluginRunner::flush`] to run them as one batch and get the signals
/// (a worker flushes once per drained batch). Between flushes it may
/// [`PluginRunner::reload`] a new version.
///
/// When a call faults (trap, deadline, memory, invalid output) the runner
/// logs it once (`tracing`, with the plugin's name and the cause), counts it
/// in [`PluginStats`], drops the instance, and skips bars until the backoff
/// of its [`RestartPolicy`] has passed; it then re-instantiates the plugin
/// and restores its last snapshot. Indicators keep updating throughout, so
/// the restarted plugin sees correct values at once. Nothing here panics or
/// blocks on a misbehaving plugin: the worker and other runners go on.
#[derive(Debug)]
pub struct PluginRunner {
    host: PluginHost,
    module: LoadedModule,
    /// The operator's `--param` overrides, kept to re-check against a reloaded version.
    overrides: Vec<(String, String)>,
    params: Vec<f64>,
    limits: Limits,
    policy: RestartPolicy,
    indicators: Indicators,
    /// Scratch for one bar's values.
    values: Vec<f64>,
    batch: BarBatch,
    plugin: Option<Plugin>,
    health: Health,
    last_snapshot: Option<Vec<u8>>,
    batches_since_snapshot: u32,
    healthy_streak: u32,
    consecutive_faults: u32,
    out: Vec<PluginSignal>,
    stats: PluginStats,
}

impl PluginRunner {
    /// Checks `overrides` against the manifest, builds the indicators and
    /// instantiates the plugin.
    ///
    /// # Errors
    /// A [`LoadError`]: a bad parameter (named), a bad indicator spec, or any
    /// instantiation failure.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(
        host: &PluginHost,
        module: LoadedModule,
        overrides: &[(K, V)],
        limits: Limits,
        policy: RestartPolicy,
    ) -> Result<Self, LoadError> {
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let (params, indicators) = prepare(&module, &overrides)?;
        let n_values = indicators.width() + module.manifest.models.len();
        let plugin = host.instantiate_with(&module, &params, n_values, &limits)?;
        Ok(PluginRunner {
            host: host.clone(),
            module,
            overrides,
            params,
            limits,
            policy,
            values: vec![f64::NAN; n_values],
            batch: BarBatch::new(n_values),
            indicators,
            plugin: Some(plugin),
            health: Health::Running,
            last_snapshot: None,
            batches_since_snapshot: 0,
            healthy_streak: 0,
            consecutive_faults: 0,
            out: Vec::new(),
            stats: PluginStats::default(),
        })
    }

    /// The plugin's name (from its manifest).
    pub fn name(&self) -> &str {
        &self.module.manifest.name
    }

    pub fn module(&self) -> &LoadedModule {
        &self.module
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn stats(&self) -> &PluginStats {
        &self.stats
    }

    /// Indicator column names, in the order the plugin sees them.
    pub fn columns(&self) -> &[String] {
        self.indicators.columns()
    }

    /// Bars pushed and not yet flushed.
    pub fn pending(&self) -> usize {
        self.batch.len()
    }

    /// Adds one closed candle: updates the indicators and queues the bar.
    /// `models` are this bar's model outputs in manifest order (missing ones
    /// are NaN).
    #[inline]
    pub fn push(&mut self, candle: &Candle, models: &[f64]) {
        let width = self.indicators.width();
        self.indicators.update(candle, &mut self.values[..width]);
        for (i, slot) in self.values[width..].iter_mut().enumerate() {
            *slot = models.get(i).copied().unwrap_or(f64::NAN);
        }
        self.batch.push(candle, &self.values);
    }

    /// Runs the queued bars as one batch and returns the plugin's valid
    /// signals (indices into this batch). While quarantined, the bars are
    /// skipped and no signals come back. The event time the plugin sees is
    /// the newest bar's open time.
    pub fn flush(&mut self) -> &[PluginSignal] {
        self.out.clear();
        let n = self.batch.len();
        if n == 0 {
            return &self.out;
        }
        if let Health::Quarantined { retry_at, .. } = &self.health {
            if Instant::now() < *retry_at || !self.restart() {
                self.stats.skipped_bars += n as u64;
                self.batch.clear();
                return &self.out;
            }
        }
        let now_ms = self.batch.time(n - 1);
        let result = match self.plugin.as_mut() {
            Some(plugin) => plugin
                .run_batch(&self.batch, now_ms)
                .map(|s| self.out.extend_from_slice(s)),
            None => Ok(()),
        };
        self.batch.clear();
        match result {
            Ok(()) => {
                self.stats.batches += 1;
                self.stats.bars += n as u64;
                self.stats.signals += self.out.len() as u64;
                self.healthy_streak += 1;
                if self.healthy_streak >= self.policy.reset_after_batches {
                    self.consecutive_faults = 0;
                }
                self.batches_since_snapshot += 1;
                if self.batches_since_snapshot >= self.policy.snapshot_every.max(1) {
                    self.take_snapshot();
                }
            }
            Err(fault) => {
                self.out.clear();
                self.quarantine(fault);
            }
        }
        &self.out
    }

    /// Snapshots the plugin now (if running) and returns the latest snapshot,
    /// for the engine's checkpoint.
    pub fn checkpoint(&mut self) -> Option<&[u8]> {
        if self.plugin.is_some() {
            self.take_snapshot();
        }
        self.last_snapshot.as_deref()
    }

    /// Seeds the snapshot to restore on the next restart, e.g. from the
    /// engine's checkpoint at startup, and restores it into the running
    /// instance now. Returns whether the instance accepted it.
    pub fn restore(&mut self, snapshot: Vec<u8>) -> bool {
        let accepted = match self.plugin.as_mut().map(|p| p.restore(&snapshot)) {
            Some(Ok(accepted)) => accepted,
            Some(Err(fault)) => {
                self.quarantine(fault);
                false
            }
            None => false,
        };
        self.last_snapshot = Some(snapshot);
        accepted
    }

    fn take_snapshot(&mut self) {
        self.batches_since_snapshot = 0;
        let Some(plugin) = self.plugin.as_mut() else {
            return;
        };
        match plugin.snapshot() {
            Ok(Some(bytes)) => {
                self.stats.snapshots += 1;
                self.last_snapshot = Some(bytes);
            }
            Ok(None) => {}
            Err(fault) => self.quarantine(fault),
        }
    }

    fn quarantine(&mut self, fault: Fault) {
        self.plugin = None;
        self.stats.count(&fault);
        self.consecutive_faults = self.consecutive_faults.saturating_add(1);
        self.healthy_streak = 0;
        let backoff = self.policy.backoff(self.consecutive_faults);
        tracing::warn!(
            plugin = %self.module.manifest.name,
            cause = %fault,
            kind = fault.kind(),
            consecutive = self.consecutive_faults,
            backoff_ms = backoff.as_millis() as u64,
            "plugin quarantined"
        );
        self.health = Health::Quarantined {
            fault,
            consecutive: self.consecutive_faults,
            retry_at: Instant::now() + backoff,
        };
    }

    /// Re-instantiates after a quarantine; `false` (and a longer quarantine)
    /// when that fails.
    fn restart(&mut self) -> bool {
        let n_values = self.batch.n_values();
        let result = self
            .host
            .instantiate_with(&self.module, &self.params, n_values, &self.limits)
            .and_then(|mut plugin| {
                let restored = match &self.last_snapshot {
                    Some(snap) => plugin.restore(snap).map_err(|fault| LoadError::Faulted {
                        stage: "cw_restore",
                        fault,
                    })?,
                    None => false,
                };
                Ok((plugin, restored))
            });
        match result {
            Ok((plugin, restored)) => {
                tracing::info!(plugin = %self.module.manifest.name, restored, "plugin restarted");
                self.plugin = Some(plugin);
                self.health = Health::Running;
                self.stats.restarts += 1;
                true
            }
            Err(e) => {
                self.stats.restart_failures += 1;
                self.consecutive_faults = self.consecutive_faults.saturating_add(1);
                let backoff = self.policy.backoff(self.consecutive_faults);
                tracing::warn!(plugin = %self.module.manifest.name, cause = %e, backoff_ms = backoff.as_millis() as u64, "plugin restart failed");
                if let Health::Quarantined {
                    retry_at,
                    consecutive,
                    ..
                } = &mut self.health
                {
                    *retry_at = Instant::now() + backoff;
                    *consecutive = self.consecutive_faults;
                }
                false
            }
        }
    }

    /// Swaps in a new version of the plugin, at a batch boundary.
    ///
    /// The operator's parameters are checked against the new manifest; the
    /// new version is instantiated and given the current state (a fresh
    /// snapshot if the old one is running, else the last one). If it accepts
    /// the snapshot the state carries over; if it rejects it, it starts
    /// fresh. If the indicator spec is unchanged the indicators carry over.
    ///
    /// # Errors
    /// Any [`LoadError`] of the new version (including a fault while
    /// restoring): it is refused, logged, counted, and the old version keeps
    /// running untouched. [`LoadError::BatchInProgress`] if bars are pending.
    pub fn reload(&mut self, module: LoadedModule) -> Result<ReloadOutcome, LoadError> {
        let result = self.try_reload(module);
        match &result {
            Ok(outcome) => {
                self.stats.reloads += 1;
                tracing::info!(
                    plugin = %self.module.manifest.name,
                    version = %self.module.manifest.version,
                    snapshot_carried = outcome.snapshot_carried,
                    indicators_reset = outcome.indicators_reset,
                    "plugin reloaded"
                );
            }
            Err(e) => {
                self.stats.reload_failures += 1;
                tracing::warn!(plugin = %self.module.manifest.name, cause = %e, "plugin reload refused; old version keeps running");
            }
        }
        result
    }

    fn try_reload(&mut self, module: LoadedModule) -> Result<ReloadOutcome, LoadError> {
        if !self.batch.is_empty() {
            return Err(LoadError::BatchInProgress(self.batch.len()));
        }
        let (params, fresh_indicators) = prepare(&module, &self.overrides)?;
        let indicators_reset = fresh_indicators.spec() != self.indicators.spec();
        let n_values = fresh_indicators.width() + module.manifest.models.len();
        let mut plugin = self
            .host
            .instantiate_with(&module, &params, n_values, &self.limits)?;
        let snapshot = match self.plugin.as_mut().map(Plugin::snapshot) {
            Some(Ok(Some(s))) => Some(s),
            _ => self.last_snapshot.clone(),
        };
        let snapshot_carried = match &snapshot {
            Some(s) => plugin.restore(s).map_err(|fault| LoadError::Faulted {
                stage: "cw_restore",
                fault,
            })?,
            None => false,
        };
        // Committed: nothing below can fail.
        if indicators_reset {
            self.indicators = fresh_indicators;
            self.values = vec![f64::NAN; n_values];
            self.batch = BarBatch::new(n_values);
        }
        self.module = module;
        self.params = params;
        self.plugin = Some(plugin);
        self.health = Health::Running;
        self.consecutive_faults = 0;
        self.last_snapshot = if snapshot_carried { snapshot } else { None };
        Ok(ReloadOutcome {
            snapshot_carried,
            indicators_reset,
        })
    }

    /// Reloads if the watched file changed (call between flushes). `Ok(None)`
    /// when it did not change.
    ///
    /// # Errors
    /// As [`PluginRunner::reload`], or the file's [`LoadError`]; either way
    /// the old version keeps running.
    pub fn reload_if_changed(
        &mut self,
        watcher: &mut ModuleWatcher,
    ) -> Result<Option<ReloadOutcome>, LoadError> {
        let Some(bytes) = watcher.poll()? else {
            return Ok(None);
        };
        let module = match self.host.load(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.reload_failures += 1;
                tracing::warn!(plugin = %self.module.manifest.name, cause = %e, "plugin reload refused; old version keeps running");
                return Err(e);
            }
        };
        self.reload(module).map(Some)
    }
}

/// The indicators of a manifest; a plugin may declare none.
#[derive(Debug)]
struct Indicators(Option<IndicatorSet>);

impl Indicators {
    fn width(&self) -> usize {
        self.0.as_ref().map_or(0, IndicatorSet::width)
    }

    fn columns(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |s| s.columns())
    }

    fn spec(&self) -> &str {
        self.0.as_ref().map_or("", |s| s.spec())
    }

    #[inline]
    fn update(&mut self, candle: &Candle, out: &mut [f64]) {
        if let Some(set) = self.0.as_mut() {
            set.update(candle, out);
        }
    }
}

/// Parameters and indicators of a module under `overrides`.
fn prepare(
    module: &LoadedModule,
    overrides: &[(String, String)],
) -> Result<(Vec<f64>, Indicators), LoadError> {
    let manifest = &module.manifest;
    let params = manifest.resolve_params(overrides)?;
    let spec = manifest
        .indicator_spec(&params)
        .map_err(|reason| LoadError::Indicators {
            spec: manifest.indicators.join(" "),
            reason,
        })?;
    if spec.is_empty() {
        return Ok((params, Indicators(None)));
    }
    crate::manifest::spec_budget(&spec).map_err(|reason| LoadError::Indicators {
        spec: spec.clone(),
        reason,
    })?;
    let indicators = IndicatorSet::parse(&spec).map_err(|e| LoadError::Indicators {
        spec: spec.clone(),
        reason: e.to_string(),
    })?;
    Ok((params, Indicators(Some(indicators))))
}
