//! The host with well-behaved plugins: load, manifest, parameters, calls,
//! batching, snapshots, the module cache and hot reload.

mod common;

use candlewick_plugins::{
    Action, HostConfig, Limits, LoadError, ModuleWatcher, ParamError, PluginHost, PluginRunner,
    RestartPolicy, DISK_CACHE_ENTRIES,
};
use common::{candles, sma_cross_reference, wasm, wasm_bytes};

fn host() -> PluginHost {
    PluginHost::new(HostConfig::default()).expect("host")
}

/// Generous deadline: these tests are about behaviour, not timing, and CI
/// machines stall.
fn relaxed() -> Limits {
    Limits {
        deadline: std::time::Duration::from_millis(500),
        ..Limits::default()
    }
}

fn run_sma(
    runner: &mut PluginRunner,
    bars: &[candlewick_market::Candle],
    batch: usize,
) -> Vec<(usize, i8)> {
    let mut got = Vec::new();
    for (b, chunk) in bars.chunks(batch).enumerate() {
        for c in chunk {
            runner.push(c, &[]);
        }
        for s in runner.flush() {
            let dir = match s.action {
                Action::Buy => 1,
                Action::Sell => -1,
                other => panic!("unexpected {other:?}"),
            };
            got.push((b * batch + s.bar, dir));
        }
    }
    got
}

#[test]
fn sma_cross_manifest_is_read_from_its_custom_section() {
    let m = host().load_file(&wasm("sma_cross")).unwrap();
    let manifest = m.manifest();
    assert_eq!(
        (manifest.name.as_str(), manifest.version.as_str()),
        ("sma_cross", "0.1.0")
    );
    assert_eq!(manifest.indicators, ["sma({fast})", "sma({slow})"]);
    assert_eq!(manifest.defaults(), [10.0, 20.0]);
    assert!(
        m.size() < 100_000,
        "a small plugin is under 100 KB: {}",
        m.size()
    );
}

#[test]
fn sma_cross_signals_match_the_native_reference_at_every_batch_size() {
    let host = host();
    let module = host.load_file(&wasm("sma_cross")).unwrap();
    let bars = candles(2_000);
    let want = sma_cross_reference(&bars, 10, 20);
    assert!(want.len() > 20, "the series must cross often");
    // 600 > the SDK's 512-bar input capacity: the host splits the call.
    for batch in [1, 7, 64, 600] {
        let mut r = PluginRunner::new(
            &host,
            module.clone(),
            &[] as &[(&str, &str)],
            relaxed(),
            RestartPolicy::default(),
        )
        .unwrap();
        assert_eq!(run_sma(&mut r, &bars, batch), want, "batch {batch}");
        assert_eq!(r.stats().bars, 2_000);
        assert_eq!(r.stats().quarantines(), 0);
    }
}

