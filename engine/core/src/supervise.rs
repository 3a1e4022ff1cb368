//! [`supervise`]: run an async task, restart it with backoff, or give up loudly.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::{Health, Metrics, TaskState};

/// How a failing task is restarted.
///
/// After the `k`-th failure in a row the task waits
/// `min(initial * 2^(k-1), max)`, plus up to 25% jitter so that many tasks
/// failing together (one network outage) do not retry in lockstep. A run
/// that lasted `reset_after` or longer counts as healthy: the next failure
/// is a first failure again. After `max_failures` failures in a row the
/// supervisor gives up and returns the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
    pub max_failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            max_failures: 20,
        }
    }
}

impl Backoff {
    /// The wait after the `k`-th failure in a row (1-based), jitter included.
    pub fn wait(&self, k: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << k.saturating_sub(1).min(20))
            .min(self.max);
        base + base.mul_f64(jitter() * 0.25)
    }
}

/// A number in `[0, 1)` that differs between calls; good enough to spread
/// retries, not for anything random in earnest.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // A multiplicative hash spreads the low bits.
    let h = (nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    h as f64 / (1u64 << 53) as f64
}

/// A task the supervisor gave up on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task} failed {failures} times in a row, giving up: {cause}")]
pub struct SuperviseError {
    pub task: String,
    pub failures: u32,
    pub cause: String,
}

/// Runs `make()`'s future until it returns `Ok`, restarting it on error or
/// panic.
///
/// Each failure is logged once (`warn`, with the task's name, the cause,
/// the failure count and the wait), counted in
/// [`Counters::task_failures`](crate::metrics::Counters), and shown in
/// [`Health`]. A task that should run forever returns `Ok` only when asked
/// to stop (it watches its own shutdown signal).
///
/// # Errors
/// [`SuperviseError`] after [`Backoff::max_failures`] failures in a row.
///
/// # Cancel safety
/// Dropping the returned future aborts nothing already spawned: each
/// attempt runs as its own tokio task (so that a panic is caught) and is
/// left to finish on its own shutdown signal.
pub async fn supervise<F, Fut, E>(
    name: &str,
    health: &Health,
    metrics: &Metrics,
    backoff: &Backoff,
    mut make: F,
) -> Result<(), SuperviseError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let mut failures = 0u32;
    loop {
        health.set(name, TaskState::Running);
        let started = Instant::now();
        let cause = match tokio::spawn(make()).await {
            Ok(Ok(())) => {
                health.set(name, TaskState::Finished);
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                format!("panicked: {text}")
            }
            Err(join) => format!("cancelled: {join}"),
        };
        if started.elapsed() >= backoff.reset_after {
            failures = 0;
        }
        failures += 1;
        metrics.add(&metrics.counters.task_failures, 1);
        if failures >= backoff.max_failures {
            tracing::error!(task = name, failures, cause = %cause, "task failed too often; giving up");
            health.set(
                name,
                TaskState::Failed {
                    error: cause.clone(),
                },
            );
            return Err(SuperviseError {
                task: name.to_owned(),
                failures,
                cause,
            });
        }
        let wait = backoff.wait(failures);
        tracing::warn!(
            task = name,
            failures,
            cause = %cause,
            retry_in_ms = wait.as_millis() as u64,
            "task failed; restarting"
        );
        health.set(
            name,
            TaskState::Restarting {
                failures,
                last_error: cause,
            },
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    fn quick() -> Backoff {
        Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            reset_after: Duration::from_secs(3600),
            max_failures: 3,
        }
    }

    #[tokio::test]
    async fn restarts_a_failing_task_until_it_succeeds() {
        let (health, metrics) = (Health::new(), Metrics::detached());
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let r = supervise("t", &health, &metrics, &quick(), move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => Err("first"),
                    1 => panic!("second"),
                    _ => Ok(()),
                }
            }
        })
        .await;
        assert_eq!(r, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(metrics.counters.task_failures.load(Ordering::Relaxed), 2);
        assert_eq!(health.snapshot()["t"], TaskState::Finished);
    }

    #[tokio::test]
    async fn gives_up_with_the_cause_after_the_bound() {
        let (health, metrics) = (Health::new(), Metrics::detached());
        let r = supervise("feed", &health, &metrics, &quick(), || async {
            Err("port in use")
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!((e.failures, e.cause.as_str()), (3, "port in use"));
        assert!(matches!(
            health.snapshot()["feed"],
            TaskState::Failed { .. }
        ));
        assert!(!health.is_healthy());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            ..Backoff::default()
        };
        for (k, base) in [(1, 100), (2, 200), (3, 400), (9, 400)] {
            let w = b.wait(k).as_millis();
            assert!(w >= base && w <= base * 5 / 4, "k={k}: {w}");
        }
    }
}
