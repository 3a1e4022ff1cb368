//! The `candlewick` command line: parses arguments, sets up logging, runs
//! one command, and reports its error on one line. All the work lives in
//! the engine crates; nothing here holds state beyond one command.

mod commands;
mod config;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc: lower and steadier allocation latency than the system allocator
// for the engine's many small, short-lived buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Candlewick turns candles into trading signals, live or from history,
/// through the same code.
#[derive(Debug, Parser)]
#[command(name = "candlewick", version, propagate_version = true)]
#[command(after_help = "Start with `candlewick run` (offline, bundled data). \
    Every command exits non-zero with a one-line error naming the file, line and field on bad input.")]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Human)]
    log_format: logging::LogFormat,

    /// Log filter, e.g. `info`, `debug`, `candlewick_state=debug` (RUST_LOG also works).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(commands::run::RunArgs),
    Ingest(commands::ingest::IngestArgs),
    Feed(commands::feed::FeedArgs),
    Watch(commands::watch::WatchArgs),
    Indicators(commands::indicators::IndicatorsArgs),
    Backtest(commands::backtest::BacktestArgs),
    Train(commands::train::TrainArgs),
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    Import(commands::import::ImportArgs),
    Fetch(commands::fetch::FetchArgs),
    /// Create and build strategy plugins (WebAssembly).
    Plugin {
        #[command(subcommand)]
        cmd: commands::plugin::PluginCommand,
    },
    /// Notifications that could not be delivered (list, retry).
    Notify {
        #[command(subcommand)]
        cmd: commands::notify::NotifyCommand,
    },
    Analyze(commands::analyze::AnalyzeArgs),
    Ask(commands::ask::AskArgs),
    /// Repair the engine's state store (forget one stream).
    State {
        #[command(subcommand)]
        cmd: commands::state::StateCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format, &cli.log_level) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Feed(args) => commands::feed::run(args),
        Command::Watch(args) => commands::watch::run(args),
        Command::Indicators(args) => commands::indicators::run(args),
        Command::Backtest(args) => commands::backtest::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Model(cmd) => commands::model::run(cmd),
        Command::Import(args) => commands::import::run(args),
        Command::Fetch(args) => commands::fetch::run(args),
        Command::Plugin { cmd } => commands::plugin::run(cmd),
        Command::Notify { cmd } => commands::notify::run(cmd),
        Command::State { cmd } => commands::state::run(cmd),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::Ask(args) => commands::ask::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, joined by ": ", each cause once
/// (many messages already quote their source).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string().replace('\n', " ");
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}
