//! One module per subcommand; shared helpers beside them.

pub mod indicators;
pub mod output;
pub mod run;
