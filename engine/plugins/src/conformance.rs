//! ABI conformance of any plugin module, whatever built it
//! (`candlewick plugin check`).
//!
//! [`check_module`] runs a module through the host's own loading and
//! validation code ([`PluginHost::load`], [`PluginHost::instantiate_with`],
//! [`Plugin::run_batch`]), so a module that passes is one the engine will
//! run, and then asks more of it than a single load does:
//!
//! | check | what it asks |
//! |---|---|
//! | `module` | valid WebAssembly, within the size limit |
//! | `manifest` | one `cw_manifest` section, valid (schema, params, indicators, models) |
//! | `imports` | only `cw.log`, `cw.metric`, `cw.now_ms`, with their types |
//! | `exports` | every required export, each optional one present with its exact type; memory exported |
//! | `init` | ABI version 1; `cw_init` accepts the defaults (and `--param` overrides); io layout valid |
//! | `edge_params` | at each parameter's min and max (and both bools) `cw_init` accepts, and runs, or refuses cleanly |
//! | `batches` | batches of 1, 7, 64 and 513 bars run without a fault and give the same signals |
//! | `output` | every signal record valid (bar, action, strength, stops) |
//! | `snapshot_restore` | snapshot, restore into a fresh instance, continue: same signals as an uninterrupted run |
//! | `determinism` | two instances, same bars, same signals |
//! | `memory` | never reaches the cap; growth per bar projected against it |
//! | `time` | no missed deadline; ns per bar and the slowest call against the deadline |
//!
//! A module that fails an early check (manifest, imports, load) skips the
//! checks that need an instance; each skipped check says why.

use std::time::{Duration, Instant};

use candlewick_indicators::IndicatorSet;
use candlewick_market::Candle;
use serde::Serialize;
use wasmtime::{ExternType, Module};

use crate::bars::BarBatch;
use crate::error::{Fault, LoadError};
use crate::host::{LoadedModule, PluginHost};
use crate::imports::{check_imports, signature};
use crate::limits::Limits;
use crate::manifest::{Manifest, ParamType};
use crate::plugin::Plugin;
use crate::signal::PluginSignal;
use candlewick_sdk::abi::exports;

/// Batch sizes every module is run with.
pub const BATCH_SIZES: [usize; 4] = [1, 7, 64, 513];

/// A module whose memory grows so fast it would reach the cap within this
/// many bars gets a warning (a year of one-minute bars).
const GROWTH_HORIZON_BARS: f64 = 525_600.0;

/// What each export must look like: name, type, required.
const EXPORTS: [(&str, &str, bool); 7] = [
    (exports::ABI_VERSION, "() -> (i32)", true),
    (exports::ALLOC, "(i32) -> (i32)", true),
    (exports::INIT, "(i32, i32) -> (i32)", true),
    (exports::IO_LAYOUT, "() -> (i32)", true),
    (exports::ON_BATCH, "(i32) -> (i32)", true),
    (exports::SNAPSHOT, "() -> (i64)", false),
    (exports::RESTORE, "(i32, i32) -> (i32)", false),
];

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Conforms, but something deserves a look (said in the detail).
    Warn,
    Fail,
    /// Not run, because an earlier check failed or it does not apply.
    Skip,
}

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
}

/// Time per bar at one batch size.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub batch: usize,
    pub ns_per_bar: f64,
    /// The slowest single `cw_on_batch` call (the host splits a batch larger
    /// than the plugin's input capacity into several calls).
    pub slowest_call_us: f64,
}

/// Everything [`check_module`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `name version` from the manifest, when it could be read.
    pub plugin: Option<String>,
    pub bars: usize,
    pub checks: Vec<Check>,
    pub timings: Vec<Timing>,
    /// Linear memory after init and after the longest run, in bytes.
    pub memory_after_init: Option<usize>,
    pub memory_after_run: Option<usize>,
}

impl Report {
    /// Whether every check passed (warnings and skips allowed).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

/// What to run a module with.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// `--param name=value` overrides for the base run.
    pub overrides: Vec<(String, String)>,
    /// The bars (at least a few hundred make the checks meaningful).
    pub candles: Vec<Candle>,
    /// The limits the module must live within (the engine's defaults).
    pub limits: Limits,
}

/// `n` deterministic synthetic hourly candles: a random walk around 100
/// with trends long enough that moving averages cross, from a fixed seed.
pub fn synthetic_candles(n: usize) -> Vec<Candle> {
    let mut rng = Lcg(0x5eed_cafe_f00d_d00d);
    let mut close = 100.0_f64;
    let mut drift = 0.0_f64;
    (0..n)
        .map(|i| {
            if i % 97 == 0 {
                drift = (rng.unit() - 0.5) * 0.004;
            }
            let open = close;
            close = (open * (1.0 + drift + (rng.unit() - 0.5) * 0.01)).max(1.0);
            let high = open.max(close) * (1.0 + rng.unit() * 0.003);
            let low = open.min(close) * (1.0 - rng.unit() * 0.003);
            Candle {
                open_time: 1_600_000_000_000 + i as i64 * 3_600_000,
                open,
                high,
                low,
                close,
                volume: 1000.0 + rng.unit() * 500.0,
            }
        })
        .collect()
}

