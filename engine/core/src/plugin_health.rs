//! How a strategy plugin fares on a stream, as plain data: the runner
//! (`candlewick_plugins`) keeps it, the feed's dashboard and `/metrics`
//! show it.

use std::time::Instant;

/// Why a running plugin was quarantined. Each is logged once and counted in
/// [`PluginStats`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    #[error("trap: {0}")]
    Trap(String),
    #[error("missed its deadline of {0:?}")]
    Deadline(std::time::Duration),
    #[error("stack overflow")]
    StackOverflow,
    #[error("memory limit of {0} bytes reached")]
    MemoryLimit(usize),
    #[error("invalid output: {0}")]
    InvalidOutput(String),
    #[error("returned error code {0}")]
    ErrorCode(i64),
}

impl Fault {
    /// A short, stable name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Trap(_) => "trap",
            Fault::Deadline(_) => "deadline",
            Fault::StackOverflow => "stack_overflow",
            Fault::MemoryLimit(_) => "memory",
            Fault::InvalidOutput(_) => "invalid_output",
            Fault::ErrorCode(_) => "error_code",
        }
    }
}

/// Counters of one runner, for metrics. All only ever grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// Batches the plugin ran (healthy calls).
    pub batches: u64,
    /// Bars the plugin saw.
    pub bars: u64,
    /// Valid signals it produced.
    pub signals: u64,
    /// Bars that arrived while it was quarantined and were not shown to it.
    pub skipped_bars: u64,
    pub traps: u64,
    pub deadlines: u64,
    pub stack_overflows: u64,
    pub memory_faults: u64,
    pub invalid_outputs: u64,
    pub error_codes: u64,
    /// Successful re-instantiations after a quarantine.
    pub restarts: u64,
    /// Re-instantiations that failed (each extends the quarantine).
    pub restart_failures: u64,
    pub snapshots: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

impl PluginStats {
    /// Quarantines, whatever their cause.
    pub fn quarantines(&self) -> u64 {
        self.traps
            + self.deadlines
            + self.stack_overflows
            + self.memory_faults
            + self.invalid_outputs
            + self.error_codes
    }

    /// Counts one quarantine by its cause (the runner's bookkeeping).
    pub fn count(&mut self, fault: &Fault) {
        let counter = match fault {
            Fault::Trap(_) => &mut self.traps,
            Fault::Deadline(_) => &mut self.deadlines,
            Fault::StackOverflow => &mut self.stack_overflows,
            Fault::MemoryLimit(_) => &mut self.memory_faults,
            Fault::InvalidOutput(_) => &mut self.invalid_outputs,
            Fault::ErrorCode(_) => &mut self.error_codes,
        };
        *counter += 1;
    }
}

/// Whether the plugin is running.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginHealth {
    Running,
    /// Disabled after `fault`; re-instantiated from the last snapshot at the
    /// first batch after `retry_at`.
    Quarantined {
        fault: Fault,
        consecutive: u32,
        retry_at: Instant,
    },
}
