//! [`Plugin`]: one sandboxed instance and the calls into it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use candlewick_sdk::abi::{
    self, exports, ErrorCode, InitHeader, IoLayout, SignalRecord, ABI_VERSION, INIT_HEADER_SIZE,
    IO_LAYOUT_SIZE, SIGNAL_RECORD_SIZE,
};
use wasmtime::{Memory, Store, Trap, TypedFunc};

use crate::bars::BarBatch;
use crate::error::{Fault, LoadError};
use crate::host::{LoadedModule, Shared};
use crate::imports::StoreData;
use crate::limits::Limits;
use crate::manifest::Manifest;
use crate::signal::{validate, PluginSignal};

/// One live, sandboxed plugin instance.
///
/// A `Plugin` is driven by one thread at a time (it is `Send`, not shared):
/// the worker that owns its symbol stream. Every call into the guest runs
/// under the limits it was made with, and every output is validated before
/// it is returned. An `Err(Fault)` from a call leaves the instance in an
/// unknown state: drop it (a [`PluginRunner`](crate::PluginRunner) does,
/// and restarts it after a backoff).
pub struct Plugin {
    store: Store<StoreData>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    on_batch: TypedFunc<u32, i32>,
    snapshot: Option<TypedFunc<(), i64>>,
    restore: Option<TypedFunc<(u32, u32), i32>>,
    layout: IoLayout,
    n_values: usize,
    /// Epoch ticks of the per-call deadline (`cw_on_batch`, `cw_snapshot`).
    deadline_ticks: u64,
    /// Epoch ticks of the setup deadline (`cw_init`, `cw_io_layout`, `cw_restore`).
    setup_ticks: u64,
    setup_deadline: Duration,
    limits: Limits,
    manifest: Arc<Manifest>,
    signals: Vec<PluginSignal>,
    /// Keeps the engine's ticker running while this plugin may be called.
    _shared: Arc<Shared>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

fn export_err(name: &'static str) -> impl Fn(wasmtime::Error) -> LoadError {
    move |e| LoadError::Export {
        name,
        reason: format!("{e:#}"),
    }
}

impl Plugin {
    pub(crate) fn new(
        shared: Arc<Shared>,
        module: &LoadedModule,
        params: &[f64],
        n_values: usize,
        limits: &Limits,
    ) -> Result<Self, LoadError> {
        let manifest = module.manifest.clone();
        let deadline_ticks = ticks(limits.deadline, shared.config.epoch_tick);
        // Setup never gets less time than one call.
        let setup_deadline = limits.setup_deadline.max(limits.deadline);
        let setup_ticks = ticks(setup_deadline, shared.config.epoch_tick);
        let mut store = Store::new(
            &shared.engine,
            StoreData::new(
                manifest.name.as_str().into(),
                limits,
                shared.log_gate.clone(),
            ),
        );
        store.limiter(|data| &mut data.limiter);
        // The start function, if any, and the setup calls below run under
        // the setup deadline; bars run under the per-call one.
        store.set_epoch_deadline(setup_ticks);
        let instance = shared
            .linker
            .instantiate(&mut store, &module.module)
            .map_err(|e| {
                if store.data().limiter.memory_exceeded {
                    LoadError::MemoryLimit {
                        limit: limits.memory_bytes,
                    }
                } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    LoadError::Faulted {
                        stage: "start function",
                        fault: Fault::Deadline(setup_deadline),
                    }
                } else {
                    LoadError::Instantiate(format!("{e:#}"))
                }
            })?;

