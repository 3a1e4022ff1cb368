//! The signal outbox as its readers see it: the feed serves `since`
//! resumes from it without knowing how it is stored (RocksDB, in
//! `candlewick_state`).

/// One emitted signal as the outbox keeps it: its candle's open time, its
/// deterministic id, and its body as the feed sends it (opaque here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub time: i64,
    pub id: String,
    pub body: Vec<u8>,
}

/// Where the signals committed with each checkpoint can be read back.
pub trait SignalOutbox: Send + Sync {
    /// Committed outbox records of candles that opened at or after `time`,
    /// oldest first, at most `limit`.
    ///
    /// # Errors
    /// The store cannot be read; the cause may name paths, so it is for the
    /// log, not for a client.
    fn outbox_since(
        &self,
        time: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, Box<dyn std::error::Error + Send + Sync>>;
}
