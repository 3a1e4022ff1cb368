//! `candlewick analyze`: one analysis of one symbol, now, printed with its
//! cost.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use candlewick_analyst::{context, Analyst, Job, Record, Results};
use candlewick_market::time::format_ms;
use candlewick_state::{Store, StoreOptions};

use crate::config::Config;

/// Ask the configured model ([analyst]) for an analysis of one symbol, from
/// the engine's state (its recent candles, indicator values and signals),
/// and print it with its cost (tokens, USD). The result is stored with the
/// others (state.path/analyst) and counts against the daily budget. The
/// engine must be stopped (its state store is locked while it runs).
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The symbol, as the engine runs it (e.g. BTCUSDT).
    #[arg(long)]
    pub symbol: String,
    /// Configuration file (TOML) with an [analyst] section.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the stored record as JSON (the context sent included).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AnalyzeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let Some(a) = &config.analyst else {
        bail!("the configuration has no [analyst] section (README \"Analyst\" shows one)");
    };
    let settings = a.build()?;
    let keys = crate::commands::run::stream_keys(&config)?;
    let store = Store::open_with(
        &config.state.path,
        StoreOptions::default().sync(config.state.sync),
    )
    .with_context(|| {
        format!(
            "state.path {} (is the engine running? it holds the store; stop it first)",
            config.state.path.display()
        )
    })?;
    let ctx = context::build(
        &store,
        &args.symbol,
        &keys,
        &config.indicators.spec,
        a.signals,
        None,
    )?;
    drop(store);
    let path = a.results_path(&config.state.path);
    let results = Arc::new(Results::open(&path, config.state.sync)?);
    let analyst = Analyst::new(settings, results.clone())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let job = Job {
        symbol: args.symbol.clone(),
        context: ctx,
        trigger: "manual".to_owned(),
    };
    let record = runtime.block_on(analyst.analyze(&job))?;
    let pruned = results.prune(
        record.time,
        (a.retention_days as i64).saturating_mul(86_400_000),
        a.retention_per_symbol,
    )?;
    if pruned > 0 {
        tracing::info!(pruned, "old analyses deleted (retention)");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print!("{}", render(&record));
    }
    match (&record.cause, &record.error) {
        (Some(cause), Some(error)) => Err(anyhow!(
            "the analysis of {} failed ({}): {error}",
            record.symbol,
            cause.as_str()
        )),
        _ => Ok(()),
    }
}

/// The record for a terminal.
pub(crate) fn render(r: &Record) -> String {
    let mut out = String::new();
    match &r.analysis {
        Some(a) => {
            out.push_str(&format!(
                "{} at {} UTC: {} (confidence {:.2}, horizon {})\n\n{}\n",
                r.symbol,
                format_ms(r.time),
                a.bias.as_str(),
                a.confidence,
                a.horizon,
                a.rationale
            ));
            if !a.risks.is_empty() {
                out.push_str("\nrisks:\n");
                for risk in &a.risks {
                    out.push_str(&format!("  - {risk}\n"));
                }
            }
        }
        None => out.push_str(&format!(
            "{} at {} UTC: no analysis ({})\n",
            r.symbol,
            format_ms(r.time),
            r.cause.map_or("failed", |c| c.as_str())
        )),
    }
    out.push_str(&format!(
        "\ncost: {} tokens in, {} out, {:.6} USD ({}, {} request(s), {} ms)\n",
        r.tokens_in, r.tokens_out, r.cost_usd, r.model, r.attempts, r.latency_ms
    ));
    out
}