        let version = instance
            .get_typed_func::<(), u32>(&mut store, exports::ABI_VERSION)
            .map_err(export_err(exports::ABI_VERSION))?;
        store.set_epoch_deadline(setup_ticks);
        let found = version
            .call(&mut store, ())
            .map_err(|e| LoadError::Faulted {
                stage: exports::ABI_VERSION,
                fault: classify(&store, limits, setup_deadline, e),
            })?;
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion {
                found,
                expected: ABI_VERSION,
            });
        }

        let memory = instance
            .get_memory(&mut store, exports::MEMORY)
            .ok_or(LoadError::Export {
                name: exports::MEMORY,
                reason: "missing (must export its memory)".into(),
            })?;
        let alloc = instance
            .get_typed_func(&mut store, exports::ALLOC)
            .map_err(export_err(exports::ALLOC))?;
        let init = instance
            .get_typed_func::<(u32, u32), i32>(&mut store, exports::INIT)
            .map_err(export_err(exports::INIT))?;
        let io_layout = instance
            .get_typed_func::<(), u32>(&mut store, exports::IO_LAYOUT)
            .map_err(export_err(exports::IO_LAYOUT))?;
        let on_batch = instance
            .get_typed_func(&mut store, exports::ON_BATCH)
            .map_err(export_err(exports::ON_BATCH))?;
        let optional = |store: &mut Store<StoreData>, name: &'static str| {
            instance.get_func(&mut *store, name).is_some()
        };
        let snapshot = if optional(&mut store, exports::SNAPSHOT) {
            Some(
                instance
                    .get_typed_func(&mut store, exports::SNAPSHOT)
                    .map_err(export_err(exports::SNAPSHOT))?,
            )
        } else {
            None
        };
        let restore = if optional(&mut store, exports::RESTORE) {
            Some(
                instance
                    .get_typed_func(&mut store, exports::RESTORE)
                    .map_err(export_err(exports::RESTORE))?,
            )
        } else {
            None
        };

        let mut plugin = Plugin {
            store,
            memory,
            alloc,
            on_batch,
            snapshot,
            restore,
            layout: IoLayout::default(),
            n_values,
            deadline_ticks,
            setup_ticks,
            setup_deadline,
            limits: limits.clone(),
            manifest,
            signals: Vec::new(),
            _shared: shared,
        };

        // cw_init with the init block.
        let header = InitHeader {
            abi_version: ABI_VERSION,
            n_values: n_values as u32,
            n_params: params.len() as u32,
            n_models: plugin.manifest.models.len() as u32,
        };
        let mut block = header.to_le_bytes().to_vec();
        for v in params {
            block.extend_from_slice(&v.to_le_bytes());
        }
        debug_assert_eq!(block.len(), INIT_HEADER_SIZE + 8 * params.len());
        let ptr = plugin
            .write_scratch(&block)
            .map_err(|fault| LoadError::Faulted {
                stage: exports::ALLOC,
                fault,
            })?;
        plugin.arm_setup();
        let rc = init
            .call(&mut plugin.store, (ptr, block.len() as u32))
            .map_err(|e| LoadError::Faulted {
                stage: exports::INIT,
                fault: plugin.classify_setup(e),
            })?;
        if rc != 0 {
            return Err(LoadError::Init {
                code: rc,
                message: plugin.store.data_mut().last_error.take(),
            });
        }

        // cw_io_layout, checked against memory and the expected stride.
        plugin.arm_setup();
        let at = io_layout
            .call(&mut plugin.store, ())
            .map_err(|e| LoadError::Faulted {
                stage: exports::IO_LAYOUT,
                fault: plugin.classify_setup(e),
            })?;
        let raw = plugin
            .read(at, IO_LAYOUT_SIZE)
            .ok_or_else(|| LoadError::Layout(format!("address {at} is outside memory")))?;
        let mut bytes = [0u8; IO_LAYOUT_SIZE];
        bytes.copy_from_slice(&raw);
        plugin.layout = check_layout(
            IoLayout::from_le_bytes(&bytes),
            n_values,
            plugin.memory.data_size(&plugin.store),
        )?;
        Ok(plugin)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Where the guest's buffers are (checked at instantiation).
    pub fn layout(&self) -> &IoLayout {
        &self.layout
    }

    /// Values per bar this instance was made for.
    pub fn n_values(&self) -> usize {
        self.n_values
    }

    /// Size of the guest's linear memory now, in bytes (it never shrinks).
    pub fn memory_bytes(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    /// Log lines the guest emitted over its limit and that were dropped.
    pub fn logs_dropped(&self) -> u64 {
        self.store.data().logs_dropped
    }

    /// The gauges the guest set through the `metric` import.
    pub fn metrics(&self) -> impl Iterator<Item = (&str, f64)> {
        self.store
            .data()
            .metrics
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
    }

    /// Sets the deadline and per-call budgets for the next call.
    #[inline]
    fn arm(&mut self, now_ms: i64) {
        self.store.set_epoch_deadline(self.deadline_ticks);
        self.store.data_mut().begin_call(now_ms);
    }

    /// Sets the setup deadline and fresh per-call budgets for a setup call.
    fn arm_setup(&mut self) {
        self.store.set_epoch_deadline(self.setup_ticks);
        self.store.data_mut().begin_call(0);
    }

    fn classify(&mut self, e: wasmtime::Error) -> Fault {
        classify(&self.store, &self.limits, self.limits.deadline, e)
    }

    fn classify_setup(&mut self, e: wasmtime::Error) -> Fault {
        classify(&self.store, &self.limits, self.setup_deadline, e)
    }

    /// `len` bytes of guest memory at `ptr`, if in bounds.
    fn read(&self, ptr: u32, len: usize) -> Option<Vec<u8>> {
        let start = ptr as usize;
        self.memory
            .data(&self.store)
            .get(start..start.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }

    /// Copies `bytes` into a fresh `cw_alloc` buffer; returns its address.
    fn write_scratch(&mut self, bytes: &[u8]) -> Result<u32, Fault> {
        self.arm_setup();
        let ptr = self
            .alloc
            .call(&mut self.store, bytes.len() as u32)
            .map_err(|e| self.classify_setup(e))?;
        let start = ptr as usize;
        let dest = (ptr != 0 && ptr % 8 == 0)
            .then(|| {
                self.memory
                    .data_mut(&mut self.store)
                    .get_mut(start..start + bytes.len())
            })
            .flatten()
            .ok_or_else(|| {
                Fault::InvalidOutput(format!("cw_alloc returned unusable address {ptr}"))
            })?;
        dest.copy_from_slice(bytes);
        Ok(ptr)
    }

    /// Runs one batch: copies the records into the guest (in chunks of its
    /// input capacity), calls `cw_on_batch`, and validates what comes out.
    /// `now_ms` is what the `now_ms` import answers.
    ///
    /// Signals carry their bar's index in `bars` and its time.
    ///
    /// # Errors
    /// The [`Fault`] that should quarantine the plugin.
    ///
    /// # Panics
    /// If `bars` was built for another number of values than this plugin.
    pub fn run_batch(&mut self, bars: &BarBatch, now_ms: i64) -> Result<&[PluginSignal], Fault> {
        assert_eq!(
            bars.n_values(),
            self.n_values,
            "bar batch built for another plugin"
        );
        self.signals.clear();
        let capacity = self.layout.input_capacity as usize;
        let stride = self.layout.bar_stride as usize;
        let input = self.layout.input_ptr as usize;
        let mut first = 0;
        while first < bars.len() {
            let n = (bars.len() - first).min(capacity);
            let src = bars.record_bytes(first, n);
            // In bounds: checked against the memory size at instantiation,
            // and linear memory never shrinks. Checked again, cheaply.
            let dest = self
                .memory
                .data_mut(&mut self.store)
                .get_mut(input..input + n * stride)
                .ok_or_else(|| Fault::InvalidOutput("input buffer left memory".into()))?;
            dest.copy_from_slice(src);
            self.arm(now_ms);
            let written = self
                .on_batch
                .call(&mut self.store, n as u32)
                .map_err(|e| self.classify(e))?;
            self.collect(bars, first, n, written)?;
            first += n;
        }
        Ok(&self.signals)
    }

    /// Validates `written` output records of a chunk of `n` bars that
    /// starts at bar `first`, appending them to `self.signals`.
    #[inline]
    fn collect(
        &mut self,
        bars: &BarBatch,
        first: usize,
        n: usize,
        written: i32,
    ) -> Result<(), Fault> {
        if written == 0 {
            return Ok(());
        }
        let count = usize::try_from(written).map_err(|_| Fault::ErrorCode(written.into()))?;
        if count > n || count > self.layout.output_capacity as usize {
            return Err(Fault::InvalidOutput(format!(
                "{count} signals for {n} bars"
            )));
        }
        let start = self.layout.output_ptr as usize;
        let out = self
            .memory
            .data(&self.store)
            .get(start..start + count * SIGNAL_RECORD_SIZE)
            .ok_or_else(|| Fault::InvalidOutput("output buffer left memory".into()))?;
        let mut next_bar = 0u32;
        for chunk in out.chunks_exact(SIGNAL_RECORD_SIZE) {
            let mut b = [0u8; SIGNAL_RECORD_SIZE];
            b.copy_from_slice(chunk);
            let record = SignalRecord::from_le_bytes(&b);
            let valid = validate(&record, n as u32, next_bar).map_err(Fault::InvalidOutput)?;
            next_bar = record.bar + 1;
            let bar = first + record.bar as usize;
            self.signals.push(PluginSignal {
                bar,
                time: bars.time(bar),
                ..valid
            });
        }
        Ok(())
    }

    /// The guest's state, via `cw_snapshot`; `Ok(None)` when it keeps none
    /// (no export, or it answers "unsupported").
    ///
    /// # Errors
    /// A [`Fault`] from the call or a malformed answer.
    pub fn snapshot(&mut self) -> Result<Option<Vec<u8>>, Fault> {
        let Some(f) = self.snapshot.clone() else {
            return Ok(None);
        };
        self.arm(0);
        let packed = f.call(&mut self.store, ()).map_err(|e| self.classify(e))?;
        if packed == ErrorCode::SnapshotUnsupported as i64 {
            return Ok(None);
        }
        if packed < 0 {
            return Err(Fault::ErrorCode(packed));
        }
        let (ptr, len) = (packed as u32, (packed >> 32) as usize);
        if len > self.limits.snapshot_bytes {
            return Err(Fault::InvalidOutput(format!(
                "snapshot of {len} bytes is over the limit of {}",
                self.limits.snapshot_bytes
            )));
        }
        self.read(ptr, len)
            .map(Some)
            .ok_or_else(|| Fault::InvalidOutput("snapshot outside memory".into()))
    }

    /// Hands a snapshot to `cw_restore`. `Ok(true)`: accepted; `Ok(false)`:
    /// rejected (or no export), and the instance goes on with fresh state.
    ///
    /// # Errors
    /// A [`Fault`] from the call.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<bool, Fault> {
        let Some(f) = self.restore.clone() else {
            return Ok(false);
        };
        let ptr = self.write_scratch(bytes)?;
        self.arm_setup();
        let rc = f
            .call(&mut self.store, (ptr, bytes.len() as u32))
            .map_err(|e| self.classify_setup(e))?;
        match rc {
            0 => Ok(true),
            rc if rc == ErrorCode::RestoreRejected as i32 => Ok(false),
            rc => Err(Fault::ErrorCode(rc.into())),
        }
    }
}

