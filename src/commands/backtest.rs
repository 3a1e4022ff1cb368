//! `candlewick backtest`: run a wasm strategy over a candle file through the
//! simulated broker, print the statistics and the run fingerprint, and
//! write `stats.json`, `trades.csv` and `trades.parquet`, the per-bar
//! series (`equity.parquet`, or `equity.csv` with `--equity-format csv`)
//! and `report.html`.
//!
//! Data comes as it is: holes (weekends, exchange holidays, nights, a
//! missing minute of a 24/7 market) are run over and counted in the
//! statistics (`Gaps`, `Missing Bars`, `Largest Gap`), never filled in;
//! `--gaps fail` refuses them instead.
//!
//! History goes through the live engine's shard workers ([`Replay`]): the
//! same router, indicator state and plugin runners as `candlewick run`,
//! with an in-memory store and the simulated broker as the sink.
//!
//! A `--param` holding a range (`fast=5..50:5`) or a list (`fast=5,10`)
//! turns the run into a parameter sweep: every grid point runs in parallel
//! and `--out` gets `sweep.csv` (ranked by `--rank-by`) and, for two or
//! more swept parameters, `heatmap.svg`.
//!
//! `--data` takes CSV (either dialect), Arrow IPC or Parquet, chosen by
//! extension ([`CandleReader`]). Several symbols (several `--data` files,
//! or one file with a `symbol` column) run as independent backtests, each
//! with its own account, in parallel, and are reported in symbol order:
//! `--out DIR/SYMBOL/...` per symbol, `DIR/symbols.csv` for all, and one
//! combined fingerprint over the per-symbol ones. A file with a symbol
//! column is read once per symbol (one pass each, constant memory).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candlewick_backtest::fingerprint::{
    fingerprint, sha256_hex, DigestCache, Inputs, PendingSha256,
};
use candlewick_backtest::report::{summary_table, write_files, PerBarFormat, Report};
use candlewick_backtest::sweep::{grid, heatmap_svg, sweep, to_csv, ParamRange, Point};
use candlewick_backtest::{
    backtest_limits, BrokerConfig, EndOfData, GapPolicy, Replay, ReplaySeries, RunError,
    RunOptions, RunResult,
};
use candlewick_history::CandleReader;
use candlewick_market::Symbol;
use candlewick_pipeline::Strategy;
use candlewick_plugins::{HostConfig, LoadedModule, PluginHost, RestartPolicy};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Backtest a strategy plugin on a candle file (fills at the next bar's
/// open, fees and slippage in bps, statistics as backtesting.py defines them).
#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// Candles: .csv (either dialect, see `candlewick indicators --help`),
    /// .arrow or .parquet. Repeat for several symbols; a file with a
    /// `symbol` column holds several itself.
    #[arg(long, value_name = "FILE", required = true)]
    pub data: Vec<PathBuf>,
    /// Run only these symbols (repeatable); default all. A file without a
    /// `symbol` column is named by its file stem.
    #[arg(long = "symbol", value_name = "SYMBOL")]
    pub symbols: Vec<String>,
    /// Strategy plugin, a wasm32 module built with the Candlewick SDK.
    #[arg(long, value_name = "PLUGIN.wasm")]
    pub strategy: PathBuf,
    /// Strategy parameter `name=value`; `name=a..b:step` or `name=v1,v2` sweeps.
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Starting cash.
    #[arg(long, default_value_t = 10_000.0)]
    pub cash: f64,
    /// Fee per fill, basis points of notional.
    #[arg(long, default_value_t = 10.0)]
    pub fee_bps: f64,
    /// Adverse slippage on market and stop fills, basis points.
    #[arg(long, default_value_t = 0.0)]
    pub slippage_bps: f64,
    /// Round units down to multiples of this (1 = whole units, as backtesting.py).
    #[arg(long, value_name = "N")]
    pub lot_size: Option<f64>,
    /// Where a position open at the end is closed: `close` (default) or
    /// `open` of the last bar (backtesting.py's finalize_trades).
    #[arg(long, default_value = "close", value_parser = ["close", "open"])]
    pub end_at: String,
    /// Holes in the data (bars missing between two bars: weekends,
    /// holidays, nights, a lost minute): `report` (default) runs over them
    /// and counts them in the statistics (none is filled in); `fail` stops
    /// at the first; `weekends` stops at the first that is not a weekend
    /// closure.
    #[arg(long, value_enum, default_value_t = Gaps::Report)]
    pub gaps: Gaps,
    /// Per-bar output (equity, drawdown, exposure): `parquet`
    /// (`equity.parquet`, default) or `csv` (`equity.csv`).
    #[arg(long, value_enum, default_value_t = EquityFormat::Parquet)]
    pub equity_format: EquityFormat,
    /// Old spelling of `--gaps report`, now the default.
    #[arg(long, hide = true, conflicts_with = "gaps")]
    pub allow_gaps: bool,
    /// Statistic that ranks a sweep, by its backtesting.py name.
    #[arg(long, default_value = "Sharpe Ratio")]
    pub rank_by: String,
    /// Rank a sweep lowest first (e.g. for drawdown duration).
    #[arg(long)]
    pub minimise: bool,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// A model artifact the strategy reads, `[NAME=]DIR` (repeatable).
    /// Unnamed, it is named by its manifest, or serves a strategy that
    /// reads exactly one model. Verified before anything runs.
    #[arg(long = "model", value_name = "[NAME=]DIR")]
    pub models: Vec<String>,
}

