//! `candlewick ask`: a question answered from the analyst's stored
//! records, each claim traceable to the records listed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use candlewick_analyst::ask::{self, record_id, NO_DATA};
use candlewick_analyst::{Analyst, Results};
use candlewick_market::time::{format_ms, parse_timestamp};

use crate::config::Config;

/// Ask the configured model ([analyst]) a question about the markets,
/// answered only from the analyst's stored records (its analyses and the
/// candles, indicator values and signals each was made from); prints the
/// answer and the records it rests on, or "no data for that". Works while
/// the engine runs (reads a snapshot of the records).
#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// The question, e.g. "why is BTCUSDT bearish?".
    pub question: String,
    /// Configuration file (TOML) with an [analyst] section.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this symbol's records (default: the symbols the question
    /// names, or every symbol when it names none).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Only records from this time on (epoch ms or 2024-01-02T10:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only records up to this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Records per symbol sent with the question. Default 5.
    #[arg(long, default_value_t = 5)]
    pub per_symbol: usize,
    /// Print the answer as JSON (with the records used).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: AskArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let Some(a) = &config.analyst else {
        bail!("the configuration has no [analyst] section (README \"Analyst\" shows one)");
    };
    let time = |t: &Option<String>, flag: &str, default: i64| -> anyhow::Result<i64> {
        t.as_deref()
            .map(parse_timestamp)
            .transpose()
            .map_err(|e| anyhow!("{flag}: {e}"))
            .map(|t| t.unwrap_or(default))
    };
    let (from, to) = (
        time(&args.from, "--from", 0)?,
        time(&args.to, "--to", i64::MAX)?,
    );
    if !(1..=ask::MAX_RECORDS).contains(&args.per_symbol) {
        bail!("--per-symbol must be from 1 to {}", ask::MAX_RECORDS);
    }
    let settings = a.build()?;
    let path = a.results_path(&config.state.path);
    if !path.exists() {
        return print_no_data(args.json);
    }
    // Writable when the engine is stopped (the question's cost is added to
    // the day's spend); a read-only snapshot while it runs.
    let results = match Results::open(&path, config.state.sync) {
        Ok(r) => r,
        Err(_) => Results::open_read_only(&path)
            .with_context(|| format!("the analyst's records in {}", path.display()))?,
    };
    let records = ask::select(
        &results,
        &args.question,
        args.symbol.as_deref(),
        from,
        to,
        args.per_symbol,
    )?;
    if records.is_empty() {
        return print_no_data(args.json);
    }
    let writable = results.is_writable();
    let analyst = Analyst::new(settings, Arc::new(results))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let asked = runtime.block_on(ask::ask(&analyst, &args.question, &records))?;
    if !writable && asked.spent.cost_usd > 0.0 {
        tracing::warn!(
            cost_usd = asked.spent.cost_usd,
            "the engine holds the analyst's store: this question's cost is not added to the day's stored spend"
        );
    }
    let s = asked.spent;
    if args.json {
        let v = serde_json::json!({
            "answer": asked.answer,
            "records": asked.used.iter().map(|r| serde_json::json!({
                "id": record_id(r),
                "symbol": r.symbol,
                "time": r.time,
                "analysis": r.analysis,
            })).collect::<Vec<_>>(),
            "tokens_in": s.tokens_in,
            "tokens_out": s.tokens_out,
            "cost_usd": s.cost_usd,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if let Some(answer) = &asked.answer {
        println!("{answer}");
        if !asked.used.is_empty() {
            println!("\nrecords used:");
            for r in &asked.used {
                let view = r.analysis.as_ref().map_or(String::new(), |a| {
                    format!("{} {:.2}", a.bias.as_str(), a.confidence)
                });
                println!(
                    "  {}  {} at {} UTC ({}) {view}",
                    record_id(r),
                    r.symbol,
                    format_ms(r.time),
                    r.trigger
                );
            }
        }
    }
    if !args.json {
        println!(
            "\ncost: {} tokens in, {} out, {:.6} USD ({} request(s))",
            s.tokens_in, s.tokens_out, s.cost_usd, s.attempts
        );
    }
    match asked.failure {
        Some((cause, e)) => Err(anyhow!(
            "the question could not be answered ({}): {e}",
            cause.as_str()
        )),
        None => Ok(()),
    }
}

fn print_no_data(json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::json!({"answer": NO_DATA, "records": []}));
    } else {
        println!("{NO_DATA} (no stored analyses match)");
    }
    Ok(())
}
