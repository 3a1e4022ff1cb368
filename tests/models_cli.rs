//! Models end to end through the CLI: `candlewick train`, then
//! `candlewick backtest --model` with the `model_follow` plugin (its
//! predictions reach the strategy through the shard workers), and the
//! refusals of `backtest` and `run` for a missing model or a corrupted
//! artifact. The plugins are built on first use (see `backtest_cli.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{candlewick, repo, text, wasm};

/// A tiny LSTM on the bundled data (seconds): up and down split at 0, so
/// its p(up) moves around 0.5.
fn train(dir: &Path, out: &str) {
    let data = repo().join("data/EURUSD-1h.csv");
    let o = candlewick(
        dir,
        &[
            "train",
            "--data",
            &data.display().to_string(),
            "--arch",
            "lstm",
            "--features",
            "logret range body rsi(14)",
            "--window",
            "16",
            "--hidden",
            "8",
            "--layers",
            "1",
            "--epochs",
            "2",
            "--up",
            "0",
            "--down",
            "0",
            "--out",
            out,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}

fn backtest(dir: &Path, extra: &[&str], out: &str) -> Output {
    let data = repo().join("data/EURUSD-1h.csv").display().to_string();
    let strategy = wasm("model_follow");
    let mut args = vec![
        "backtest",
        "--data",
        &data,
        "--strategy",
        &strategy,
        "--param",
        "threshold=0.5",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    candlewick(dir, &args)
}

fn fingerprint(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint ").map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn backtest_feeds_model_predictions_to_model_follow() {
    let tmp = tempfile::tempdir().unwrap();
    train(tmp.path(), "model");
    let first = backtest(tmp.path(), &["--model", "model"], "bt1");
    assert!(first.status.success(), "{}", text(&first));
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("bt1/stats.json")).unwrap())
            .unwrap();
    let trades = stats["stats"]["# Trades"].as_u64().unwrap();
    assert!(
        trades > 20,
        "model_follow should trade on the predictions: {trades}"
    );
    // Named explicitly, the same model gives the same trades.
    let again = backtest(tmp.path(), &["--model", "prediction=model"], "bt2");
    assert!(again.status.success(), "{}", text(&again));
    assert!(!fingerprint(&first).is_empty());
    assert_eq!(fingerprint(&first), fingerprint(&again));
    // The model's weights are one of the run's inputs: the report names
    // their hash, so another model cannot pass for this one.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("model/manifest.json")).unwrap(),
    )
    .unwrap();
    let sha = manifest["weights"]["sha256"].as_str().unwrap();
    let html = std::fs::read_to_string(tmp.path().join("bt1/report.html")).unwrap();
    assert!(html.contains(&format!("model:prediction@{sha}")), "{sha}");
}

#[test]
fn backtest_refuses_a_missing_model_and_a_corrupted_artifact() {
    let tmp = tempfile::tempdir().unwrap();
    let o = backtest(tmp.path(), &[], "bt");
    assert!(!o.status.success());
    let e = text(&o);
    assert!(
        e.contains("no model named \"prediction\"") && e.contains("--model"),
        "{e}"
    );

    train(tmp.path(), "model");
    let weights = tmp.path().join("model/model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let o = backtest(tmp.path(), &["--model", "model"], "bt");
    assert!(!o.status.success());
    assert!(text(&o).contains("hash mismatch"), "{}", text(&o));
    assert!(!tmp.path().join("bt/stats.json").exists());
}

/// `candlewick run` with [`run_config`]`(dir, models)`, which must fail
/// at start; returns what it said.
fn run_refused(dir: &Path, models: &str) -> String {
    let config = run_config(dir, models);
    let o = candlewick(dir, &["run", "--config", &config.display().to_string()]);
    assert!(!o.status.success());
    text(&o)
}

/// The embedded default with `model_follow` as the only strategy, a state
/// directory of its own, and `models` appended.
fn run_config(dir: &Path, models: &str) -> PathBuf {
    let default = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let strategies = default.find("[[strategies]]").unwrap();
    let state = default.find("[state]").unwrap();
    let text = format!(
        "{}[[strategies]]\nwasm = {:?}\n\n{models}\n{}",
        &default[..strategies],
        wasm("model_follow"),
        default[state..]
            .replace("path = \"var/state\"", "path = \"state\"")
            .replace("127.0.0.1:8765", "127.0.0.1:0"),
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn run_refuses_a_missing_model_and_a_corrupted_artifact_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let e = run_refused(tmp.path(), "");
    assert!(
        e.contains("strategy model_follow") && e.contains("no model named \"prediction\""),
        "{e}"
    );

    train(tmp.path(), "model");
    std::fs::write(tmp.path().join("model/model.safetensors"), b"not weights").unwrap();
    let e = run_refused(
        tmp.path(),
        "[[models]]\ndir = \"model\"\nname = \"prediction\"\n",
    );
    assert!(
        e.contains("models[0]") && e.contains("hash mismatch"),
        "{e}"
    );
}
