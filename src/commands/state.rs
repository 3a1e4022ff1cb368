//! `candlewick state ...`: repair the engine's state store by hand.

use std::path::PathBuf;

use anyhow::Context;
use candlewick_state::{StateStore, Store, StreamKey};

use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Delete one stream's records (indicator state, offset, plugin
    /// snapshots) so that it starts again from its history, leaving every
    /// other stream as it is: the way out of a corrupt record or a changed
    /// indicator spec without deleting the whole database. Stop the engine
    /// first (the store is locked while it runs).
    Forget {
        /// The stream, SYMBOL/INTERVAL (e.g. EURUSD/1h).
        #[arg(long, value_name = "SYMBOL/INTERVAL")]
        stream: StreamKey,
        /// Configuration whose state.path to use. Default: the embedded
        /// config/default.toml.
        #[arg(long, value_name = "FILE", conflicts_with = "path")]
        config: Option<PathBuf>,
        /// The state directory itself (instead of a configuration's).
        #[arg(long, value_name = "DIR")]
        path: Option<PathBuf>,
    },
}

pub fn run(cmd: StateCommand) -> anyhow::Result<()> {
    match cmd {
        StateCommand::Forget {
            stream,
            config,
            path,
        } => {
            let path = match path {
                Some(p) => p,
                None => Config::load(config.as_deref())?.state.path,
            };
            if !path.exists() {
                anyhow::bail!("state.path {}: no state store there", path.display());
            }
            let store = Store::open(&path).with_context(|| {
                format!("state.path {} (is the engine running?)", path.display())
            })?;
            let had = store
                .offset(&stream)
                .with_context(|| format!("reading {stream}"))
                .unwrap_or(None);
            store
                .forget(&stream)
                .with_context(|| format!("forgetting {stream}"))?;
            match had {
                Some(_) => println!("forgot {stream}: it starts again from its history"),
                None => println!("{stream} had no offset (nothing applied); its records are gone"),
            }
            Ok(())
        }
    }
}
