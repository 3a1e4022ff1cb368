//! # Notifications: signed webhooks that lose nothing
//!
//! The engine tells webhooks about signals (filtered by strategy, symbol,
//! action and strength), plugin quarantines, its own start and stop, and
//! its health: a task down for long, its recovery, feed clients behind
//! ([`watch`]).
//!
//! ```text
//! worker ──try_send──▶ [bounded channel] ──▶ intake ──▶ outbox (RocksDB) ──▶ one loop per webhook ──POST──▶ receiver
//! (never waits;          full: counted,        one write       pending, by due time      rate limit, retries,
//!  filters first)         logged 1/s)          per batch        dead letters              backoff + jitter
//! ```
//!
//! - **Off the hot path.** A worker's only cost is the filter check and,
//!   for a wanted signal, building its notification and one `try_send`
//!   ([`Notifier::try_notify`]). A full channel drops and counts
//!   (`candlewick_notify_dropped_channel_full_total`); it never waits.
//! - **Nothing lost once handed off.** The [`Service`] writes each
//!   notification to the [`Outbox`] before any attempt; a record leaves it
//!   only on a 2xx or, after `max_attempts`, for the dead letters
//!   (`candlewick notify list-failed`). A restart resumes from the outbox.
//! - **At-least-once.** A receiver may see a notification more than once
//!   (a crash between its 2xx and our delete, a timeout after it acted);
//!   each request carries `Idempotency-Key: ID` with the notification's
//!   deterministic id, the same on every retry: dedupe on it.
//! - **Signed.** `X-Candlewick-Signature: sha256=HMAC(secret, "T.BODY")`
//!   with `X-Candlewick-Timestamp: T`; receivers check both with
//!   [`webhook::verify`]. The secret is a [`Secret`], which never prints.
//! - **Chat presets.** A webhook with a [`Preset`] (Slack, Discord, a
//!   Telegram bot) gets a readable one-line message instead of the JSON;
//!   the outbox, retries and dead letters are the same.
//! - **Email.** A destination whose URL is `smtp://` (STARTTLS required
//!   beyond loopback) or `smtps://` sends one plain-text message per
//!   notification ([`email`]), through the same outbox and retries.
#![forbid(unsafe_code)]

mod delivery;
pub mod email;
mod error;
mod event;
mod filter;
mod limits;
mod notifier;
mod outbox;
mod preset;
mod secret;
mod sink;
mod stats;
pub mod watch;
pub mod webhook;

use std::path::Path;
use std::sync::Arc;

pub use delivery::{bounds, is_name, Service};
pub use email::EmailConfig;
pub use error::NotifyError;
pub use event::{Kind, Notification};
pub use filter::Filter;
pub use limits::{jitter, Retry};
pub use notifier::{channel, redact_url, Inbox, Notifier, NotifyConfig, WebhookConfig};
pub use outbox::{Outbox, Record, OUTBOX_VERSION};
pub use preset::{text as notification_text, Preset};
pub use secret::{Secret, MIN_SECRET_BYTES};
pub use sink::{NotifySink, NotifyTap};
pub use stats::Stats;

/// The outbox's directory inside the engine's state directory.
pub const OUTBOX_DIR: &str = "notify";

/// Opens the outbox at `outbox_path` and builds the notifier for `config`:
/// the engine's [`Notifier`] and the [`Service`] to run (under the
/// engine's supervisor).
///
/// # Errors
/// As [`Outbox::open`] and [`Service::new`].
pub fn start(
    config: &NotifyConfig,
    outbox_path: &Path,
    sync: bool,
) -> Result<(Notifier, Arc<Service>), NotifyError> {
    let outbox = Arc::new(Outbox::open(outbox_path, sync)?);
    let stats = Arc::new(Stats::default());
    let (notifier, inbox) = channel(config, stats.clone());
    let service = Service::new(config, outbox, inbox, stats)?;
    Ok((notifier, Arc::new(service)))
}
