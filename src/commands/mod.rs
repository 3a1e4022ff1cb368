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
