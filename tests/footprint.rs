//! Memory with the load: 1,000 symbols, 3 strategies (3,000 plugin
//! instances) and 100 feed clients, measured on the engine process as its
//! anonymous resident set (what the engine allocates; the mapped binary is
//! left out because a debug build's is several times a release build's).
//! Flat means: over the second half it grows by no more than the memtables
//! and the dashboard's ring may fill, plus 1/16. A heavy variant at 10,000
//! symbols (ignored; `scripts/test --heavy`) reports the bytes per stream and
//! per plugin instance.

// Its own test binary, so the other live tests do not run beside it and
// add their load (and their quarantines) to what it measures.
#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)] // this binary uses part of the live tests' support
#[path = "live/support.rs"]
mod support;

use std::time::Duration;

use candlewick_simulator::{SimConfig, Simulator};

use support::*;

const SYMBOLS: usize = 1000;
const STEPS: usize = 60;
const CLIENTS: usize = 100;
/// The bound on the resident set at 1,000 symbols.
const LIMIT: u64 = 200 << 20;
/// What RocksDB's memtables may fill up to before they flush
/// (`candlewick_state`'s budget): growth up to it is not a leak.
const MEMTABLES: u64 = 16 << 20;
/// The example strategies beside `sma_cross` (which every config has).
const MORE_STRATEGIES: [&str; 2] = ["rsi_reversion", "bollinger_breakout"];
const TOKEN: &str = "a-test-token-0123456789";

fn example(name: &str) -> String {
    sma_cross_wasm()
        .with_file_name(format!("{name}.wasm"))
        .display()
        .to_string()
}

/// What one engine run measured.
struct Footprint {
    /// Anonymous resident set after half the candles, and after all.
    half: u64,
    full: u64,
    emitted: u64,
}

/// Runs `symbols` streams with `sma_cross` and `extra` more example
/// strategies and [`CLIENTS`] feed clients through [`STEPS`] candles each;
/// checks that no client lost a signal silently. Each wait may take up to
/// `patience`.
async fn footprint(symbols: usize, extra: &[&str], patience: Duration) -> Footprint {
    let mut sim_config = SimConfig::symbols(symbols, STEPS);
    // Each symbol's REST backfill costs weight: room for all of them.
    sim_config.weight_limit = sim_config.weight_limit.max(symbols as u32 * 20);
    let sim = Simulator::start(sim_config, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = binance_config(&sim, 1024, TOKEN, 4096);
    for name in extra {
        config.push_str(&format!(
            "\n[[strategies]]\nwasm = {:?}\ndeadline_ms = 250.0\n",
            example(name)
        ));
    }
    let engine = Engine::start(dir.path(), &config).with_patience(patience);
    let mut readers = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut client = Client::connect(engine.addr, TOKEN, false).await;
        client.ping().await;
        readers.push(tokio::spawn(client.read_to_end()));
    }

    // Half the data, then all of it: the second half must not grow the
    // resident set beyond noise (nothing accumulates per candle).
    sim.play_to(20.0, STEPS / 2);
    engine
        .wait_metric("candles_applied_total", (symbols * STEPS / 2) as u64)
        .await;
    let half = engine.resident("RssAnon");
    sim.play(20.0);
    engine
        .wait_metric("candles_applied_total", (symbols * STEPS) as u64)
        .await;
    let full = engine.resident("RssAnon");
    let m = engine.metrics().await;
    eprintln!(
        "{symbols} symbols x {} strategies: engine anonymous resident set {} MiB after half \
         the candles, {} MiB after all (VmRSS with the mapped binary: {} MiB); {} signals",
        1 + extra.len(),
        half >> 20,
        full >> 20,
        engine.resident("VmRSS") >> 20,
        m["signals_emitted_total"]
    );
    engine.terminate();
    // A client on this busy test machine may fall behind and be told so
    // (`lagged`, with the number of frames it missed, an upper bound: the
    // ring holds every client's frames); none may lose a signal silently.
    let emitted = m["signals_emitted_total"];
    for r in readers {
        let client = r.await.unwrap();
        let got = client.signal_count as u64;
        assert!(got <= emitted, "{got} > {emitted}");
        assert!(
            got + client.dropped >= emitted,
            "a client got {got} of {emitted} signals and was told of {} missed frames",
            client.dropped
        );
    }
    // (A quarantine on a loaded machine would not change what is measured:
    // the instance is re-made in place.)
    assert!(emitted > 0, "{m:?}");
    Footprint {
        half,
        full,
        emitted,
    }
}

/// Growth over the second half within what bounded buffers may fill: the
/// memtables and the dashboard's per-stream candle ring (at most
/// `candlewick_feed::HISTORY_BARS` candles a stream, about 64 bytes each).
fn assert_flat(f: &Footprint, symbols: usize) {
    let ring = (symbols * candlewick_feed::HISTORY_BARS * 64) as u64;
    assert!(
        f.full < f.half + MEMTABLES + ring + (f.half >> 4),
        "grew from {} to {} MiB over the second half",
        f.half >> 20,
        f.full >> 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_symbols_three_strategies_and_a_hundred_clients_stay_under_200_mb() {
    let f = footprint(SYMBOLS, &MORE_STRATEGIES, Duration::from_secs(180)).await;
    assert!(
        f.full < LIMIT,
        "anonymous resident set {} MiB",
        f.full >> 20
    );
    assert_flat(&f, SYMBOLS);
}

/// The scale (10,000 streams x 3 strategies x 100 clients), run by
/// `scripts/test --heavy`: minutes and about 2 GB. Measures the engine with
/// one strategy and with three, so that the difference gives the cost of a
/// plugin instance and the rest the cost of a stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "heavy: run by scripts/test --heavy"]
async fn ten_thousand_symbols_three_strategies_and_a_hundred_clients() {
    const N: usize = 10_000;
    // The engine's start backfills every stream over REST, one request
    // (weight 2) each, within its default budget of 4,800 a minute: about
    // four minutes at 10,000 streams before the first live candle.
    let patience = Duration::from_secs(900);
    let one = footprint(N, &[], patience).await;
    let three = footprint(N, &MORE_STRATEGIES, patience).await;
    let per_instance = three.full.saturating_sub(one.full) / (2 * N as u64);
    let per_stream = one.full.saturating_sub(per_instance * N as u64) / N as u64;
    eprintln!(
        "{N} streams: {} MiB with 1 strategy, {} MiB with 3 ({} signals); \
         about {per_instance} bytes per plugin instance and {per_stream} bytes per stream \
         (its indicators, buffers and share of the engine's fixed cost)",
        one.full >> 20,
        three.full >> 20,
        three.emitted
    );
    assert_flat(&one, N);
    assert_flat(&three, N);
    // More instances cost more memory: the split above measures something.
    assert!(three.full > one.full, "{} <= {}", three.full, one.full);
}