#[test]
fn params_reach_the_plugin_and_a_bad_one_is_named() {
    let host = host();
    let module = host.load_file(&wasm("sma_cross")).unwrap();
    let bars = candles(500);
    let mut r = PluginRunner::new(
        &host,
        module.clone(),
        &[("fast", "5"), ("slow", "30")],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    assert_eq!(r.columns(), ["sma(5)", "sma(30)"]);
    assert_eq!(
        run_sma(&mut r, &bars, 16),
        sma_cross_reference(&bars, 5, 30)
    );

    let err = |p: &[(&str, &str)]| {
        PluginRunner::new(
            &host,
            module.clone(),
            p,
            relaxed(),
            RestartPolicy::default(),
        )
        .unwrap_err()
    };
    match err(&[("fsat", "5")]) {
        LoadError::Param(ParamError::Unknown { name, .. }) => assert_eq!(name, "fsat"),
        other => panic!("{other}"),
    }
    let e = err(&[("slow", "abc")]).to_string();
    assert!(e.contains("`slow`") && e.contains("integer"), "{e}");
    // The plugin's own check, with its message carried through its log.
    let e = err(&[("fast", "40")]).to_string();
    assert!(e.contains("fast must be shorter than slow"), "{e}");
}

#[test]
fn model_follow_reads_the_supplied_prediction_column() {
    let host = host();
    let module = host.load_file(&wasm("model_follow")).unwrap();
    let mut r = PluginRunner::new(
        &host,
        module,
        &[] as &[(&str, &str)],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    let bars = candles(4);
    for (c, p) in bars.iter().zip([f64::NAN, 0.9, 0.95, 0.1]) {
        r.push(c, &[p]);
    }
    let got: Vec<_> = r
        .flush()
        .iter()
        .map(|s| (s.bar, s.action, s.time))
        .collect();
    assert_eq!(
        got,
        [
            (1, Action::Buy, bars[1].open_time),
            (3, Action::Sell, bars[3].open_time)
        ]
    );
}

#[test]
fn every_example_loads_and_runs() {
    let host = host();
    for name in [
        "sma_cross",
        "rsi_reversion",
        "bollinger_breakout",
        "model_follow",
    ] {
        let module = host.load_file(&wasm(name)).unwrap();
        let mut r = PluginRunner::new(
            &host,
            module,
            &[] as &[(&str, &str)],
            relaxed(),
            RestartPolicy::default(),
        )
        .unwrap();
        let mut signals = 0;
        for chunk in candles(3_000).chunks(50) {
            for c in chunk {
                r.push(c, &[0.5 + 0.45 * (c.close - 100.0) / 13.0]);
            }
            signals += r.flush().len();
        }
        assert_eq!(r.stats().quarantines(), 0, "{name}");
        assert!(signals > 0, "{name} never signalled");
    }
}

/// The default host, keeping compiled modules in `dir`.
fn disk_cached(dir: &std::path::Path) -> HostConfig {
    HostConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..HostConfig::default()
    }
}

#[test]
fn modules_are_compiled_once_per_content_hash_and_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = disk_cached(dir.path());
    let host = PluginHost::new(config.clone()).unwrap();
    let bytes = wasm_bytes("sma_cross");
    let a = host.load(&bytes).unwrap();
    let b = host.load(&bytes).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(host.cached_modules(), 1);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "one artifact on disk");

    // A new host (a restart) loads the artifact from disk and it works.
    let again = PluginHost::new(config).unwrap();
    let module = again.load(&bytes).unwrap();
    let mut r = PluginRunner::new(
        &again,
        module,
        &[] as &[(&str, &str)],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    let bars = candles(300);
    assert_eq!(
        run_sma(&mut r, &bars, 8),
        sma_cross_reference(&bars, 10, 20)
    );
}

/// The disk cache keeps at most `DISK_CACHE_ENTRIES` modules: writing one
/// more removes the entries unused longest, and loading an entry marks it
/// used, so it outlives older ones.
#[test]
fn the_disk_cache_is_bounded_and_keeps_what_was_used_last() {
    let dir = tempfile::tempdir().unwrap();
    let config = disk_cached(dir.path());
    // A real entry, loaded back by a second host (a restart) after the
    // stand-ins below were written: the load marks it as just used.
    let sma = wasm_bytes("sma_cross");
    PluginHost::new(config.clone()).unwrap().load(&sma).unwrap();
    let real: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(real.len(), 1);
    // Stand-ins for entries of older builds, each a day older than the next.
    let now = std::time::SystemTime::now();
    let day = std::time::Duration::from_secs(86_400);
    for i in 0..DISK_CACHE_ENTRIES {
        let path = dir.path().join(format!("old{i:03}.cwasm"));
        std::fs::write(&path, b"stale").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(now - day * (i as u32 + 2)).unwrap();
    }
    let f = std::fs::File::options().write(true).open(&real[0]).unwrap();
    f.set_modified(now - day * 1000).unwrap();
    PluginHost::new(config.clone()).unwrap().load(&sma).unwrap();

    // A new module's entry is written: one entry too many.
    PluginHost::new(config)
        .unwrap()
        .load(&wasm_bytes("rsi_reversion"))
        .unwrap();
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), DISK_CACHE_ENTRIES, "bounded");
    assert!(real[0].exists(), "the entry just loaded is kept");
    let oldest = format!("old{:03}.cwasm", DISK_CACHE_ENTRIES - 1);
    assert!(!left.contains(&oldest), "the entry unused longest is gone");
    assert!(left.contains(&"old000.cwasm".to_owned()));
}

