//! `candlewick notify ...`: the notifications that could not be delivered.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use candlewick_market::time::format_ms;
use candlewick_notify::{Outbox, Record};

use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// List the dead letters: notifications given up on after their
    /// webhook's max_attempts (id, webhook, host, attempts, when, last
    /// error). Works while the engine runs (reads a snapshot).
    ListFailed {
        #[command(flatten)]
        place: Place,
        /// One JSON array, for tools.
        #[arg(long)]
        json: bool,
    },
    /// Put the dead letters back in the queue, attempts reset; the engine
    /// delivers them when it next runs. Stop the engine first (the outbox
    /// is locked while it runs).
    RetryFailed {
        #[command(flatten)]
        place: Place,
        /// Only this webhook's (its `name`).
        #[arg(long, value_name = "NAME")]
        webhook: Option<String>,
    },
}

/// Where the outbox is.
#[derive(Debug, clap::Args)]
pub struct Place {
    /// Configuration whose [notify] outbox (or state.path) to use.
    /// Default: the embedded config/default.toml.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["state", "outbox"])]
    config: Option<PathBuf>,
    /// The engine's state directory (the outbox is its `notify/`).
    #[arg(long, value_name = "DIR", conflicts_with = "outbox")]
    state: Option<PathBuf>,
    /// The outbox directory itself.
    #[arg(long, value_name = "DIR")]
    outbox: Option<PathBuf>,
}

impl Place {
    fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.outbox {
            return Ok(p.clone());
        }
        if let Some(s) = &self.state {
            return Ok(s.join(candlewick_notify::OUTBOX_DIR));
        }
        let config = Config::load(self.config.as_deref())?;
        Ok(match &config.notify {
            Some(n) => n.outbox(&config.state.path),
            None => config.state.path.join(candlewick_notify::OUTBOX_DIR),
        })
    }
}

pub fn run(cmd: NotifyCommand) -> anyhow::Result<()> {
    match cmd {
        NotifyCommand::ListFailed { place, json } => {
            let path = place.path()?;
            let dead = if has_outbox(&path) {
                Outbox::open_read_only(&path)?.dead_letters()?
            } else {
                Vec::new()
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&as_json(&dead))?);
            } else {
                print_table(&path, &dead);
            }
            Ok(())
        }
        NotifyCommand::RetryFailed { place, webhook } => {
            let path = place.path()?;
            if !has_outbox(&path) {
                bail!("no notification outbox at {}", path.display());
            }
            let outbox = Outbox::open(&path, false).with_context(|| {
                format!("{} (is the engine running? stop it first)", path.display())
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let n = outbox.retry_dead(webhook.as_deref(), now)?;
            println!("{n} notification(s) queued again; the engine delivers them when it runs");
            Ok(())
        }
    }
}

/// Whether `path` holds a RocksDB database (an outbox never created is
/// an empty list, not an error).
fn has_outbox(path: &Path) -> bool {
    path.join("CURRENT").is_file()
}

fn as_json(dead: &[Record]) -> serde_json::Value {
    dead.iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "webhook": r.dest,
                "host": r.host,
                "kind": r.kind,
                "attempts": r.attempts,
                "failed_at_ms": r.due_ms,
                "queued_at_ms": r.created_ms,
                "last_error": r.last_error,
            })
        })
        .collect()
}

fn print_table(path: &Path, dead: &[Record]) {
    if dead.is_empty() {
        println!("no failed notifications (outbox {})", path.display());
        return;
    }
    println!(
        "{} failed notification(s) in {}",
        dead.len(),
        path.display()
    );
    for r in dead {
        println!(
            "{}  webhook={} host={} attempts={} failed={} error={}",
            r.id,
            r.dest,
            r.host,
            r.attempts,
            format_ms(r.due_ms),
            r.last_error.as_deref().unwrap_or("-"),
        );
    }
}
