//! One module per subcommand; shared helpers beside them.

pub mod analyze;
pub mod ask;
pub mod backtest;
pub mod feed;
pub mod fetch;
pub mod import;
pub mod indicators;
pub mod ingest;
pub mod model;
pub mod notify;
pub mod output;
pub mod plugin;
pub mod run;
pub mod state;
pub mod train;
pub mod watch;

/// The async runtime of a long-running role (`run`, `ingest`, `feed`):
/// two I/O threads named `name`; the engine's own work runs on its shard
/// threads.
pub(crate) fn io_runtime(name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