/// A tiny deterministic generator: the check must give the same bars (and
/// model outputs) on every machine and every run.
struct Lcg(u64);

impl Lcg {
    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Runs every check on `wasm`. Never panics on a bad module: every problem
/// becomes a failed check with its reason.
pub fn check_module(host: &PluginHost, wasm: &[u8], opts: &CheckOptions) -> Report {
    let mut checker = Checker {
        host,
        opts,
        report: Report {
            plugin: None,
            bars: opts.candles.len(),
            checks: Vec::new(),
            timings: Vec::new(),
            memory_after_init: None,
            memory_after_run: None,
        },
    };
    checker.run(wasm);
    checker.report
}

struct Checker<'a> {
    host: &'a PluginHost,
    opts: &'a CheckOptions,
    report: Report,
}

/// A run's signals (bar index = position in the whole series), or the
/// fault and the first bar of the call that raised it.
type RunResult = Result<Vec<PluginSignal>, (Fault, usize)>;

impl Checker<'_> {
    fn add(&mut self, name: &'static str, status: Status, detail: impl Into<String>) {
        self.report.checks.push(Check {
            name,
            status,
            detail: detail.into(),
        });
    }

    fn skip_rest(&mut self, names: &[&'static str], why: &str) {
        for name in names {
            self.add(name, Status::Skip, why.to_string());
        }
    }

    fn run(&mut self, wasm: &[u8]) {
        let manifest_ok = self.check_manifest(wasm);
        let module = self.check_module_and_interface(wasm);
        let dynamic = [
            "init",
            "edge_params",
            "batches",
            "output",
            "snapshot_restore",
            "determinism",
            "memory",
            "time",
        ];
        if !manifest_ok || module.is_none() {
            self.skip_rest(&dynamic, "the host refuses to load the module (see above)");
            return;
        }
        // The host's own verdict on the whole load.
        let loaded = match self.host.load(wasm) {
            Ok(m) => m,
            Err(e) => {
                self.add("init", Status::Fail, format!("the host refuses it: {e}"));
                self.skip_rest(&dynamic[1..], "the host refuses to load the module");
                return;
            }
        };
        let Some(base) = self.check_init(&loaded) else {
            self.skip_rest(&dynamic[1..], "init failed");
            return;
        };
        self.check_edge_params(&loaded);
        self.check_runs(&loaded, &base);
    }

    fn check_manifest(&mut self, wasm: &[u8]) -> bool {
        match Manifest::from_module(wasm) {
            Ok(m) => {
                self.report.plugin = Some(format!("{} {}", m.name, m.version));
                let params: Vec<String> = m
                    .params
                    .iter()
                    .map(|p| format!("{}:{:?}", p.name, p.kind).to_lowercase())
                    .collect();
                self.add(
                    "manifest",
                    Status::Pass,
                    format!(
                        "{} {}; params [{}]; indicators [{}]; models [{}]",
                        m.name,
                        m.version,
                        params.join(", "),
                        m.indicators.join(" "),
                        m.models.join(" ")
                    ),
                );
                true
            }
            Err(e) => {
                self.add("manifest", Status::Fail, e.to_string());
                false
            }
        }
    }

    /// `module`, `imports` and `exports`: static checks on the compiled
    /// module; `None` when the host would refuse to load it.
    fn check_module_and_interface(&mut self, wasm: &[u8]) -> Option<Module> {
        let limit = self.host.config().max_module_bytes;
        if wasm.len() > limit {
            self.add(
                "module",
                Status::Fail,
                format!("{} bytes, over the {limit}-byte limit", wasm.len()),
            );
            self.skip_rest(&["imports", "exports"], "the module did not compile");
            return None;
        }
        let module = match Module::new(&self.host.shared.engine, wasm) {
            Ok(m) => m,
            Err(e) => {
                self.add(
                    "module",
                    Status::Fail,
                    format!("not a valid WebAssembly module: {e:#}"),
                );
                self.skip_rest(&["imports", "exports"], "the module did not compile");
                return None;
            }
        };
        self.add("module", Status::Pass, format!("{} bytes", wasm.len()));

        let imports: Vec<String> = module
            .imports()
            .map(|i| format!("{}.{}", i.module(), i.name()))
            .collect();
        let imports_ok = match check_imports(&module) {
            Ok(()) => {
                let list = if imports.is_empty() {
                    "none".to_string()
                } else {
                    imports.join(", ")
                };
                self.add("imports", Status::Pass, format!("imports {list}"));
                true
            }
            Err(e) => {
                self.add(
                    "imports",
                    Status::Fail,
                    format!("{e} (imports: {})", imports.join(", ")),
                );
                false
            }
        };

        // Bad exports do not stop the run: instantiating names the first
        // thing the host trips on (often a clearer reason, e.g. the ABI
        // version a foreign module claims).
        self.check_exports(&module);
        imports_ok.then_some(module)
    }

    fn check_exports(&mut self, module: &Module) {
        let mut problems = Vec::new();
        let mut optional = Vec::new();
        for (name, expected, required) in EXPORTS {
            match module.get_export(name) {
                Some(ExternType::Func(ft)) => {
                    let found = signature(&ft);
                    if found != expected {
                        problems.push(format!("`{name}` has type {found}, expected {expected}"));
                    } else if !required {
                        optional.push(name);
                    }
                }
                Some(other) => problems.push(format!("`{name}` is not a function ({other:?})")),
                None if required => problems.push(format!("`{name}` is missing")),
                None => {}
            }
        }
        match module.get_export(exports::MEMORY) {
            Some(ExternType::Memory(_)) => {}
            Some(_) => problems.push("`memory` is not a memory".into()),
            None => problems.push("`memory` is missing (the module must export its memory)".into()),
        }
        if optional.len() == 1 {
            problems.push(format!(
                "`{}` without its partner: export both cw_snapshot and cw_restore, or neither",
                optional[0]
            ));
        }
        if problems.is_empty() {
            let state = if optional.is_empty() {
                "no snapshot exports (state is not carried across restarts)"
            } else {
                "cw_snapshot and cw_restore"
            };
            self.add(
                "exports",
                Status::Pass,
                format!("the five required exports and memory; {state}"),
            );
        } else {
            self.add("exports", Status::Fail, problems.join("; "));
        }
    }

    /// `init` with the defaults and the overrides; returns the base setup.
    fn check_init(&mut self, module: &LoadedModule) -> Option<Setup> {
        let setup = match Setup::new(module, &self.opts.overrides, &self.opts.candles) {
            Ok(s) => s,
            Err(e) => {
                self.add("init", Status::Fail, e.to_string());
                return None;
            }
        };
        match self.instantiate(module, &setup) {
            Ok(plugin) => {
                let l = plugin.layout();
                self.report.memory_after_init = Some(plugin.memory_bytes());
                self.add(
                    "init",
                    Status::Pass,
                    format!(
                        "accepted {}; {} values per bar; input holds {} bars, output {} signals; memory {} KiB",
                        setup.describe(module.manifest()),
                        setup.n_values,
                        l.input_capacity,
                        l.output_capacity,
                        plugin.memory_bytes() / 1024
                    ),
                );
                Some(setup)
            }
            Err(e) => {
                self.add("init", Status::Fail, e.to_string());
                None
            }
        }
    }

    fn instantiate(&self, module: &LoadedModule, setup: &Setup) -> Result<Plugin, LoadError> {
        self.host
            .instantiate_with(module, &setup.params, setup.n_values, &self.opts.limits)
    }

    /// `edge_params`: each bounded parameter at its min and at its max,
    /// each bool both ways, the others as in the base run.
    fn check_edge_params(&mut self, module: &LoadedModule) {
        let manifest = module.manifest();
        let mut cases: Vec<(String, String)> = Vec::new();
        for p in &manifest.params {
            match p.kind {
                ParamType::Bool => {
                    cases.push((p.name.clone(), "false".into()));
                    cases.push((p.name.clone(), "true".into()));
                }
                ParamType::Int | ParamType::Float => {
                    for bound in [p.min, p.max].into_iter().flatten() {
                        let text = if p.kind == ParamType::Int {
                            format!("{}", bound as i64)
                        } else {
                            format!("{bound}")
                        };
                        cases.push((p.name.clone(), text));
                    }
                }
            }
        }
        if cases.is_empty() {
            self.add("edge_params", Status::Pass, "no bounded parameters");
            return;
        }
        let mut accepted = 0;
        let mut refused = Vec::new();
        let mut problems = Vec::new();
        let mut silent = Vec::new();
        let mut host_refused = Vec::new();
        for (name, value) in &cases {
            let mut overrides: Vec<(String, String)> = self
                .opts
                .overrides
                .iter()
                .filter(|(k, _)| k != name)
                .cloned()
                .collect();
            overrides.push((name.clone(), value.clone()));
            let case = format!("{name}={value}");
            let setup = match Setup::new(module, &overrides, &self.opts.candles) {
                Ok(s) => s,
                Err(e) => {
                    // The host refuses the value before the plugin runs: the
                    // operator gets a clear error, but the manifest's range
                    // promises more than the host can give.
                    host_refused.push(format!("{case} ({e})"));
                    continue;
                }
            };
            match self.instantiate(module, &setup) {
                Ok(plugin) => {
                    let mut fresh = Some(plugin);
                    let ran = twice(
                        || {
                            let plugin = match fresh.take() {
                                Some(p) => p,
                                None => self
                                    .instantiate(module, &setup)
                                    .map_err(|e| (Fault::Trap(e.to_string()), 0))?,
                            };
                            run_series(plugin, &setup, &self.opts.candles, 64)
                        },
                        |(f, _)| matches!(f, Fault::Deadline(_)),
                    );
                    match ran {
                        Ok(_) => accepted += 1,
                        Err((fault, bar)) => {
                            problems.push(format!("{case}: {fault} (at bar {bar})"))
                        }
                    }
                }
                Err(LoadError::Init { message, .. }) => match message {
                    Some(m) => refused.push(format!("{case} ({m})")),
                    None => {
                        silent.push(case.clone());
                        refused.push(case);
                    }
                },
                Err(e) => problems.push(format!("{case}: {e}")),
            }
        }
        let mut detail = format!("{accepted} of {} cases accepted and ran", cases.len());
        if !refused.is_empty() {
            detail.push_str(&format!("; refused cleanly: {}", refused.join(", ")));
        }
        if !problems.is_empty() {
            self.add(
                "edge_params",
                Status::Fail,
                format!("{}; {detail}", problems.join("; ")),
            );
        } else if !host_refused.is_empty() {
            self.add(
                "edge_params",
                Status::Warn,
                format!(
                    "{detail}; the host refuses, before the plugin runs (narrow the manifest's range): {}",
                    host_refused.join(", ")
                ),
            );
        } else if !silent.is_empty() {
            self.add(
                "edge_params",
                Status::Warn,
                format!(
                    "{detail}; refused without logging why (log an error line before refusing): {}",
                    silent.join(", ")
                ),
            );
        } else {
            self.add("edge_params", Status::Pass, detail);
        }
    }

    /// `batches`, `output`, `snapshot_restore`, `determinism`, `memory`, `time`.
    fn check_runs(&mut self, module: &LoadedModule, setup: &Setup) {
        let candles = &self.opts.candles;
        let mut results: Vec<(usize, RunResult)> = Vec::new();
        let mut memory_after = 0;
        for batch in BATCH_SIZES {
            let timed = self.timed_run(module, setup, batch);
            match timed {
                Ok((signals, timing, memory)) => {
                    memory_after = memory_after.max(memory);
                    self.report.timings.push(timing);
                    results.push((batch, Ok(signals)));
                }
                Err(e) => results.push((batch, Err(e))),
            }
        }

        // Faults, by kind, each to the check it belongs to.
        let mut faults: Vec<(usize, Fault, usize)> = Vec::new();
        for (batch, r) in &results {
            if let Err((fault, bar)) = r {
                faults.push((*batch, fault.clone(), *bar));
            }
        }
        let fault_of = |pred: fn(&Fault) -> bool| {
            faults
                .iter()
                .find(|(_, f, _)| pred(f))
                .map(|(batch, f, bar)| {
                    let time = candles.get(*bar).map_or(0, |c| c.open_time);
                    format!("{f} (batches of {batch}, call starting at bar {bar}, time {time})")
                })
        };
        let output_fault = fault_of(|f| matches!(f, Fault::InvalidOutput(_) | Fault::ErrorCode(_)));
        let trap_fault = fault_of(|f| matches!(f, Fault::Trap(_) | Fault::StackOverflow));
        let memory_fault = fault_of(|f| matches!(f, Fault::MemoryLimit(_)));
        let deadline_fault = fault_of(|f| matches!(f, Fault::Deadline(_)));

        // batches: every size ran, and all gave the same signals.
        let oks: Vec<(usize, &Vec<PluginSignal>)> = results
            .iter()
            .filter_map(|(b, r)| r.as_ref().ok().map(|s| (*b, s)))
            .collect();
        let mut batch_problems: Vec<String> = faults
            .iter()
            .map(|(batch, f, bar)| format!("batches of {batch}: {} at bar {bar}", f.kind()))
            .collect();
        if let Some((first_batch, first)) = oks.first() {
            for (batch, signals) in &oks[1..] {
                if let Some(diff) = first_difference(first, signals) {
                    batch_problems.push(format!(
                        "batches of {batch} differ from batches of {first_batch}: {diff}"
                    ));
                }
            }
        }
        let reference = oks.first().map(|(_, s)| (*s).clone());
        if batch_problems.is_empty() {
            let s = reference.as_deref().unwrap_or_default();
            self.add(
                "batches",
                Status::Pass,
                format!(
                    "batches of {:?} over {} bars: the same {} signals ({})",
                    BATCH_SIZES,
                    candles.len(),
                    s.len(),
                    count_actions(s)
                ),
            );
        } else {
            let detail = match &trap_fault {
                Some(t) => format!("{t}; {}", batch_problems.join("; ")),
                None => batch_problems.join("; "),
            };
            self.add("batches", Status::Fail, detail);
        }

        match output_fault {
            Some(f) => self.add("output", Status::Fail, f),
            None if faults.is_empty() => self.add(
                "output",
                Status::Pass,
                "every signal record valid (bar in range and in order, action 0-3, strength finite in [-1, 1], stops positive or NaN)",
            ),
            None => self.add(
                "output",
                Status::Pass,
                "every record written before the fault was valid",
            ),
        }

        match &reference {
            Some(reference) if faults.is_empty() => {
                self.check_snapshot(module, setup, reference);
                self.check_determinism(module, setup, reference);
            }
            _ => self.skip_rest(
                &["snapshot_restore", "determinism"],
                "the plugin faulted while running",
            ),
        }

        self.report.memory_after_run = Some(memory_after);
        self.check_memory(memory_fault, memory_after);
        self.check_time(deadline_fault);
    }

    /// One run at `batch`, timed; a missed deadline is confirmed by a
    /// second run, so one preemption of this process on a busy machine is
    /// not reported as the plugin's fault.
    fn timed_run(
        &self,
        module: &LoadedModule,
        setup: &Setup,
        batch: usize,
    ) -> Result<(Vec<PluginSignal>, Timing, usize), (Fault, usize)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let plugin = self
                .instantiate(module, setup)
                .map_err(|e| (Fault::Trap(format!("re-instantiation failed: {e}")), 0))?;
            let mut slowest = Duration::ZERO;
            let started = Instant::now();
            let result = run_series_timed(plugin, setup, &self.opts.candles, batch, &mut slowest);
            let elapsed = started.elapsed();
            match result {
                Ok((signals, memory)) => {
                    let bars = self.opts.candles.len().max(1);
                    return Ok((
                        signals,
                        Timing {
                            batch,
                            ns_per_bar: elapsed.as_nanos() as f64 / bars as f64,
                            slowest_call_us: slowest.as_nanos() as f64 / 1000.0,
                        },
                        memory,
                    ));
                }
                Err((Fault::Deadline(_), _)) if attempt == 1 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn check_snapshot(&mut self, module: &LoadedModule, setup: &Setup, reference: &[PluginSignal]) {
        let n = self.opts.candles.len();
        let splits = [1.min(n), n / 2];
        let mut checked = Vec::new();
        for split in splits {
            let outcome = twice(
                || -> Result<Option<usize>, String> {
                    let mut first = self.instantiate(module, setup).map_err(|e| e.to_string())?;
                    let mut signals =
                        run_range(&mut first, setup, &self.opts.candles, 0..split, 64)
                            .map_err(|(f, bar)| format!("{f} at bar {bar}"))?;
                    let Some(snapshot) =
                        first.snapshot().map_err(|f| format!("cw_snapshot: {f}"))?
                    else {
                        return Ok(None);
                    };
                    let mut second = self.instantiate(module, setup).map_err(|e| e.to_string())?;
                    if !second
                        .restore(&snapshot)
                        .map_err(|f| format!("cw_restore: {f}"))?
                    {
                        return Err(format!(
                        "a fresh instance rejected the {}-byte snapshot taken after {split} bars",
                        snapshot.len()
                    ));
                    }
                    let rest = run_range(&mut second, setup, &self.opts.candles, split..n, 64)
                        .map_err(|(f, bar)| format!("{f} at bar {bar} (after restore)"))?;
                    signals.extend(rest);
                    match first_difference(reference, &signals) {
                    None => Ok(Some(snapshot.len())),
                    Some(diff) => Err(format!(
                        "snapshot after {split} bars, restored and continued, differs from the uninterrupted run: {diff}"
                    )),
                }
                },
                |e: &String| e.contains(DEADLINE_WORDS),
            );
            match outcome {
                Ok(Some(len)) => checked.push(format!("after bar {split} ({len} bytes)")),
                Ok(None) => {
                    self.add(
                        "snapshot_restore",
                        Status::Skip,
                        "keeps no snapshot (no cw_snapshot, or it returns -6): a restart starts fresh",
                    );
                    return;
                }
                Err(e) => {
                    self.add("snapshot_restore", Status::Fail, e);
                    return;
                }
            }
        }
        self.add(
            "snapshot_restore",
            Status::Pass,
            format!(
                "snapshot, restore into a fresh instance, continue = uninterrupted run; {}",
                checked.join(", ")
            ),
        );
    }

    fn check_determinism(
        &mut self,
        module: &LoadedModule,
        setup: &Setup,
        reference: &[PluginSignal],
    ) {
        let outcome = twice(
            || {
                self.instantiate(module, setup)
                    .map_err(|e| e.to_string())
                    .and_then(|p| {
                        run_series(p, setup, &self.opts.candles, 64)
                            .map_err(|(f, bar)| format!("{f} at bar {bar}"))
                    })
            },
            |e: &String| e.contains(DEADLINE_WORDS),
        );
        match outcome {
            Ok(signals) => match first_difference(reference, &signals) {
                None => self.add(
                    "determinism",
                    Status::Pass,
                    format!("a second instance gave the same {} signals", signals.len()),
                ),
                Some(diff) => self.add(
                    "determinism",
                    Status::Fail,
                    format!("two instances, same bars, different signals: {diff}"),
                ),
            },
            Err(e) => self.add("determinism", Status::Fail, format!("second instance: {e}")),
        }
    }

    fn check_memory(&mut self, fault: Option<String>, after_run: usize) {
        let cap = self.opts.limits.memory_bytes;
        if let Some(f) = fault {
            self.add("memory", Status::Fail, f);
            return;
        }
        let at_init = self.report.memory_after_init.unwrap_or(0);
        let bars = self.opts.candles.len().max(1) as f64;
        let growth = after_run.saturating_sub(at_init) as f64 / bars;
        let summary = format!(
            "{} KiB after init, {} KiB after {} bars, cap {} MiB",
            at_init / 1024,
            after_run / 1024,
            self.opts.candles.len(),
            cap >> 20
        );
        if growth > 0.0 {
            let left = cap.saturating_sub(after_run) as f64 / growth;
            let detail = format!(
                "{summary}; grows about {growth:.0} bytes per bar: the cap is reached after about {left:.0} more bars"
            );
            let status = if left < GROWTH_HORIZON_BARS {
                Status::Warn
            } else {
                Status::Pass
            };
            self.add("memory", status, detail);
        } else {
            self.add(
                "memory",
                Status::Pass,
                format!("{summary}; no growth while running"),
            );
        }
    }

    fn check_time(&mut self, fault: Option<String>) {
        let deadline = self.opts.limits.deadline;
        if let Some(f) = fault {
            self.add(
                "time",
                Status::Fail,
                format!("{f}; confirmed by a second run"),
            );
            return;
        }
        let timings: Vec<String> = self
            .report
            .timings
            .iter()
            .map(|t| format!("batch {}: {:.0} ns/bar", t.batch, t.ns_per_bar))
            .collect();
        let slowest = self
            .report
            .timings
            .iter()
            .map(|t| t.slowest_call_us)
            .fold(0.0, f64::max);
        let detail = format!(
            "{}; slowest call {slowest:.1} µs of the {:?} deadline",
            timings.join(", "),
            deadline
        );
        let status = if slowest * 1000.0 > deadline.as_nanos() as f64 / 2.0 {
            Status::Warn
        } else {
            Status::Pass
        };
        self.add("time", status, detail);
    }
}

/// Parameters, indicators and each bar's values for one parameter set.
struct Setup {
    params: Vec<f64>,
    n_values: usize,
    /// `values[i * n_values..][..n_values]`: bar `i`'s indicator columns and model outputs.
    values: Vec<f64>,
}

impl Setup {
    /// Resolves `overrides`, computes the manifest's indicators over
    /// `candles`, and fills model outputs with deterministic values in
    /// `[0, 1]` (NaN every tenth bar: the ABI's "no output for this bar").
    fn new(
        module: &LoadedModule,
        overrides: &[(String, String)],
        candles: &[Candle],
    ) -> Result<Setup, LoadError> {
        let manifest = module.manifest();
        let params = manifest.resolve_params(overrides)?;
        let spec = manifest
            .indicator_spec(&params)
            .map_err(|reason| LoadError::Indicators {
                spec: manifest.indicators.join(" "),
                reason,
            })?;
        let mut set = if spec.is_empty() {
            None
        } else {
            Some(
                IndicatorSet::parse(&spec).map_err(|e| LoadError::Indicators {
                    spec: spec.clone(),
                    reason: e.to_string(),
                })?,
            )
        };
        let width = set.as_ref().map_or(0, IndicatorSet::width);
        let n_values = width + manifest.models.len();
        let mut values = vec![f64::NAN; candles.len() * n_values];
        let mut rng = Lcg(0x6d6f_6465_6c73);
        for (i, candle) in candles.iter().enumerate() {
            let row = &mut values[i * n_values..(i + 1) * n_values];
            if let Some(set) = set.as_mut() {
                set.update(candle, &mut row[..width]);
            }
            for slot in &mut row[width..] {
                let v = rng.unit();
                *slot = if i % 10 == 9 { f64::NAN } else { v };
            }
        }
        Ok(Setup {
            params,
            n_values,
            values,
        })
    }

    fn describe(&self, manifest: &Manifest) -> String {
        if manifest.params.is_empty() {
            return "no parameters".into();
        }
        manifest
            .params
            .iter()
            .zip(&self.params)
            .map(|(p, v)| format!("{}={v}", p.name))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.n_values..(i + 1) * self.n_values]
    }
}

