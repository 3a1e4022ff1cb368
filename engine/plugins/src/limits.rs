//! What one plugin may use, and how a misbehaving one is put back to work.
//!
//! [`Limits`] bounds each instance: wall time per call, linear memory, wasm
//! stack, and the chatter it may send through the `log` and `metric`
//! imports. [`RestartPolicy`] says how long a quarantined plugin waits before
//! it is re-instantiated and how often its state is snapshotted.
//!
//! What is *not* limited: CPU time summed over many calls (a plugin that uses
//! 0.9 ms of every 1 ms deadline is healthy), the host memory spent on
//! compiled code (bounded by the module's size, checked at load), and the
//! number of plugins (that is the engine's configuration).

use std::time::Duration;

/// Default wall-time budget of one `cw_on_batch` call (one batch).
pub const DEFAULT_DEADLINE: Duration = Duration::from_millis(1);
/// Default wall-time budget of each setup call: instantiation (with the
/// module's start function), `cw_abi_version`, `cw_init`, `cw_io_layout` and
/// `cw_restore`. Setup runs once per instance, off the per-bar path, and on a
/// loaded machine one preemption can outlast the per-call deadline; a hung
/// start function still traps. Never less than `deadline`.
pub const DEFAULT_SETUP_DEADLINE: Duration = Duration::from_millis(250);
/// Memory mappings (VMAs) one instance adds to its process: its linear
/// memory's reservation, accessible part and guard, and its tables.
/// Linux caps a process at `vm.max_map_count` (65,530 by default), which
/// bounds the instances one engine can hold (about 16,000 by default; see
/// `engine/plugins/tests/address_space.rs`, which measures it).
pub const MAPPINGS_PER_INSTANCE: usize = 4;
/// Default cap on an instance's linear memory.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// Default cap on the wasm stack. Native host frames are not counted.
pub const DEFAULT_STACK_BYTES: usize = 512 << 10;
/// Default log lines one call may emit; the rest are counted and dropped.
pub const DEFAULT_LOG_LINES_PER_CALL: u32 = 8;
/// Default longest log line, in bytes; longer lines are cut.
pub const DEFAULT_LOG_LINE_BYTES: usize = 1024;
/// Default number of distinct metric names an instance may set.
pub const DEFAULT_METRIC_NAMES: usize = 32;
/// Default period of the epoch ticker that enforces deadlines: the
/// default deadline, so that a runaway call is stopped 1 to 2 ms after it
/// starts. Each tick wakes a thread, and on a shared two-core VM a tick
/// every 500 µs raised the live engine's ingest->emit p99 by about 5 µs
/// (`benches/README.md`).
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(1);
/// Largest module accepted at load.
pub const DEFAULT_MODULE_BYTES: usize = 16 << 20;
/// Default largest snapshot one instance may hand back; a larger one
/// quarantines it. Snapshots are kept per stream and written at every
/// checkpoint, so this bounds both.
pub const DEFAULT_SNAPSHOT_BYTES: usize = 1 << 20;
/// Default guest log lines per second across all plugins of one host (the
/// per-call limit alone lets 1,000 plugins write 8,000 lines a batch).
pub const DEFAULT_HOST_LOG_LINES_PER_SEC: u32 = 200;

/// Per-instance resource limits.
///
/// Each field's effect when it is reached:
///
/// | field | on reaching it |
/// |---|---|
/// | `deadline` | the call traps (epoch interruption) and the plugin is quarantined ([`Fault::Deadline`](crate::Fault::Deadline)) |
/// | `setup_deadline` | the same, for instantiation and the other setup calls: the load fails, or the restart counts as a fault |
/// | `memory_bytes` | `memory.grow` fails; when the plugin then traps it is quarantined ([`Fault::MemoryLimit`](crate::Fault::MemoryLimit)); at load, a module whose initial memory exceeds it is refused |
/// | `stack_bytes` | the call traps ([`Fault::StackOverflow`](crate::Fault::StackOverflow)) |
/// | `log_lines_per_call` | further lines of that call are dropped and counted |
/// | `log_line_bytes` | the line is cut |
/// | `metric_names` | new names are dropped (existing names still update) |
/// | `snapshot_bytes` | a larger snapshot is invalid output: the plugin is quarantined |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub deadline: Duration,
    pub setup_deadline: Duration,
    pub memory_bytes: usize,
    pub stack_bytes: usize,
    pub log_lines_per_call: u32,
    pub log_line_bytes: usize,
    pub metric_names: usize,
    pub snapshot_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: DEFAULT_DEADLINE,
            setup_deadline: DEFAULT_SETUP_DEADLINE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            stack_bytes: DEFAULT_STACK_BYTES,
            log_lines_per_call: DEFAULT_LOG_LINES_PER_CALL,
            log_line_bytes: DEFAULT_LOG_LINE_BYTES,
            metric_names: DEFAULT_METRIC_NAMES,
            snapshot_bytes: DEFAULT_SNAPSHOT_BYTES,
        }
    }
}

/// Default first wait after a fault.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// Default longest wait: the backoff doubles per consecutive fault up to this.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Default healthy batches after which the fault count starts again from 0.
pub const DEFAULT_RESET_AFTER_BATCHES: u32 = 100;
/// Default batches between snapshots taken for restarts.
pub const DEFAULT_SNAPSHOT_EVERY: u32 = 64;

/// How a quarantined plugin comes back.
///
/// After the `k`-th consecutive fault the plugin waits
/// `min(backoff_initial * 2^(k-1), backoff_max)` (wall time) and is then
/// re-instantiated from its last snapshot; bars that arrive meanwhile are
/// skipped (counted in [`PluginStats::skipped_bars`](crate::PluginStats)).
/// A plugin is never given up on: at worst it is retried every `backoff_max`.
///
/// The snapshot is taken every `snapshot_every` healthy batches (and by
/// [`PluginRunner::checkpoint`](crate::PluginRunner::checkpoint)): lower is a
/// fresher restart, higher is a cheaper hot path. `1` snapshots every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub reset_after_batches: u32,
    pub snapshot_every: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            reset_after_batches: DEFAULT_RESET_AFTER_BATCHES,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
        }
    }
}

impl RestartPolicy {
    /// The wait after the `consecutive`-th fault in a row (1-based).
    pub fn backoff(&self, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(31);
        self.backoff_initial
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stays_at_the_cap() {
        let p = RestartPolicy {
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
            ..RestartPolicy::default()
        };
        let waits: Vec<_> = (1..=5).map(|k| p.backoff(k).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        assert_eq!(
            p.backoff(u32::MAX),
            Duration::from_millis(50),
            "no overflow"
        );
    }
}
