//! The C, Zig and AssemblyScript SDKs end to end: each language's
//! `sma_cross` is built from source with `candlewick plugin build`, passes
//! `candlewick plugin check`, and gives exactly the Rust `sma_cross.wasm`'s
//! trades and final equity in `candlewick backtest` on the bundled data.
//! Then a scaffold from `plugin new --lang` of each language builds and
//! passes the check too.
//!
//! The toolchains come from `scripts/install-toolchains` (clang + lld from
//! apt, Zig from PyPI's `ziglang`, AssemblyScript from npm), which
//! `scripts/bootstrap` runs; `plugin build` runs it too, idempotently.

mod common;

use std::path::Path;

use common::{candlewick, repo, text, wasm};

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let o = candlewick(dir, args);
    assert!(
        o.status.success(),
        "candlewick {args:?} failed:\n{}",
        text(&o)
    );
    text(&o)
}

/// Backtests `strategy` with sma_cross's parameters; returns the trades
/// file and the final equity.
fn backtest(dir: &Path, strategy: &str, out: &str) -> (String, f64) {
    let data = repo().join("data/EURUSD-1h.csv").display().to_string();
    run_ok(
        dir,
        &[
            "backtest",
            "--data",
            &data,
            "--strategy",
            strategy,
            "--param",
            "fast=10",
            "--param",
            "slow=20",
            "--lot-size",
            "1",
            "--out",
            out,
        ],
    );
    let trades = std::fs::read_to_string(dir.join(out).join("trades.csv")).unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(out).join("stats.json")).unwrap())
            .unwrap();
    let equity = stats["stats"]["Equity Final [$]"].as_f64().unwrap();
    (trades, equity)
}

/// `plugin check` on real bars, with a deadline that a loaded test machine
/// meets (the engine's 1 ms is the default; the check is the same).
fn check(dir: &Path, module: &str) -> String {
    let data = repo().join("data/EURUSD-1h.csv").display().to_string();
    run_ok(
        dir,
        &[
            "plugin",
            "check",
            module,
            "--data",
            &data,
            "--deadline-ms",
            "50",
        ],
    )
}

/// Whether a `plugin check` report's summary says no check failed.
fn passed(report: &str) -> bool {
    report
        .lines()
        .any(|l| l.starts_with("ok: ") && l.contains(" passed, 0 failed"))
}

#[test]
fn c_zig_and_assemblyscript_sma_cross_trade_exactly_like_rust() {
    let dir = tempfile::tempdir().unwrap();
    let (rust_trades, rust_equity) = backtest(dir.path(), &wasm("sma_cross"), "rust");
    assert!(
        rust_trades.lines().count() > 100,
        "the reference run trades"
    );

    for (lang, source) in [
        ("c", "plugins/c/sma_cross.c"),
        ("zig", "plugins/zig/sma_cross.zig"),
        ("assemblyscript", "plugins/assemblyscript/sma_cross.ts"),
    ] {
        let module = dir.path().join(format!("{lang}_sma_cross.wasm"));
        let module = module.display().to_string();
        let src = repo().join(source).display().to_string();
        let built = run_ok(dir.path(), &["plugin", "build", &src, "--out", &module]);
        assert!(
            built.contains("plugin      sma_cross 0.1.0"),
            "{lang}: {built}"
        );

        let report = check(dir.path(), &module);
        assert!(passed(&report), "{lang}: {report}");

        let (trades, equity) = backtest(dir.path(), &module, lang);
        assert_eq!(trades, rust_trades, "{lang}: same trades as Rust");
        assert_eq!(
            equity.to_bits(),
            rust_equity.to_bits(),
            "{lang}: final equity {equity} vs Rust {rust_equity}"
        );
    }
}

#[test]
fn the_rsi_examples_in_every_language_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    for source in [
        "plugins/c/rsi_reversion.c",
        "plugins/zig/rsi_reversion.zig",
        "plugins/assemblyscript/rsi_reversion.ts",
    ] {
        let stem = source.replace(['/', '.'], "_");
        let module = dir
            .path()
            .join(format!("{stem}.wasm"))
            .display()
            .to_string();
        let src = repo().join(source).display().to_string();
        run_ok(dir.path(), &["plugin", "build", &src, "--out", &module]);
        let report = check(dir.path(), &module);
        assert!(passed(&report), "{source}: {report}");
        assert!(
            report.contains("pass  snapshot_restore"),
            "{source}: {report}"
        );
    }
}

#[test]
fn a_scaffold_of_each_language_builds_and_passes_the_check() {
    let dir = tempfile::tempdir().unwrap();
    for (lang, ext) in [("c", "c"), ("zig", "zig"), ("assemblyscript", "ts")] {
        let name = format!("my_{lang}");
        let created = run_ok(dir.path(), &["plugin", "new", &name, "--lang", lang]);
        assert!(created.contains("created"), "{created}");
        let project = dir.path().join(&name);
        assert!(project.join("test.sh").is_file(), "{lang}: has a test");
        let src = project.join(format!("{name}.{ext}")).display().to_string();
        let built = run_ok(dir.path(), &["plugin", "build", &src]);
        assert!(
            built.contains(&format!("plugin      {name} 0.1.0")),
            "{built}"
        );
        let module = project.join(format!("{name}.wasm")).display().to_string();
        let report = check(dir.path(), &module);
        assert!(passed(&report), "{lang}: {report}");
        assert!(!report.contains("WARN"), "{lang}: {report}");
    }
}

#[test]
fn plugin_check_fails_naming_the_check_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = wasm("hostile");
    let o = candlewick(
        dir.path(),
        &["plugin", "check", &hostile, "--param", "mode=4", "--json"],
    );
    assert!(!o.status.success(), "a bad plugin fails the check");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let output = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "output")
        .unwrap();
    assert_eq!(output["status"], "fail");
    assert!(output["detail"]
        .as_str()
        .unwrap()
        .contains("strength 2 is not"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains("output (invalid output"),
        "{stderr}"
    );
}
