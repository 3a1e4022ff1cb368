//! The shared REST client against the loopback exchange: paging, the
//! weight budget and scripted refusals.

use std::time::Duration;

use candlewick_ingest::binance::{KlinePager, RestClient, RestOptions};
use candlewick_market::{Candle, Interval};
use candlewick_simulator::{RestFault, SimConfig, Simulator};

/// 2023-11-14 22:13:00 UTC: on the 1m grid.
const START: i64 = 1_699_999_980_000;

async fn exchange(steps: usize, edit: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut config = SimConfig::symbols(1, steps);
    config.start_ms = START;
    edit(&mut config);
    let sim = Simulator::start(config, 0).await.expect("simulator binds");
    sim.publish(steps);
    sim
}

fn client(sim: &Simulator, options: RestOptions) -> RestClient {
    let base = url::Url::parse(&sim.rest_url()).unwrap();
    RestClient::new(&base, options).unwrap()
}

async fn fetch_all(client: &mut RestClient, steps: usize) -> Vec<Candle> {
    let end = START + 60_000 * steps as i64;
    let mut pager = KlinePager::new("S0000USDT", Interval::M1, START, end).on_grid();
    let mut out = Vec::new();
    while let Some(page) = pager.next_page(client).await.unwrap() {
        out.extend(page.iter().map(|k| k.candle));
    }
    out
}

#[tokio::test]
async fn pages_through_a_range_exactly() {
    let sim = exchange(2_345, |_| {}).await;
    let mut client = client(&sim, RestOptions::default());
    let candles = fetch_all(&mut client, 2_345).await;
    assert_eq!(candles, sim.candles(0));
    assert_eq!(client.stats().requests, 3, "1000 + 1000 + 345");
}

/// With a budget equal to the exchange's limit, the client pauses for the
/// next window instead of earning a 429 (which it would wait out, so the
/// candles alone would not show it). The window is short here; the
/// exchange counts it on the same clock.
#[tokio::test]
async fn keeps_under_the_weight_limit_without_being_told() {
    let steps = 12_000; // 12 requests of weight 2
    let sim = exchange(steps, |c| {
        c.weight_limit = 8;
        c.weight_window = Duration::from_millis(400);
    })
    .await;
    let mut client = client(
        &sim,
        RestOptions {
            weight_budget: 8,
            weight_window: Duration::from_millis(400),
            ..RestOptions::default()
        },
    );
    let candles = fetch_all(&mut client, steps).await;
    assert_eq!(candles, sim.candles(0));
    let stats = sim.stats();
    assert_eq!(
        stats
            .rate_limited
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "never refused"
    );
    assert!(
        stats.max_weight.load(std::sync::atomic::Ordering::Relaxed) <= 8,
        "never over the limit"
    );
}

#[tokio::test]
async fn waits_out_429_and_418_and_retries_failures() {
    let sim = exchange(2_500, |_| {}).await;
    sim.rest_fault_at(
        2,
        RestFault::Status {
            code: 429,
            retry_after_s: Some(1),
        },
    );
    sim.rest_fault_at(
        3,
        RestFault::Status {
            code: 418,
            retry_after_s: Some(1),
        },
    );
    sim.rest_fault_at(4, RestFault::Drop);
    sim.rest_fault_at(
        5,
        RestFault::Status {
            code: 500,
            retry_after_s: None,
        },
    );
    let mut client = client(&sim, RestOptions::default());
    let candles = fetch_all(&mut client, 2_500).await;
    assert_eq!(candles, sim.candles(0));
    let stats = client.stats();
    assert_eq!((stats.rate_limited, stats.retried), (2, 2), "{stats:?}");
    assert_eq!(stats.requests, 3 + 4);
}

#[tokio::test]
async fn refuses_a_ban_longer_than_allowed_and_an_unknown_symbol() {
    let sim = exchange(10, |_| {}).await;
    sim.rest_fault_at(
        1,
        RestFault::Status {
            code: 418,
            retry_after_s: Some(3_600),
        },
    );
    let mut client = client(&sim, RestOptions::default());
    let e = client
        .klines("S0000USDT", Interval::M1, START, START + 600_000)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 418") && e.contains("3600 s"), "{e}");
    let e = client
        .klines("NOPE", Interval::M1, START, START + 600_000)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Invalid symbol."), "{e}");
}
