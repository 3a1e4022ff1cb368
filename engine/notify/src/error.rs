//! What can go wrong setting up or running the notifier.

use std::path::PathBuf;

/// An error of the notifier. Messages name the webhook (by its `name`), the
/// file or the variable concerned, never a secret and never a webhook's
/// full URL (its path may itself be a credential).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A signing secret could not be read or is unfit.
    #[error("webhook secret from {origin}: {reason}")]
    Secret { origin: String, reason: String },

    /// A webhook URL fails the checks (scheme, credentials, host).
    #[error("webhook {name}: url refused: {reason}")]
    Url { name: String, reason: String },

    /// A setting is out of its range.
    #[error("notify: {field} {reason}")]
    Config { field: String, reason: String },

    /// The HTTP client could not be built (TLS setup).
    #[error("webhook {name}: cannot build the HTTP client: {reason}")]
    Client { name: String, reason: String },

    /// A delivery loop ended without being asked to (a panic): the
    /// supervisor restarts the notifier; the outbox keeps every record.
    #[error("notification delivery stopped: {0}")]
    Delivery(String),

    /// RocksDB failed under the outbox.
    #[error(
        "notification outbox {}: {source}; check the path, its permissions and free disk, \
         and that no other Candlewick process holds it open",
        path.display()
    )]
    Rocks {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// The outbox holds something this build did not write.
    #[error("notification outbox {}: {detail}; move the directory aside", path.display())]
    Corrupt { path: PathBuf, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_small_enough_to_return_by_value() {
        assert!(std::mem::size_of::<NotifyError>() <= 128);
    }
}
