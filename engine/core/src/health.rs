//! [`Health`]: what each supervised task is doing, for `/healthz`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// The state of one supervised task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TaskState {
    Running,
    /// Failed `failures` times in a row; restarting after a backoff.
    Restarting {
        failures: u32,
        last_error: String,
    },
    /// Returned normally (a replay that reached its end).
    Finished,
    /// Gave up: the engine stops.
    Failed {
        error: String,
    },
}

/// Task name -> state. Written only when a state changes (never on the hot
/// path); read by `/healthz`.
#[derive(Debug, Default)]
pub struct Health {
    tasks: Mutex<BTreeMap<String, TaskState>>,
}

impl Health {
    pub fn new() -> Self {
        Health::default()
    }

    pub fn set(&self, task: &str, state: TaskState) {
        let mut tasks = match self.tasks.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        tasks.insert(task.to_owned(), state);
    }

    /// A copy of every task's state.
    pub fn snapshot(&self) -> BTreeMap<String, TaskState> {
        match self.tasks.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// True when no task has failed or is restarting.
    pub fn is_healthy(&self) -> bool {
        self.snapshot()
            .values()
            .all(|s| matches!(s, TaskState::Running | TaskState::Finished))
    }
}
