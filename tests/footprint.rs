//! Memory with the load: 1,000 symbols, 3 strategies (3,000 plugin
//! instances) and 100 feed clients, measured on the engine process as its
//! anonymous resident set (what the engine allocates; the mapped binary is
//! left out because a debug build's is several times a release build's).
//! Flat means: over the second half it grows by no more than the memtables
//! may fill, plus 1/16.

// Its own test binary, so the other live tests do not run beside it and
// add their load (and their quarantines) to what it measures.
#[allow(dead_code)] // this binary uses part of the live tests' support
#[path = "live/support.rs"]
mod support;

use candlewick_simulator::{SimConfig, Simulator};

use support::*;

const SYMBOLS: usize = 1000;
const STEPS: usize = 60;
const CLIENTS: usize = 100;
/// The bound on the resident set.
const LIMIT: u64 = 200 << 20;
/// What RocksDB's memtables may fill up to before they flush
/// (`candlewick_state`'s budget): growth up to it is not a leak.
const MEMTABLES: u64 = 16 << 20;
/// What the dashboard's per-stream candle ring (at most
/// `candlewick_feed::HISTORY_BARS` candles a stream, about 64 bytes each)
/// may fill up to: bounded growth, not a leak.
const DASHBOARD_RING: u64 = (SYMBOLS * candlewick_feed::HISTORY_BARS * 64) as u64;

fn example(name: &str) -> String {
    sma_cross_wasm()
        .with_file_name(format!("{name}.wasm"))
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_symbols_three_strategies_and_a_hundred_clients_stay_under_200_mb() {
    let sim = Simulator::start(SimConfig::symbols(SYMBOLS, STEPS), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = binance_config(&sim, 1024, "a-test-token-0123456789", 4096);
    for name in ["rsi_reversion", "bollinger_breakout"] {
        config.push_str(&format!(
            "\n[[strategies]]\nwasm = {:?}\ndeadline_ms = 250.0\n",
            example(name)
        ));
    }
    let engine = Engine::start(dir.path(), &config);
    let mut readers = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut client = Client::connect(engine.addr, "a-test-token-0123456789", false).await;
        client.ping().await;
        readers.push(tokio::spawn(client.read_to_end()));
    }

    // Half the data, then all of it: the second half must not grow the
    // resident set beyond noise (nothing accumulates per candle).
    sim.play_to(20.0, STEPS / 2);
    engine
        .wait_metric("candles_applied_total", (SYMBOLS * STEPS / 2) as u64)
        .await;
    let half = engine.resident("RssAnon");
    sim.play(20.0);
    engine
        .wait_metric("candles_applied_total", (SYMBOLS * STEPS) as u64)
        .await;
    let full = engine.resident("RssAnon");
    let m = engine.metrics().await;
    eprintln!(
        "engine anonymous resident set: {} MiB after half the candles, {} MiB after all \
         (VmRSS with the mapped binary: {} MiB); {} signals emitted",
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
    assert!(full < LIMIT, "anonymous resident set {} MiB", full >> 20);
    assert!(
        full < half + MEMTABLES + DASHBOARD_RING + (half >> 4),
        "grew from {} to {} MiB over the second half",
        half >> 20,
        full >> 20
    );
}