fn run_series(plugin: Plugin, setup: &Setup, candles: &[Candle], batch: usize) -> RunResult {
    let mut slowest = Duration::ZERO;
    run_series_timed(plugin, setup, candles, batch, &mut slowest).map(|(s, _)| s)
}

/// Runs all `candles` through a fresh instance in batches of `batch`;
/// returns the signals and the memory size at the end.
fn run_series_timed(
    mut plugin: Plugin,
    setup: &Setup,
    candles: &[Candle],
    batch: usize,
    slowest: &mut Duration,
) -> Result<(Vec<PluginSignal>, usize), (Fault, usize)> {
    let signals = run_range_timed(
        &mut plugin,
        setup,
        candles,
        0..candles.len(),
        batch,
        slowest,
    )?;
    Ok((signals, plugin.memory_bytes()))
}

fn run_range(
    plugin: &mut Plugin,
    setup: &Setup,
    candles: &[Candle],
    range: std::ops::Range<usize>,
    batch: usize,
) -> RunResult {
    let mut slowest = Duration::ZERO;
    run_range_timed(plugin, setup, candles, range, batch, &mut slowest)
}

/// Runs bars `range` in batches of `batch`, as a runner would; signal bar
/// indices are made positions in the whole series.
fn run_range_timed(
    plugin: &mut Plugin,
    setup: &Setup,
    candles: &[Candle],
    range: std::ops::Range<usize>,
    batch: usize,
    slowest: &mut Duration,
) -> RunResult {
    let mut bars = BarBatch::new(setup.n_values);
    let mut out = Vec::new();
    let mut start = range.start;
    while start < range.end {
        let end = (start + batch.max(1)).min(range.end);
        bars.clear();
        for (i, candle) in candles.iter().enumerate().take(end).skip(start) {
            bars.push(candle, setup.row(i));
        }
        let now_ms = candles[end - 1].open_time;
        let began = Instant::now();
        let result = plugin.run_batch(&bars, now_ms);
        *slowest = (*slowest).max(began.elapsed());
        let signals = result.map_err(|f| (f, start))?;
        out.extend(signals.iter().map(|s| PluginSignal {
            bar: start + s.bar,
            time: candles[start + s.bar].open_time,
            ..*s
        }));
        start = end;
    }
    Ok(out)
}

