//! A subscribe flood with fresh names leaves the engine's memory flat.
//! Alone in its test binary: it reads this process's resident size.

mod support;

use candlewick_feed::FeedConfig;
use futures_util::SinkExt;
use support::{next_text, start};
use tokio_tungstenite::tungstenite::Message;

/// Resident set size of this process, bytes (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribes_with_fresh_names_leave_memory_flat() {
    let Some(_) = rss() else {
        eprintln!("no /proc/self/statm: skipped");
        return;
    };
    let s = start(FeedConfig {
        // The rate limit is its own test; here the name checks alone.
        ops_per_second: 1e9,
        ops_burst: u32::MAX,
        ..FeedConfig::default()
    })
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(s.url()).await.unwrap();
    // Each message names 100 fresh symbols and strategies of ~60 bytes:
    // 10k of them would hold well over 100 MiB if kept.
    let message = |i: usize| {
        let names: Vec<String> = (0..100)
            .map(|j| format!("FRESH{i:06}X{j:03}{}", "Z".repeat(48)))
            .collect();
        serde_json::json!({"op": "subscribe", "symbols": names, "strategies": names}).to_string()
    };
    // Warm up allocator and buffers before the baseline.
    for i in 0..200 {
        ws.send(Message::Text(message(i).into())).await.unwrap();
        assert!(next_text(&mut ws).await.contains("unknown_symbol"));
    }
    let baseline = rss().unwrap();
    for i in 200..10_200 {
        ws.send(Message::Text(message(i).into())).await.unwrap();
        let reply = next_text(&mut ws).await;
        assert!(reply.contains("unknown_symbol"), "{reply}");
    }
    let grown = rss().unwrap().saturating_sub(baseline);
    assert!(
        grown < 16 << 20,
        "resident memory grew by {} KiB over 10k subscribes",
        grown >> 10
    );
}
