//! Compact memories (`HostConfig::compact_memories`): the same signals, in
//! a fraction of the address space per instance. Its own test binary, so
//! that no other test's instances change the process's size while it
//! measures.

mod common;

use candlewick_plugins::{
    Action, HostConfig, Limits, PluginHost, PluginRunner, RestartPolicy, MAPPINGS_PER_INSTANCE,
};
use common::{candles, sma_cross_reference, wasm};

const INSTANCES: u64 = 64;

/// The process's virtual size (`VmSize`), bytes (Linux).
fn virtual_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .expect("VmSize in /proc/self/status");
    kb << 10
}

/// The process's memory mappings (lines of `/proc/self/maps`).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn compact_memories_give_the_same_signals_in_a_fraction_of_the_address_space() {
    let bars = candles(2_000);
    let want: Vec<(usize, i8)> = sma_cross_reference(&bars, 10, 20);
    let limits = Limits {
        deadline: std::time::Duration::from_millis(500),
        ..Limits::default()
    };
    let mut per_instance = Vec::new();
    for compact in [false, true] {
        let host = PluginHost::new(HostConfig {
            compact_memories: compact,
            ..HostConfig::default()
        })
        .unwrap();
        let module = host.load_file(&wasm("sma_cross")).unwrap();
        let before = virtual_size();
        let maps_before = mappings();
        let mut runners: Vec<PluginRunner> = (0..INSTANCES)
            .map(|_| {
                PluginRunner::new(
                    &host,
                    module.clone(),
                    &[] as &[(&str, &str)],
                    limits.clone(),
                    RestartPolicy::default(),
                )
                .unwrap()
            })
            .collect();
        per_instance.push(virtual_size().saturating_sub(before) / INSTANCES);
        let maps = mappings().saturating_sub(maps_before) as f64 / INSTANCES as f64;
        eprintln!("compact_memories = {compact}: {maps:.1} memory mappings per instance");
        // What the engine's start-up check counts on (give or take a few
        // mappings the allocator makes meanwhile).
        assert!(
            maps < MAPPINGS_PER_INSTANCE as f64 + 0.5,
            "{maps} mappings per instance"
        );
        let last = runners.last_mut().unwrap();
        let mut got = Vec::new();
        for (b, chunk) in bars.chunks(64).enumerate() {
            for c in chunk {
                last.push(c, &[]);
            }
            got.extend(last.flush().iter().map(|s| {
                let dir = if s.action == Action::Buy { 1 } else { -1 };
                (b * 64 + s.bar, dir)
            }));
        }
        assert_eq!(got, want, "compact_memories = {compact}");
    }
    // Default: 4 GiB and guard regions per memory; compact: its 64 MiB cap
    // and one guard page.
    eprintln!("address space per instance: {per_instance:?} bytes (default, compact)");
    assert!(per_instance[0] >= 4 << 30, "{per_instance:?}");
    assert!(per_instance[1] < 128 << 20, "{per_instance:?}");
}