/// What `--gaps` does with a hole in the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Gaps {
    /// Run over it; count it in the statistics.
    Report,
    /// Stop at the first hole.
    Fail,
    /// Stop at the first hole that is not a weekend closure.
    Weekends,
}

/// The per-bar file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EquityFormat {
    Parquet,
    Csv,
}

impl EquityFormat {
    fn per_bar(self) -> PerBarFormat {
        match self {
            EquityFormat::Parquet => PerBarFormat::Parquet,
            EquityFormat::Csv => PerBarFormat::Csv,
        }
    }
}

pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    candlewick_pipeline::pages::prefer_small_pages();
    let options = options(&args)?;
    let host = PluginHost::new(backtest_host()).context("starting the plugin host")?;
    let module = host
        .load_file(&args.strategy)
        .with_context(|| format!("{}", args.strategy.display()))?;
    let wanted = &module.manifest().models;
    let models = candlewick_inference::models_from_args(&args.models, wanted)?;
    candlewick_inference::OutputRef::resolve_all(wanted, &models).with_context(|| {
        format!(
            "{} reads model outputs (give each model with --model [NAME=]DIR)",
            args.strategy.display()
        )
    })?;
    let ranges = args
        .params
        .iter()
        .map(|p| ParamRange::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let series = series(&args)?;
    let job = Job {
        host: &host,
        module: &module,
        args: &args,
        options: &options,
        models: &models,
    };
    let single = ranges.iter().all(ParamRange::is_single);
    match (series.as_slice(), single) {
        ([one], true) => job.single(one, &point(&ranges)),
        ([one], false) => job.sweep(one, &ranges),
        (many, true) => job.many(many, &point(&ranges)),
        (many, false) => bail!(
            "a sweep runs on one symbol, and the data holds {} ({}); choose one with --symbol",
            many.len(),
            many.iter()
                .map(|s| s.symbol.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn backtest_host() -> HostConfig {
    HostConfig {
        limits: backtest_limits(),
        ..HostConfig::default()
    }
    .with_user_cache()
}

fn point(ranges: &[ParamRange]) -> Point {
    ranges
        .iter()
        .map(|r| (r.name.clone(), r.values[0]))
        .collect()
}

/// One symbol's candles: a file, or one symbol of a file.
#[derive(Debug, Clone)]
struct Series {
    /// The symbol, or the file stem of a file without a `symbol` column.
    symbol: String,
    path: PathBuf,
    /// The symbol to pick out of a file with a `symbol` column.
    pick: Option<String>,
    /// The file's SHA-256, being computed beside the replay.
    digest: Arc<PendingSha256>,
    /// Whether the file holds other symbols too.
    several: bool,
}

impl Series {
    fn open(&self) -> Result<CandleReader, RunError> {
        let reader = CandleReader::open(&self.path)?;
        Ok(match &self.pick {
            Some(symbol) => reader.only(symbol),
            None => reader,
        })
    }

    /// What the fingerprint calls the data: the file's SHA-256, or for one
    /// symbol of several in a file, the SHA-256 of that and the symbol.
    fn data_sha256(&self) -> anyhow::Result<String> {
        let sha = self
            .digest
            .wait()
            .with_context(|| format!("{}", self.path.display()))?;
        Ok(if self.several {
            sha256_hex(format!("{sha}\n{}", self.symbol).as_bytes())
        } else {
            sha
        })
    }

    fn label(&self) -> String {
        match &self.pick {
            Some(symbol) => format!("{} [{symbol}]", self.path.display()),
            None => self.path.display().to_string(),
        }
    }
}

/// Every series of `--data`, filtered by `--symbol`, in symbol order.
fn series(args: &BacktestArgs) -> anyhow::Result<Vec<Series>> {
    let mut all = Vec::new();
    for path in &args.data {
        let names = candlewick_history::symbols(path)?;
        let digest = Arc::new(PendingSha256::spawn(path, DigestCache::user()));
        if names.is_empty() {
            let stem = path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            );
            all.push(Series {
                symbol: stem,
                path: path.clone(),
                pick: None,
                digest,
                several: false,
            });
            continue;
        }
        let several = names.len() > 1;
        for name in names {
            all.push(Series {
                symbol: name.clone(),
                path: path.clone(),
                pick: Some(name),
                digest: digest.clone(),
                several,
            });
        }
    }
    if !args.symbols.is_empty() {
        for want in &args.symbols {
            if !all.iter().any(|s| &s.symbol == want) {
                bail!(
                    "--symbol {want}: not in the data (it holds {})",
                    all.iter()
                        .map(|s| s.symbol.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        all.retain(|s| args.symbols.contains(&s.symbol));
    }
    all.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    if let Some(w) = all.windows(2).find(|w| w[0].symbol == w[1].symbol) {
        bail!(
            "symbol {} appears in both {} and {}; give each symbol once",
            w[0].symbol,
            w[0].path.display(),
            w[1].path.display()
        );
    }
    Ok(all)
}

fn options(args: &BacktestArgs) -> anyhow::Result<RunOptions> {
    let broker = BrokerConfig::new()
        .with_cash(args.cash)
        .with_fee_bps(args.fee_bps)
        .with_slippage_bps(args.slippage_bps)
        .with_lot_size(args.lot_size)
        .with_end_of_data(if args.end_at == "open" {
            EndOfData::CloseAtLastOpen
        } else {
            EndOfData::CloseAtLastClose
        });
    broker.validate()?;
    Ok(RunOptions {
        broker,
        gaps: match args.gaps {
            _ if args.allow_gaps => GapPolicy::Allow,
            Gaps::Report => GapPolicy::Allow,
            Gaps::Fail => GapPolicy::Reject,
            Gaps::Weekends => GapPolicy::Weekends,
        },
        ..RunOptions::default()
    })
}

/// What every run of one command shares.
struct Job<'a> {
    host: &'a PluginHost,
    module: &'a LoadedModule,
    args: &'a BacktestArgs,
    options: &'a RunOptions,
    models: &'a [candlewick_inference::NamedModel],
}

impl Job<'_> {
    fn single(&self, series: &Series, point: &Point) -> anyhow::Result<()> {
        self.resolve(point)?; // a bad parameter is named before anything runs
        let started = Instant::now();
        let progress = spinner();
        let result = self.run_point(series, point, &|bars| {
            if started.elapsed() > Duration::from_secs(1) && progress.is_hidden() {
                progress.set_draw_target(ProgressDrawTarget::stderr());
            }
            progress.inc(bars);
        });
        progress.finish_and_clear();
        let result = result?;
        let inputs = self.inputs(series, point)?;
        let fp = fingerprint(&inputs, &result.options, &result.trades);
        let manifest = self.module.manifest();
        let strategy_label = format!("{} {}", manifest.name, manifest.version);
        let data_label = series.label();
        let report = Report {
            result: &result,
            inputs: &inputs,
            data_label: &data_label,
            strategy_label: &strategy_label,
            fingerprint: &fp,
        };
        let names = write_files(&self.args.out, &report, self.args.equity_format.per_bar())
            .with_context(|| format!("{}", self.args.out.display()))?;
        print!("{}", summary_table(&report));
        println!("wrote {}/{{{}}}", self.args.out.display(), names.join(","));
        Ok(())
    }

    /// Every series in parallel, each with its own account; reported in
    /// symbol order, so the output does not depend on scheduling.
    fn many(&self, series: &[Series], point: &Point) -> anyhow::Result<()> {
        self.resolve(point)?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let results = self.replay(series, point, workers, &|_| {})?;
        let manifest = self.module.manifest();
        let strategy_label = format!("{} {}", manifest.name, manifest.version);
        let mut rows = Vec::with_capacity(series.len());
        let mut table = String::from(
            "symbol,bars,trades,return_pct,sharpe,max_drawdown_pct,equity_final,fingerprint\n",
        );
        for (s, result) in series.iter().zip(results) {
            let result = result.with_context(|| format!("symbol {}", s.symbol))?;
            let inputs = self.inputs(s, point)?;
            let fp = fingerprint(&inputs, &result.options, &result.trades);
            let data_label = s.label();
            let report = Report {
                result: &result,
                inputs: &inputs,
                data_label: &data_label,
                strategy_label: &strategy_label,
                fingerprint: &fp,
            };
            let dir = self.args.out.join(&s.symbol);
            write_files(&dir, &report, self.args.equity_format.per_bar())
                .with_context(|| format!("{}", dir.display()))?;
            let st = &result.stats;
            table.push_str(&format!(
                "{},{},{},{},{},{},{},{fp}\n",
                s.symbol,
                result.curve.len(),
                st.trades,
                st.return_pct,
                st.sharpe,
                st.max_drawdown_pct,
                st.equity_final
            ));
            rows.push((
                s.symbol.clone(),
                result.curve.len(),
                st.trades,
                st.return_pct,
                st.sharpe,
                st.equity_final,
                fp,
            ));
        }
        std::fs::write(self.args.out.join("symbols.csv"), &table)
            .with_context(|| format!("{}", self.args.out.display()))?;
        println!(
            "{:<14} {:>10} {:>7} {:>11} {:>8} {:>14}  fingerprint",
            "symbol", "bars", "trades", "return %", "sharpe", "equity final"
        );
        let mut combined = String::new();
        for (symbol, bars, trades, ret, sharpe, equity, fp) in &rows {
            println!(
                "{symbol:<14} {bars:>10} {trades:>7} {ret:>11.4} {sharpe:>8.3} {equity:>14.2}  {}",
                &fp[..16]
            );
            combined.push_str(&format!("{symbol}\t{fp}\n"));
        }
        println!("fingerprint {}", sha256_hex(combined.as_bytes()));
        println!(
            "wrote {}/{{symbols.csv,SYMBOL/{{stats.json,trades.csv,trades.parquet,{},report.html}}}}",
            self.args.out.display(),
            self.args.equity_format.per_bar().file_name()
        );
        Ok(())
    }

    fn sweep(&self, series: &Series, ranges: &[ParamRange]) -> anyhow::Result<()> {
        let points = grid(ranges)?;
        // Check every point's parameters before running any.
        for p in &points {
            self.resolve(p)?;
        }
        let n = points.len();
        let rows = sweep(points, &self.args.rank_by, self.args.minimise, |p| {
            self.run_point(series, p, &|_| {})
        })?;
        std::fs::create_dir_all(&self.args.out)?;
        std::fs::write(
            self.args.out.join("sweep.csv"),
            to_csv(&rows, &self.args.rank_by),
        )?;
        if let Some(svg) = heatmap_svg(&rows, &self.args.rank_by, self.args.minimise) {
            std::fs::write(self.args.out.join("heatmap.svg"), svg)?;
        }
        println!("sweep of {n} points ranked by {:?}:", self.args.rank_by);
        for (rank, row) in rows.iter().take(10).enumerate() {
            let params: Vec<String> = row.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
            match &row.outcome {
                Ok(_) => println!(
                    "  {:>3}. {:<30} {:>14.6}",
                    rank + 1,
                    params.join(" "),
                    row.score
                ),
                Err(e) => println!("  {:>3}. {:<30} failed: {e}", rank + 1, params.join(" ")),
            }
        }
        println!("wrote {}/sweep.csv", self.args.out.display());
        Ok(())
    }

    /// The plugin's parameter values for a point (defaults filled in).
    fn resolve(&self, point: &Point) -> anyhow::Result<Vec<f64>> {
        let overrides: Vec<(String, String)> = point
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        Ok(self.module.manifest().resolve_params(&overrides)?)
    }

    fn inputs(&self, series: &Series, point: &Point) -> anyhow::Result<Inputs> {
        let manifest = self.module.manifest();
        let values = self.resolve(point)?;
        // The models' weights are inputs too: another model, other trades.
        let mut strategy = format!("{}@{}", manifest.name, self.module.hash_hex());
        for m in self.models {
            strategy.push_str(&format!(" model:{}@{}", m.name(), m.sha256()));
        }
        Ok(Inputs {
            data_sha256: series.data_sha256()?,
            strategy,
            params: manifest
                .params
                .iter()
                .map(|p| p.name.clone())
                .zip(values)
                .collect(),
        })
    }

    /// One series through one shard worker.
    fn run_point(
        &self,
        series: &Series,
        point: &Point,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<RunResult, RunError> {
        let one = std::slice::from_ref(series);
        let mut results = self.replay(one, point, 1, progress)?;
        results
            .pop()
            .unwrap_or_else(|| Err(RunError::Pipeline("no result".to_owned())))
    }

    /// Every series through `workers` shard workers, one result each, in
    /// order.
    fn replay(
        &self,
        series: &[Series],
        point: &Point,
        workers: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Vec<Result<RunResult, RunError>>, RunError> {
        let mut inputs = Vec::with_capacity(series.len());
        for s in series {
            let symbol = Symbol::new(&s.symbol).map_err(|e| {
                RunError::Pipeline(format!(
                    "{}: {e} (rename the file or pass --symbol)",
                    s.label()
                ))
            })?;
            inputs.push(ReplaySeries {
                symbol,
                candles: Box::new(s.open()?),
            });
        }
        let replay = Replay {
            host: self.host,
            strategy: Strategy {
                name: self.module.manifest().name.as_str().into(),
                module: self.module.clone(),
                params: point
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                limits: backtest_limits(),
                policy: RestartPolicy::default(),
            },
            options: self.options.clone(),
            workers,
        };
        replay.run_with_models(self.models, inputs, progress)
    }
}

fn spinner() -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {pos} bars {per_sec} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb
}
