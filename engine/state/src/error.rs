//! What can go wrong when opening, loading, applying or committing state.

use std::path::PathBuf;

use candlewick_indicators::SpecError;

use crate::StreamKey;

/// An error of the state store.
///
/// Every message names what it concerns (the database path or the stream)
/// and, where there is one, what the operator should do. Nothing here is
/// ever resolved by silently discarding state: a refusal leaves the
/// database exactly as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// RocksDB itself failed (I/O, permissions, a lock held by another
    /// process, a damaged file).
    #[error(
        "state database {}: {source}; check the path, its permissions and free disk, \
         and that no other Candlewick process holds it open",
        path.display()
    )]
    Rocks {
        path: PathBuf,
        source: rocksdb::Error,
    },

    /// The database was written by a build with another schema version.
    #[error(
        "state database {} has schema version {found}, this build reads version {expected}: \
         move it aside (and replay from the source) or migrate it",
        path.display()
    )]
    SchemaMismatch {
        found: u32,
        expected: u32,
        path: PathBuf,
    },

    /// The database holds data but no schema version: it was not written
    /// by Candlewick, or its meta record was lost.
    #[error(
        "state database {} holds data but no schema version (not a Candlewick state database, \
         or its meta record was lost): move it aside or migrate it",
        path.display()
    )]
    Unversioned { path: PathBuf },

    /// The schema version record exists but cannot be read.
    #[error(
        "state database {}: the schema version record is unreadable ({len} bytes, expected 4): \
         the database is damaged; move it aside and replay from the source",
        path.display()
    )]
    CorruptMeta { path: PathBuf, len: usize },

    /// A column family the store relies on is missing after open.
    #[error(
        "state database {}: column family {name:?} is missing after open; \
         the database is damaged: move it aside",
        path.display()
    )]
    MissingColumnFamily { path: PathBuf, name: &'static str },

    /// A stored record of a stream cannot be decoded, or its records
    /// disagree with each other.
    #[error(
        "stream {stream}: the {cf} record is corrupt ({detail}); \
         restore a backup, or delete the stream's state and replay it from the source"
    )]
    Corrupt {
        stream: StreamKey,
        cf: &'static str,
        detail: String,
    },

    /// The checkpoint writer has stopped after a failed commit (its own
    /// error was reported first); nothing more is applied.
    #[error(
        "the checkpoint writer has stopped after a failed commit (see the error before this one)"
    )]
    WriterStopped,

    /// An outbox record's key does not decode (it was not written by this
    /// store).
    #[error(
        "state database {}: an outbox record has a malformed key ({len} bytes); \
         the outbox is damaged: delete the state database's outbox or move the database aside",
        path.display()
    )]
    CorruptOutbox { path: PathBuf, len: usize },

    /// The stored indicator set was built from another spec than the one
    /// asked for. The state is not recomputed behind the operator's back.
    #[error(
        "stream {stream}: stored indicator state was built for spec {stored:?}, \
         but {requested:?} was requested; restore the old spec, or delete the stream's \
         state and replay history to rebuild it"
    )]
    SpecChanged {
        stream: StreamKey,
        stored: String,
        requested: String,
    },

    /// The requested spec does not parse.
    #[error("stream {stream}: {source}")]
    Spec {
        stream: StreamKey,
        source: SpecError,
    },

    /// A candle at or before the last applied one was offered again
    /// (a duplicate, or a replay after restart). Nothing was changed.
    #[error(
        "stream {stream}: candle {time} is not after the last applied candle {last}; \
         it was already applied (duplicate or replay) and is refused"
    )]
    AlreadyApplied {
        stream: StreamKey,
        time: i64,
        last: i64,
    },

    /// The output slice passed to [`crate::StreamState::apply`] has the
    /// wrong length. Nothing was changed.
    #[error(
        "stream {stream}: output slice has {found} slots, the indicator set writes {expected}"
    )]
    OutputWidth {
        stream: StreamKey,
        expected: usize,
        found: usize,
    },

    /// The indicator state could not be serialised.
    #[error("stream {stream}: cannot encode indicator state: {source}")]
    Encode {
        stream: StreamKey,
        source: postcard::Error,
    },

    /// A set of shared stream records (a cluster partition's state, see
    /// [`crate::decode_records`]) is not in a layout this build reads.
    #[error("shared stream records: {detail}")]
    Records { detail: String },

    /// The shared copy of a checkpoint could not be written (the cluster's
    /// bucket): the checkpoint is not durable for the cluster, so nothing
    /// it covers is acknowledged.
    #[error("shared state {what}: {detail}")]
    Shared { what: String, detail: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_small_enough_to_return_by_value() {
        assert!(std::mem::size_of::<StateError>() <= 128);
    }

    #[test]
    fn messages_name_the_stream_and_the_way_out() {
        let stream: StreamKey = "BTCUSDT/1m".parse().unwrap();
        let e = StateError::SchemaMismatch {
            found: 2,
            expected: 1,
            path: "/var/cw".into(),
        };
        let text = e.to_string();
        assert!(
            text.contains("/var/cw") && text.contains("move it aside"),
            "{text}"
        );
        let e = StateError::AlreadyApplied {
            stream,
            time: 5,
            last: 7,
        };
        assert!(
            e.to_string().starts_with("stream BTCUSDT/1m: candle 5"),
            "{e}"
        );
    }
}
