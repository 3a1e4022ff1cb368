//! The live engine end to end, over real sockets on loopback:
//! exchange simulator (in this process) -> `candlewick run` (a child
//! process) -> feed clients (in this process).
//!
//! Nothing here asserts a duration: tests wait for counts (with a generous
//! overall limit that only turns a hang into a failure) and compare counts,
//! sets and states.

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)] // shared with tests/footprint.rs, which uses other parts
mod support;

use std::collections::{BTreeMap, BTreeSet};

use candlewick_simulator::{Faults, SimConfig, Simulator};
use support::*;

/// Every candle applied exactly once through disconnects, malformed,
/// duplicate, out-of-order and stalled frames; and the live signals equal
/// those of a straight replay of the same candles through the same plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_lose_and_double_nothing_and_live_equals_replay() {
    let (symbols, steps) = (6, 600);
    let mut sim_config = SimConfig::symbols(symbols, steps);
    sim_config.faults = Faults {
        disconnect_every: Some(700),
        malformed_every: Some(97),
        duplicate_every: Some(53),
        out_of_order_every: Some(71),
        stall_every: Some(1000),
        stall_for: std::time::Duration::from_millis(1500),
        forming: true,
    };
    let sim = Simulator::start(sim_config, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = binance_config(&sim, 4, "a-test-token-0123456789", 8192);
    let engine = Engine::start(dir.path(), &config);
    let mut client = Client::connect(engine.addr, "a-test-token-0123456789", true).await;
    client.ping().await;
    sim.play(300.0);
    client.wait_for_symbols_done(&sim).await;
    engine
        .wait_metric("candles_applied_total", (symbols * steps) as u64)
        .await;
    let m = engine.metrics().await;
    engine.terminate();

    // The simulator did inject every kind of fault, and the engine saw them.
    let s = sim.stats();
    use std::sync::atomic::Ordering::Relaxed;
    let (frames, disconnects, stalls) = (
        s.kline_frames.load(Relaxed),
        s.disconnects.load(Relaxed),
        s.stalls.load(Relaxed),
    );
    assert!(
        disconnects > 0 && stalls > 0,
        "{frames} kline frames sent, {disconnects} disconnects, {stalls} stalls"
    );
    assert!(m["reconnects_total"] > 0, "{m:?}");
    assert_eq!(m["plugin_quarantines_total"], 0, "{m:?}");
    // Every applied candle was timed through each stage of the path.
    for stage in ["queue", "apply", "strategies", "emit"] {
        let key = format!(r#"stage_latency_seconds_count{{stage="{stage}"}}"#);
        assert_eq!(m[&key], (symbols * steps) as u64, "{key}: {m:?}");
    }
    // Every signal frame the client got was timed to its write.
    let written = m[r#"stage_latency_seconds_count{stage="write"}"#];
    assert!(
        client.signal_count > 0 && written as usize >= client.signal_count,
        "{written} frames timed, {} signals received: {m:?}",
        client.signal_count
    );
    for k in [
        "frames_malformed_total",
        "frames_duplicate_total",
        "frames_out_of_order_total",
        "frames_forming_total",
    ] {
        assert!(m[k] > 0, "{k}: {m:?}");
    }

    // Exactly once: each stream's state equals a straight application of
    // every candle, once, in order.
    assert_state_is_every_candle_once(dir.path(), &sim);

    // Live == replay, and the feed's seq is gapless with no duplicate id.
    let got = client.signals();
    assert_gapless(&client.seqs);
    let ids: BTreeSet<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(ids.len(), client.signal_count, "duplicate signal ids");
    let want = reference_signals(&sim);
    assert!(!want.is_empty());
    assert_eq!(got, want);
}

/// A missing or wrong token is refused at the handshake (401); the right
/// one, as a header or a query parameter, is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_refuses_missing_and_wrong_tokens() {
    let sim = Simulator::start(SimConfig::symbols(1, 10), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        &binance_config(&sim, 4, "the-right-token-0123", 64),
    );
    let url = format!("ws://{}/v1/feed", engine.addr);
    assert_eq!(handshake_status(&url, None).await, 401);
    assert_eq!(
        handshake_status(&url, Some("the-wrong-token-0123")).await,
        401
    );
    assert_eq!(handshake_status(&url, Some("right-toke")).await, 401);
    assert_eq!(
        handshake_status(&url, Some("the-right-token-0123")).await,
        101
    );
    assert_eq!(
        handshake_status(&format!("{url}?token=the-right-token-0123"), None).await,
        101
    );
    let m = engine.metrics().await;
    assert_eq!(m["feed_refused_total"], 3);
    let log = engine.terminate();
    assert!(
        !log.contains("the-right-token-0123") && !log.contains("the-wrong-token-0123"),
        "a token was logged:\n{log}"
    );
}

/// A client that stops reading gets `lagged` (and loses only what it did
/// not read), while a healthy client receives every frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_client_lags_while_a_healthy_one_gets_everything() {
    let (symbols, steps) = (40, 1500);
    let sim = Simulator::start(SimConfig::symbols(symbols, steps), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(
        dir.path(),
        &binance_config(&sim, 64, "a-test-token-0123456789", 4096),
    );
    let mut healthy = Client::connect(engine.addr, "a-test-token-0123456789", true).await;
    let mut stalled = Client::connect_small_buffer(engine.addr, "a-test-token-0123456789").await;
    // Both subscribed (ping answered) before anything is published.
    healthy.ping().await;
    stalled.ping().await;
    // 12,000 candle frames/s: a client that reads keeps up; one that does
    // not overflows its 4,096 frames of slack within a second.
    sim.play(300.0);
    healthy.wait_for_symbols_done(&sim).await;
    let total = healthy.seqs.len() as u64;
    assert_eq!(healthy.dropped, 0, "the healthy client lagged");
    assert_eq!(healthy.candle_count, symbols * steps);
    assert_gapless(&healthy.seqs);

    // Now the stalled client reads: it was told what it lost, and what it
    // got plus what it lost is everything.
    stalled
        .read_until(|c| c.seqs.len() as u64 + c.dropped >= total)
        .await;
    assert!(stalled.lagged_errors > 0 && stalled.dropped > 0);
    assert_eq!(stalled.seqs.len() as u64 + stalled.dropped, total);
    assert_gapless(&stalled.seqs);
    let m = engine.metrics().await;
    assert!(m["feed_lag_dropped_total"] >= stalled.dropped);
    engine.terminate();
}

/// kill -9 at random points of a live run, again and again, each restart
/// on the same state, with a client that resumes with `since` after each:
/// the final state is every candle once; the client gets every signal a
/// straight replay gives (same ids, actions and strengths), none missing,
/// each id at most once per connection; a signal repeated across
/// connections (its candle was applied after the last checkpoint, and
/// again after the restart) has the same content.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_at_random_points_then_resume_with_since_loses_nothing() {
    let kills: usize = std::env::var("CANDLEWICK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (symbols, steps) = (4, 40 * (kills + 2));
    let sim = Simulator::start(SimConfig::symbols(symbols, steps), 0)
        .await
        .unwrap();
    let names = sim.config().symbols.clone();
    let dir = tempfile::tempdir().unwrap();
    // A short checkpoint interval, so that kills land both before and
    // after checkpoints.
    let config = binance_config(&sim, 4, "a-test-token-0123456789", 8192).replace(
        "tail_bars = 64",
        "tail_bars = 64\ncheckpoint_interval_ms = 50",
    );
    let mut next = kill_points();

    let mut got: BTreeMap<String, String> = BTreeMap::new();
    let mut since = None;
    for k in 0..kills {
        let engine = Engine::start(dir.path(), &config);
        let mut client =
            Client::connect_since(engine.addr, "a-test-token-0123456789", false, since).await;
        client.ping().await;
        sim.play_to(2000.0, 40 * (k + 1));
        // Somewhere between the first candle applied and well after the
        // last one of this step.
        engine
            .wait_metric_at_least("candles_applied_total", 1)
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(next(120))).await;
        client.drain_now().await;
        engine.kill9();
        record_signals(&client, &mut got);
        since = client.resume_point(&names).or(since);
    }
    let last = Engine::start(dir.path(), &config);
    let mut client = Client::connect_since(last.addr, "a-test-token-0123456789", true, since).await;
    client.ping().await;
    sim.play(2000.0);
    client.wait_for_symbols_done(&sim).await;
    client.drain_now().await;
    let log = last.terminate();
    assert!(log.contains("resuming after the candle of"), "{log}");
    record_signals(&client, &mut got);

    assert_state_is_every_candle_once(dir.path(), &sim);
    let want = reference_signals(&sim);
    let missing: Vec<_> = want.keys().filter(|id| !got.contains_key(*id)).collect();
    assert!(missing.is_empty(), "signals never delivered: {missing:?}");
    assert_eq!(got, want, "the delivered signals are not the replay's");
}
