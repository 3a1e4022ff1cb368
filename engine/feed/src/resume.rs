//! Resuming a subscription: `{"op":"subscribe", ..., "since": TIME_MS}`.
//!
//! A client that reconnects (after a `lagged` error, a network fault or an
//! engine restart) names the candle time it wants signals from. It gets,
//! in (time, id) order and filtered by its subscription:
//!
//! 1. the signals the engine's outbox holds from that time on (committed
//!    with each checkpoint, kept for `state.outbox_retention_h`), merged
//!    with
//! 2. the signals the hub kept in memory (those emitted since the last
//!    checkpoint),
//!
//! then the live ones. A live signal whose id was already sent on this
//! connection is not sent again; after an engine restart the candles
//! applied after its last checkpoint are applied again, and their signals
//! come again with the same ids: a client sees each id at most once per
//! connection, and none is missing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::hub::{FeedItem, ItemKind};
use crate::FeedState;

/// Most stored signals one `since` request is served; a client that is
/// further behind gets a `resume_truncated` error naming where to resume.
pub(crate) const MAX_RESUME: usize = 50_000;

/// What a `since` request sends before the live frames.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// In (time, id) order, already filtered by the subscription.
    pub frames: Vec<Arc<FeedItem>>,
    /// Set when [`MAX_RESUME`] was reached: the candle time to ask again
    /// from, after these frames.
    pub truncated_at: Option<i64>,
}

/// The signals from `time` on that `wants` accepts.
///
/// # Errors
/// A message for the client when the outbox cannot be read (its cause is
/// logged, not sent: it may name paths).
pub(crate) fn since(
    state: &FeedState,
    time: i64,
    wants: impl Fn(&FeedItem) -> bool,
) -> Result<Resume, &'static str> {
    let mut merged: BTreeMap<(i64, Arc<str>), Arc<FeedItem>> = BTreeMap::new();
    let mut truncated_at = None;
    if let Some(outbox) = &state.outbox {
        let stored = outbox.outbox_since(time, MAX_RESUME).map_err(|e| {
            tracing::warn!(cause = %e, "feed resume: the outbox cannot be read");
            "the signal outbox cannot be read"
        })?;
        if stored.len() == MAX_RESUME {
            truncated_at = stored.last().map(|r| r.time);
        }
        for record in stored {
            if truncated_at == Some(record.time) {
                break; // that time is served whole by the next request
            }
            if let Some(item) = item_of(record.time, &record.id, record.body) {
                merged.insert((item.time, item.id.clone()), Arc::new(item));
            }
        }
    }
    for item in state.hub.recent_since(time) {
        if truncated_at.is_some_and(|t| item.time >= t) {
            continue;
        }
        merged.entry((item.time, item.id.clone())).or_insert(item);
    }
    Ok(Resume {
        frames: merged.into_values().filter(|i| wants(i)).collect(),
        truncated_at,
    })
}

/// A stored signal as a feed item. Its id (`strategy:SYMBOL:interval:time`,
/// see `candlewick_core::signal_id`) names its strategy and symbol;
/// `None` for a record that is not one of ours.
fn item_of(time: i64, id: &str, body: Vec<u8>) -> Option<FeedItem> {
    let mut parts = id.splitn(3, ':');
    let strategy = parts.next()?;
    let symbol = parts.next()?;
    parts.next()?;
    Some(FeedItem {
        kind: ItemKind::Signal,
        symbol: symbol.to_owned(),
        strategy: strategy.into(),
        body: String::from_utf8(body).ok()?,
        ingest_ns: 0,
        time,
        id: id.into(),
    })
}

/// The ids a connection was sent by a resume, so that the same signals,
/// live again, are not sent twice.
#[derive(Debug, Default)]
pub(crate) struct Sent(HashSet<Arc<str>>);

impl Sent {
    pub(crate) fn remember(&mut self, frames: &[Arc<FeedItem>]) {
        self.0.extend(frames.iter().map(|f| f.id.clone()));
    }

    /// Whether `item` is a signal this connection has already been sent.
    pub(crate) fn already(&self, item: &FeedItem) -> bool {
        item.kind == ItemKind::Signal && !self.0.is_empty() && self.0.contains(&item.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_signal_is_named_by_its_id() {
        let item = item_of(60_000, "sma_cross:BTCUSDT:1m:60000", b"{}".to_vec()).unwrap();
        assert_eq!(
            (&*item.strategy, item.symbol.as_str()),
            ("sma_cross", "BTCUSDT")
        );
        assert_eq!(item.time, 60_000);
        assert!(item_of(1, "not-an-id", Vec::new()).is_none());
        assert!(item_of(1, "a:b:c", vec![0xff]).is_none());
    }
}