/// Epoch ticks that cover `deadline`, plus one: the ticker may be anywhere
/// in its period when the deadline is set.
fn ticks(deadline: Duration, tick: Duration) -> u64 {
    (deadline.as_nanos().div_ceil(tick.as_nanos().max(1)) + 1) as u64
}

/// Names the cause of a failed call: memory cap, the `deadline` it ran
/// under, stack, or another trap (with the guest's last error line, e.g. its
/// panic message).
fn classify(
    store: &Store<StoreData>,
    limits: &Limits,
    deadline: Duration,
    e: wasmtime::Error,
) -> Fault {
    if store.data().limiter.memory_exceeded {
        return Fault::MemoryLimit(limits.memory_bytes);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Deadline(deadline),
        Some(Trap::StackOverflow) => Fault::StackOverflow,
        Some(trap) => match &store.data().last_error {
            Some(line) => Fault::Trap(format!("{trap} (guest said: {line})")),
            None => Fault::Trap(trap.to_string()),
        },
        None => Fault::Trap(format!("{e:#}")),
    }
}

/// Checks the guest's layout: version, stride, capacities, alignment and
/// that both buffers lie inside memory.
fn check_layout(l: IoLayout, n_values: usize, memory_size: usize) -> Result<IoLayout, LoadError> {
    let err = |m: String| Err(LoadError::Layout(m));
    if l.abi_version != ABI_VERSION {
        return err(format!(
            "abi_version {} is not {ABI_VERSION}",
            l.abi_version
        ));
    }
    let stride = abi::bar_stride(n_values);
    if l.bar_stride as usize != stride {
        return err(format!(
            "bar_stride {} is not {stride} (48 + 8 x {n_values} values)",
            l.bar_stride
        ));
    }
    if l.input_capacity == 0 || l.output_capacity == 0 {
        return err("zero capacity".into());
    }
    if l.input_ptr % 8 != 0 || l.output_ptr % 8 != 0 {
        return err("buffers must be 8-aligned".into());
    }
    let fits = |ptr: u32, cap: u32, size: usize| {
        (cap as usize)
            .checked_mul(size)
            .and_then(|b| b.checked_add(ptr as usize))
            .is_some_and(|end| end <= memory_size)
    };
    if !fits(l.input_ptr, l.input_capacity, stride) {
        return err("input buffer exceeds memory".into());
    }
    if !fits(l.output_ptr, l.output_capacity, SIGNAL_RECORD_SIZE) {
        return err("output buffer exceeds memory".into());
    }
    Ok(l)
}
