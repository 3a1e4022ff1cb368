//! The host side of the three imports, the per-store data they use, and the
//! load-time check that a module imports nothing else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candlewick_sdk::abi::{imports, level, IMPORT_MODULE};
use wasmtime::{Caller, Engine, ExternType, FuncType, Linker, Module, ResourceLimiter};

use crate::error::LoadError;
use crate::limits::Limits;

/// Caps linear memory (and tables) and remembers that the cap was hit, so a
/// trap that follows can be reported as a memory fault rather than a bare
/// trap.
#[derive(Debug)]
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) memory_exceeded: bool,
}

/// Table elements an instance may have (a Rust plugin needs a handful).
const TABLE_ELEMENTS: usize = 10_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

/// Everything a plugin's store holds besides the instance.
#[derive(Debug)]
pub(crate) struct StoreData {
    pub(crate) limiter: Limiter,
    pub(crate) plugin: Arc<str>,
    /// What `now_ms` answers during the current call.
    pub(crate) now_ms: i64,
    /// Log lines the current call may still emit.
    pub(crate) log_budget: u32,
    pub(crate) logs_dropped: u64,
    /// The last error-level line, quoted when init fails or a trap follows.
    pub(crate) last_error: Option<String>,
    pub(crate) metrics: BTreeMap<String, f64>,
    limits: Limits,
    log_gate: Arc<LogGate>,
}

/// The log lines per second all plugins of a host may write together: a
/// token bucket (burst twice the rate), so a thousand plugins each within
/// their per-call budget still cannot flood the engine's log.
#[derive(Debug)]
pub(crate) struct LogGate {
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl LogGate {
    pub(crate) fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        LogGate {
            per_second,
            state: Mutex::new((2.0 * per_second, Instant::now())),
        }
    }

    /// Whether one more line may be written at `now`.
    pub(crate) fn admit(&self, now: Instant) -> bool {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let (tokens, last) = &mut *state;
        let dt = now.saturating_duration_since(*last).as_secs_f64();
        *last = now;
        *tokens = (*tokens + dt * self.per_second).min(2.0 * self.per_second);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A guest's text made safe for a log line: control characters (newlines,
/// escape sequences that would repaint a terminal, NUL) are written as
/// `\u{..}` escapes, so one guest line is one log line, verbatim otherwise.
pub(crate) fn escape_controls(line: &str) -> String {
    if !line.chars().any(char::is_control) {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

impl StoreData {
    pub(crate) fn new(plugin: Arc<str>, limits: &Limits, log_gate: Arc<LogGate>) -> Self {
        StoreData {
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                memory_exceeded: false,
            },
            plugin,
            now_ms: 0,
            log_budget: limits.log_lines_per_call,
            logs_dropped: 0,
            last_error: None,
            metrics: BTreeMap::new(),
            limits: limits.clone(),
            log_gate,
        }
    }

    /// Readies the store for the next call into the guest. A refused
    /// `memory.grow` of an earlier call that the guest survived must not
    /// make this call's unrelated trap read as a memory fault.
    #[inline]
    pub(crate) fn begin_call(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        self.log_budget = self.limits.log_lines_per_call;
        self.limiter.memory_exceeded = false;
    }
}

/// Reads `len` bytes (at most `cap`) of guest memory at `ptr`; `None` when
/// out of bounds.
fn guest_bytes(
    caller: &mut Caller<'_, StoreData>,
    ptr: u32,
    len: u32,
    cap: usize,
) -> Option<Vec<u8>> {
    let memory = caller
        .get_export(candlewick_sdk::abi::exports::MEMORY)?
        .into_memory()?;
    let start = ptr as usize;
    let end = start.checked_add((len as usize).min(cap))?;
    memory.data(&*caller).get(start..end).map(<[u8]>::to_vec)
}

fn log(mut caller: Caller<'_, StoreData>, lvl: i32, ptr: u32, len: u32) {
    let cap = caller.data().limits.log_line_bytes;
    let data = caller.data_mut();
    if data.log_budget == 0 {
        data.logs_dropped += 1;
        return;
    }
    data.log_budget -= 1;
    if !data.log_gate.admit(Instant::now()) {
        data.logs_dropped += 1;
        return;
    }
    let Some(bytes) = guest_bytes(&mut caller, ptr, len, cap) else {
        caller.data_mut().logs_dropped += 1;
        return;
    };
    let line = escape_controls(&String::from_utf8_lossy(&bytes));
    let data = caller.data_mut();
    let plugin = &*data.plugin;
    match lvl {
        level::ERROR => tracing::error!(plugin, "{line}"),
        level::WARN => tracing::warn!(plugin, "{line}"),
        level::INFO => tracing::info!(plugin, "{line}"),
        level::DEBUG => tracing::debug!(plugin, "{line}"),
        _ => tracing::trace!(plugin, "{line}"),
    }
    if lvl == level::ERROR {
        data.last_error = Some(line);
    }
}

fn metric(mut caller: Caller<'_, StoreData>, ptr: u32, len: u32, value: f64) {
    let Some(bytes) = guest_bytes(&mut caller, ptr, len, 64) else {
        return;
    };
    let Ok(name) = String::from_utf8(bytes) else {
        return;
    };
    let data = caller.data_mut();
    if data.metrics.contains_key(&name) || data.metrics.len() < data.limits.metric_names {
        data.metrics.insert(name, value);
    }
}

/// The linker with exactly the three imports; shared by all stores.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    linker.func_wrap(IMPORT_MODULE, imports::LOG, log)?;
    linker.func_wrap(IMPORT_MODULE, imports::METRIC, metric)?;
    linker.func_wrap(
        IMPORT_MODULE,
        imports::NOW_MS,
        |caller: Caller<'_, StoreData>| caller.data().now_ms,
    )?;
    Ok(linker)
}

/// A function type as text, e.g. `(i32, i32) -> (i64)`.
pub(crate) fn signature(ft: &FuncType) -> String {
    let list = |it: &mut dyn Iterator<Item = wasmtime::ValType>| {
        it.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut ft.params()),
        list(&mut ft.results())
    )
}

/// Refuses any import other than the three, or one of them with the wrong type.
pub(crate) fn check_imports(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        let expected = match (import.module(), import.name()) {
            (IMPORT_MODULE, imports::LOG) => "(i32, i32, i32) -> ()",
            (IMPORT_MODULE, imports::METRIC) => "(i32, i32, f64) -> ()",
            (IMPORT_MODULE, imports::NOW_MS) => "() -> (i64)",
            (module, name) => {
                return Err(LoadError::ForbiddenImport {
                    module: module.to_string(),
                    name: name.to_string(),
                })
            }
        };
        let found = match import.ty() {
            ExternType::Func(ft) => signature(&ft),
            other => format!("{other:?}"),
        };
        if found != expected {
            return Err(LoadError::ImportType {
                name: import.name().to_string(),
                found,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_controls("plain é line"), "plain é line");
        let forged = "ok\n2026-01-01T00:00:00Z ERROR engine: fake\x1b[2J\0\r";
        let e = escape_controls(forged);
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert_eq!(
            e,
            "ok\\u{a}2026-01-01T00:00:00Z ERROR engine: fake\\u{1b}[2J\\u{0}\\u{d}"
        );
    }

    #[test]
    fn the_host_log_gate_admits_its_burst_then_its_rate() {
        let gate = LogGate::new(10);
        let t0 = Instant::now();
        let burst = (0..1000).filter(|_| gate.admit(t0)).count();
        assert!((20..=21).contains(&burst), "{burst}");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..1000).filter(|_| gate.admit(t1)).count(), 10);
    }
}