#[test]
fn reload_carries_the_snapshot_and_refuses_a_broken_version() {
    let host = host();
    let module = host.load_file(&wasm("sma_cross")).unwrap();
    let bars = candles(1_000);
    let want = sma_cross_reference(&bars, 10, 20);
    let mut r = PluginRunner::new(
        &host,
        module.clone(),
        &[("fast", "10")],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    let mut got = run_sma(&mut r, &bars[..500], 10);

    // A version that fails to load never reaches the runner; one that loads
    // but cannot run this configuration is refused by it.
    assert!(host.load_file(&wasm("forbidden_import")).is_err());
    assert!(r
        .reload(host.load_file(&wasm("wrong_abi")).unwrap())
        .is_err());
    // A version that does not declare the operator's `fast` is refused, and
    // so is one whose init rejects the parameters (fast = slow); the old
    // version keeps running either way.
    let other = host.load_file(&wasm("rsi_reversion")).unwrap();
    assert!(matches!(
        r.reload(other),
        Err(LoadError::Param(ParamError::Unknown { .. }))
    ));

    // The same strategy swapped in mid-stream carries its state over: the
    // signals are exactly those of an uninterrupted run.
    let outcome = r.reload(module).unwrap();
    assert!(outcome.snapshot_carried && !outcome.indicators_reset);
    got.extend(
        run_sma(&mut r, &bars[500..], 10)
            .into_iter()
            .map(|(i, d)| (i + 500, d)),
    );
    assert_eq!(got, want);
    assert_eq!((r.stats().reloads, r.stats().reload_failures), (1, 2));
}

#[test]
fn reload_is_refused_with_bars_pending() {
    let host = host();
    let module = host.load_file(&wasm("sma_cross")).unwrap();
    let mut r = PluginRunner::new(
        &host,
        module.clone(),
        &[] as &[(&str, &str)],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    r.push(&candles(1)[0], &[]);
    assert!(matches!(
        r.reload(module),
        Err(LoadError::BatchInProgress(1))
    ));
}

#[test]
fn watcher_reports_new_content_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.wasm");
    std::fs::write(&path, wasm_bytes("sma_cross")).unwrap();
    let host = host();
    let mut r = PluginRunner::new(
        &host,
        host.load_file(&path).unwrap(),
        &[] as &[(&str, &str)],
        relaxed(),
        RestartPolicy::default(),
    )
    .unwrap();
    let mut watcher = ModuleWatcher::new(&path).unwrap();
    assert!(
        r.reload_if_changed(&mut watcher).unwrap().is_none(),
        "unchanged"
    );

    // A broken file is refused and the old version keeps running.
    let tmp = dir.path().join("p.tmp");
    std::fs::write(&tmp, wasm_bytes("wrong_abi")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(r.reload_if_changed(&mut watcher).is_err());
    let bars = candles(200);
    assert_eq!(
        run_sma(&mut r, &bars, 20),
        sma_cross_reference(&bars, 10, 20)
    );

    // A different strategy file is picked up (with its own indicators).
    std::fs::write(&tmp, wasm_bytes("rsi_reversion")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let outcome = r.reload_if_changed(&mut watcher).unwrap().expect("changed");
    assert!(outcome.indicators_reset && !outcome.snapshot_carried);
    assert_eq!(r.name(), "rsi_reversion");
    assert_eq!(r.columns(), ["rsi(14)"]);
}
