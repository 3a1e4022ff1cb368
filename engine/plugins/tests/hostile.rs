//! Hostile plugins: each is refused at load or quarantined within its
//! deadline, and a healthy neighbour driven by the same worker loop keeps
//! producing exactly the signals it would produce alone.

mod common;

use std::time::{Duration, Instant};

use candlewick_plugins::{
    Action, Fault, Health, HostConfig, Limits, LoadError, PluginHost, PluginRunner, PluginStats,
    RestartPolicy,
};
use common::{candles, sma_cross_reference, wasm};

const HOSTILE_DEADLINE: Duration = Duration::from_millis(20);

fn neighbour_limits() -> Limits {
    Limits {
        deadline: Duration::from_millis(500),
        ..Limits::default()
    }
}

fn fast_restarts() -> RestartPolicy {
    RestartPolicy {
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(4),
        ..RestartPolicy::default()
    }
}

#[test]
fn forbidden_import_is_refused_at_load_naming_it() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    match host.load_file(&wasm("forbidden_import")) {
        Err(LoadError::ForbiddenImport { module, name }) => {
            assert_eq!(
                (module.as_str(), name.as_str()),
                ("wasi_snapshot_preview1", "fd_write")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_abi_version_is_refused() {
    // The version is asked under the call deadline: a generous one, so a
    // loaded machine cannot turn the refusal into a deadline fault.
    let host = PluginHost::new(HostConfig {
        limits: neighbour_limits(),
        ..HostConfig::default()
    })
    .unwrap();
    let module = host
        .load_file(&wasm("wrong_abi"))
        .expect("loads: the version is a function's answer");
    match host.instantiate(&module, &[], 0) {
        Err(LoadError::AbiVersion {
            found: 2,
            expected: 1,
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// Runs `hostile` (mode, misbehaving on bars [from, until)) beside a healthy
/// `sma_cross` over the same candles, one batch at a time as a worker would.
/// Returns the hostile runner's stats and health, after checking that the
/// neighbour's signals are exactly the reference and that no flush of the
/// hostile plugin took much longer than its deadline.
fn beside_a_neighbour(
    mode: u32,
    misbehave: std::ops::Range<usize>,
) -> (PluginStats, Health, Vec<usize>) {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let bars = candles(1_200);
    let t = |i: usize| bars[i.min(bars.len() - 1)].open_time.to_string();
    let hostile = host.load_file(&wasm("hostile")).unwrap();
    let params = [
        ("mode", mode.to_string()),
        ("from_time", t(misbehave.start)),
        ("until_time", t(misbehave.end)),
    ];
    let limits = Limits {
        deadline: HOSTILE_DEADLINE,
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let mut bad = PluginRunner::new(&host, hostile, &params, limits, fast_restarts()).unwrap();
    let sma = host.load_file(&wasm("sma_cross")).unwrap();
    let mut good = PluginRunner::new(
        &host,
        sma,
        &[] as &[(&str, &str)],
        neighbour_limits(),
        RestartPolicy::default(),
    )
    .unwrap();

    let mut got = Vec::new();
    let mut hostile_signal_bars = Vec::new();
    let batch = 10;
    for (b, chunk) in bars.chunks(batch).enumerate() {
        for c in chunk {
            bad.push(c, &[]);
            good.push(c, &[]);
        }
        let started = Instant::now();
        hostile_signal_bars.extend(bad.flush().iter().map(|s| b * batch + s.bar));
        let took = started.elapsed();
        assert!(
            took < HOSTILE_DEADLINE + Duration::from_millis(500),
            "hostile flush took {took:?}"
        );
        for s in good.flush() {
            got.push((
                b * batch + s.bar,
                if s.action == Action::Buy { 1 } else { -1 },
            ));
        }
        // Let the backoff pass now and then so restarts happen.
        if b % 10 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(
        got,
        sma_cross_reference(&bars, 10, 20),
        "the neighbour's signals changed"
    );
    assert_eq!(good.stats().quarantines(), 0);
    (
        bad.stats().clone(),
        bad.health().clone(),
        hostile_signal_bars,
    )
}

#[test]
fn infinite_loop_misses_its_deadline_and_is_quarantined() {
    let (stats, _, _) = beside_a_neighbour(1, 100..150);
    assert!(stats.deadlines >= 1, "{stats:?}");
    assert_eq!(stats.quarantines(), stats.deadlines);
    assert!(
        stats.restarts >= 1,
        "restarted after the backoff: {stats:?}"
    );
}

#[test]
fn memory_bomb_hits_the_cap_and_is_quarantined() {
    let (stats, _, _) = beside_a_neighbour(2, 100..150);
    assert!(stats.memory_faults >= 1, "{stats:?}");
    // Growing memory takes time: on a loaded machine an attempt may hit the
    // deadline before the cap. Either way nothing else may be the cause.
    assert_eq!(
        stats.quarantines(),
        stats.memory_faults + stats.deadlines,
        "{stats:?}"
    );
    assert!(stats.restarts >= 1);
}

#[test]
fn trap_is_quarantined_and_the_plugin_recovers_after_the_bad_bars() {
    let (stats, health, _) = beside_a_neighbour(3, 100..150);
    assert!(stats.traps >= 1, "{stats:?}");
    assert_eq!(stats.quarantines(), stats.traps);
    assert_eq!(
        health,
        Health::Running,
        "healthy again once past the bad bars"
    );
    assert!(stats.batches > 60, "it ran most batches: {stats:?}");
}

#[test]
fn out_of_range_strength_is_invalid_output() {
    let (stats, _, signals) = beside_a_neighbour(4, 100..150);
    assert!(stats.invalid_outputs >= 1, "{stats:?}");
    assert!(
        signals.is_empty(),
        "no invalid signal got through: {signals:?}"
    );
}

#[test]
fn nan_strength_is_invalid_output() {
    let (stats, _, signals) = beside_a_neighbour(6, 100..150);
    assert!(stats.invalid_outputs >= 1, "{stats:?}");
    assert!(signals.is_empty());
}

#[test]
fn unbounded_recursion_overflows_the_stack_and_is_quarantined() {
    let (stats, _, _) = beside_a_neighbour(5, 100..150);
    assert!(stats.stack_overflows >= 1, "{stats:?}");
    assert_eq!(stats.quarantines(), stats.stack_overflows);
}

#[test]
fn a_plugin_that_always_fails_backs_off_up_to_the_cap() {
    let host = PluginHost::new(HostConfig::default()).unwrap();
    let module = host.load_file(&wasm("hostile")).unwrap();
    let policy = RestartPolicy {
        backoff_initial: Duration::from_millis(2),
        backoff_max: Duration::from_millis(8),
        ..RestartPolicy::default()
    };
    let mut r =
        PluginRunner::new(&host, module, &[("mode", "3")], neighbour_limits(), policy).unwrap();
    let bars = candles(400);
    for c in &bars {
        r.push(c, &[]);
        r.flush();
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = r.stats();
    // Each restart faults again on its first bar; the waits grow to 8 ms, so
    // over ~400+ ms there are far fewer faults than bars.
    assert!(stats.traps >= 5 && stats.traps < 150, "{stats:?}");
    assert_eq!(stats.restarts + 1, stats.traps);
    assert!(stats.skipped_bars > 0);
    match r.health() {
        Health::Quarantined {
            fault: Fault::Trap(msg),
            consecutive,
            ..
        } => {
            assert!(
                msg.contains("hostile plugin panics on purpose"),
                "the guest's panic message: {msg}"
            );
            assert!(*consecutive >= 5);
        }
        other => panic!("{other:?}"),
    }
}