/// How a missed deadline reads in a [`Fault`]'s message.
const DEADLINE_WORDS: &str = "missed its deadline";

/// Runs `f`, and once more when it failed with a missed deadline: one
/// preemption of this process on a busy machine is not the plugin's fault,
/// while a plugin that is really too slow misses it again.
fn twice<T, E>(
    mut f: impl FnMut() -> Result<T, E>,
    is_deadline: impl Fn(&E) -> bool,
) -> Result<T, E> {
    match f() {
        Err(e) if is_deadline(&e) => f(),
        other => other,
    }
}

/// The first place two signal lists differ, described; `None` when equal.
fn first_difference(a: &[PluginSignal], b: &[PluginSignal]) -> Option<String> {
    let show = |s: Option<&PluginSignal>| match s {
        Some(s) => format!(
            "{} at bar {} (strength {})",
            s.action.as_str(),
            s.bar,
            s.strength
        ),
        None => "nothing".into(),
    };
    let at = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    Some(format!(
        "signal #{at}: {} vs {} ({} vs {} signals in all)",
        show(a.get(at)),
        show(b.get(at)),
        a.len(),
        b.len()
    ))
}

fn count_actions(signals: &[PluginSignal]) -> String {
    let mut counts = [0usize; 4];
    for s in signals {
        counts[s.action as usize] += 1;
    }
    format!(
        "buy {}, sell {}, exit {}, hold {}",
        counts[1], counts[2], counts[3], counts[0]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_candles_are_deterministic_and_well_formed() {
        let a = synthetic_candles(500);
        assert_eq!(a, synthetic_candles(500));
        for c in &a {
            assert!(c.low <= c.open.min(c.close) && c.high >= c.open.max(c.close));
            assert!(c.low > 0.0 && c.volume > 0.0);
        }
        assert!(a.windows(2).all(|w| w[1].open_time > w[0].open_time));
    }

    /// The example and hostile plugins, built once for all tests.
    fn wasm(name: &str) -> Vec<u8> {
        static DIR: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
            std::sync::OnceLock::new();
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = DIR
            .get_or_init(|| crate::testing::build_plugins(&repo))
            .as_ref()
            .expect("plugins build");
        std::fs::read(dir.join(format!("{name}.wasm"))).expect("built module")
    }

    /// Checks a module on synthetic bars, with a deadline generous enough
    /// for a loaded test machine (an endless loop misses any deadline).
    fn check(name: &str, overrides: &[(&str, &str)]) -> Report {
        let host = PluginHost::new(crate::HostConfig::default()).unwrap();
        let limits = Limits {
            deadline: Duration::from_millis(20),
            ..Limits::default()
        };
        let opts = CheckOptions {
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            candles: synthetic_candles(1500),
            limits,
        };
        check_module(&host, &wasm(name), &opts)
    }

    fn detail<'r>(report: &'r Report, check: &str) -> (&'r Status, &'r str) {
        let c = report
            .checks
            .iter()
            .find(|c| c.name == check)
            .unwrap_or_else(|| panic!("no {check} check"));
        (&c.status, &c.detail)
    }

    #[test]
    fn every_example_plugin_conforms() {
        for name in [
            "sma_cross",
            "rsi_reversion",
            "bollinger_breakout",
            "model_follow",
        ] {
            let r = check(name, &[]);
            let failed: Vec<_> = r.failures().collect();
            assert!(failed.is_empty(), "{name}: {failed:?}");
            assert_eq!(r.checks.len(), 12, "{name}: every check reported");
            let (status, text) = detail(&r, "batches");
            assert_eq!(*status, Status::Pass);
            assert!(text.contains("the same"), "{name}: {text}");
            assert_eq!(r.timings.len(), BATCH_SIZES.len());
        }
        // sma_cross keeps state: its snapshot is really exercised.
        let r = check("sma_cross", &[]);
        assert_eq!(*detail(&r, "snapshot_restore").0, Status::Pass);
    }

    #[test]
    fn each_hostile_module_fails_the_check_that_names_its_fault() {
        /// Module, overrides, the check that must fail, words of its reason.
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
            &'static str,
        );
        let cases: [Case; 7] = [
            ("hostile", &[("mode", "1")], "time", "missed its deadline"),
            ("hostile", &[("mode", "2")], "memory", "memory limit"),
            ("hostile", &[("mode", "3")], "batches", "trap"),
            ("hostile", &[("mode", "4")], "output", "strength 2 is not"),
            ("hostile", &[("mode", "5")], "batches", "stack overflow"),
            (
                "forbidden_import",
                &[],
                "imports",
                "wasi_snapshot_preview1.fd_write",
            ),
            ("wrong_abi", &[], "init", "ABI version 2 is not supported"),
        ];
        for (name, overrides, check_name, reason) in cases {
            let r = check(name, overrides);
            assert!(!r.passed(), "{name} {overrides:?} passed");
            let (status, text) = detail(&r, check_name);
            assert_eq!(*status, Status::Fail, "{name} {overrides:?}: {text}");
            assert!(text.contains(reason), "{name} {overrides:?}: {text}");
        }
        // A module from another toolchain that lacks exports is told which.
        let r = check("wrong_abi", &[]);
        assert!(detail(&r, "exports").1.contains("`cw_on_batch` is missing"));
    }

    #[test]
    fn a_deadline_is_retried_once_and_other_errors_are_not() {
        let mut calls = 0;
        let r: Result<(), &str> = twice(
            || {
                calls += 1;
                Err("deadline")
            },
            |e| *e == "deadline",
        );
        assert!(r.is_err());
        assert_eq!(calls, 2);
        let mut calls = 0;
        let _ = twice(
            || -> Result<(), &str> {
                calls += 1;
                Err("trap")
            },
            |e| *e == "deadline",
        );
        assert_eq!(calls, 1);
    }

    #[test]
    fn garbage_is_a_failed_module_check_not_a_panic() {
        let host = PluginHost::new(crate::HostConfig::default()).unwrap();
        let report = check_module(
            &host,
            b"\0asm\x01\0\0\0garbage",
            &CheckOptions {
                overrides: Vec::new(),
                candles: synthetic_candles(10),
                limits: Limits::default(),
            },
        );
        assert!(!report.passed());
        let failed: Vec<_> = report.failures().map(|c| c.name).collect();
        assert!(failed.contains(&"manifest"), "{failed:?}");
        assert!(report
            .checks
            .iter()
            .any(|c| c.name == "time" && c.status == Status::Skip));
    }
}
