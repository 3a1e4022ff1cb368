//! `candlewick plugin check FILE.wasm`: ABI conformance of any module,
//! whatever language built it (the checks are
//! `candlewick_plugins::conformance`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candlewick_plugins::conformance::{self, CheckOptions, Report, Status};
use candlewick_plugins::{HostConfig, Limits, PluginHost};

/// Arguments of `plugin check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The module to check.
    pub path: PathBuf,
    /// Print the report as JSON (one object) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Parameter override `name=value` for the base run (repeatable).
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Candles to run the plugin over (any format `backtest` reads);
    /// default: deterministic synthetic candles.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How many bars to use (the first N of --data).
    #[arg(long, default_value_t = 2000)]
    pub bars: usize,
    /// Deadline per call in ms (default: the engine's, 1 ms). A missed
    /// deadline is confirmed by a second run before it fails the check.
    #[arg(long, value_name = "MS")]
    pub deadline_ms: Option<f64>,
}

/// Runs the checks, prints the report, and fails naming each failed check.
pub fn run(args: CheckArgs) -> Result<()> {
    let wasm = std::fs::read(&args.path).with_context(|| format!("{}", args.path.display()))?;
    let overrides = args
        .params
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => bail!("--param {kv:?}: expected name=value"),
        })
        .collect::<Result<Vec<_>>>()?;
    if args.bars == 0 {
        bail!("--bars must be at least 1");
    }
    let (candles, source) = match &args.data {
        Some(path) => (read_candles(path, args.bars)?, path.display().to_string()),
        None => (
            conformance::synthetic_candles(args.bars),
            "synthetic".to_string(),
        ),
    };
    let mut limits = Limits::default();
    if let Some(ms) = args.deadline_ms {
        if !(ms.is_finite() && ms > 0.0) {
            bail!("--deadline-ms {ms}: must be a positive number of milliseconds");
        }
        limits.deadline = std::time::Duration::from_secs_f64(ms / 1000.0);
    }
    let host = PluginHost::new(HostConfig::default()).context("starting the plugin host")?;
    let report = conformance::check_module(
        &host,
        &wasm,
        &CheckOptions {
            overrides,
            candles,
            limits,
        },
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&args.path, &source, &report);
    }
    let failed: Vec<String> = report
        .failures()
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{}: {} check(s) failed: {}",
            args.path.display(),
            failed.len(),
            failed.join("; ")
        );
    }
    Ok(())
}

fn read_candles(path: &Path, limit: usize) -> Result<Vec<candlewick_market::Candle>> {
    let reader = candlewick_history::CandleReader::open(path)?;
    let mut candles = Vec::with_capacity(limit.min(1 << 20));
    for candle in reader.take(limit) {
        candles.push(candle?);
    }
    if candles.is_empty() {
        bail!("{}: no candles", path.display());
    }
    Ok(candles)
}

fn print_human(path: &Path, source: &str, report: &Report) {
    println!(
        "plugin check {} ({}; {} {} bars)",
        path.display(),
        report.plugin.as_deref().unwrap_or("no readable manifest"),
        report.bars,
        source
    );
    for c in &report.checks {
        let mark = match c.status {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        println!("  {mark}  {:<17} {}", c.name, c.detail);
    }
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    println!(
        "{}: {} passed, {} failed, {} warnings, {} skipped",
        if report.passed() { "ok" } else { "FAILED" },
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Skip)
    );
}
