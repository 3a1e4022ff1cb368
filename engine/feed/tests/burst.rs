//! A burst of frames reaches a client whole, in order, in few socket
//! writes.

mod support;

use std::sync::atomic::Ordering::Relaxed;

use candlewick_feed::FeedConfig;
use support::{next_text, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_goes_out_in_order_and_shares_socket_writes() {
    let s = start(FeedConfig::default()).await;
    let mut ws = s.client().await;
    let before = s.metrics.counters.feed_writes.load(Relaxed);
    // A thousand candles closing at once, as a shard emits them: faster
    // than a client task can write frames one by one.
    const BURST: i64 = 1000;
    for i in 0..BURST {
        s.publish(i * 60_000);
    }
    for i in 0..BURST {
        let frame: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        assert_eq!(frame["type"], "candle", "{frame}");
        assert_eq!(frame["seq"], i + 1, "gapless seq: {frame}");
        assert_eq!(frame["time"], i * 60_000, "in order: {frame}");
    }
    let writes = s.metrics.counters.feed_writes.load(Relaxed) - before;
    let frames = s.metrics.counters.feed_frames_out.load(Relaxed);
    assert_eq!(frames, BURST as u64);
    // One write per frame without coalescing; up to 32 frames a write
    // with it. A quarter leaves room for a client task that wakes while
    // the burst is still being published.
    assert!(
        writes * 4 <= frames,
        "{writes} socket writes for {frames} frames"
    );
}
