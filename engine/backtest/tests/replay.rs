//! Backtests through the live pipeline ([`Replay`]) on real data: the same
//! trades whatever the batch size and the number of workers and symbols,
//! and a strategy fault fails the run instead of skipping bars.

mod support;

use candlewick_backtest::{RunError, RunResult};
use candlewick_market::Candle;
use candlewick_plugins::{LoadedModule, PluginHost};
use support::{eurusd, host, module, options, replay, run_one, series};

/// `bars` alone, on one worker: the baseline the other layouts must match.
fn alone(host: &PluginHost, module: &LoadedModule, bars: &[Candle]) -> RunResult {
    run_one(host, module, &[], options(), bars).expect("runs")
}

fn assert_same(a: &RunResult, b: &RunResult) {
    assert_eq!(a.trades, b.trades);
    assert_eq!(a.curve.len(), b.curve.len());
    assert_eq!(
        a.stats.equity_final.to_bits(),
        b.stats.equity_final.to_bits()
    );
}

#[test]
fn the_batch_size_changes_no_trade() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let bars = eurusd();
    let expected = alone(&host, &sma, &bars);
    assert!(
        expected.trades.len() > 100,
        "a real test: {} trades",
        expected.trades.len()
    );
    // One bar per strategy call, an odd size, and the default (1024).
    for batch in [1, 7] {
        let mut options = options();
        options.batch = batch;
        let got = run_one(&host, &sma, &[], options, &bars).expect("runs");
        assert_same(&got, &expected);
    }
}

#[test]
fn many_symbols_on_many_workers_each_match_their_own_run() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let bars = eurusd();
    // Four different series: the data cut at four places.
    let cuts: Vec<&[Candle]> = [0, 700, 1400, 2100]
        .iter()
        .map(|&s| &bars[s..s + 2900])
        .collect();
    let expected: Vec<RunResult> = cuts.iter().map(|b| alone(&host, &sma, b)).collect();
    for workers in [1, 3] {
        let inputs = cuts
            .iter()
            .enumerate()
            .map(|(i, b)| series(&format!("S{i}"), b))
            .collect();
        let routed = std::sync::atomic::AtomicU64::new(0);
        let got = replay(&host, &sma, &[], options(), workers)
            .run(inputs, &|n| {
                routed.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            })
            .expect("runs");
        assert_eq!(
            routed.into_inner(),
            4 * 2900,
            "progress counts every candle"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert_same(g.as_ref().expect("series runs"), e);
        }
    }
}

#[test]
fn a_bad_series_fails_alone_and_the_others_run() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let bars = eurusd();
    let mut broken = bars[..1500].to_vec();
    broken[1200].open_time = broken[1199].open_time; // a duplicate
    let got = replay(&host, &sma, &[], options(), 2)
        .run(
            vec![
                series("GOOD", &bars),
                series("BAD", &broken),
                series("SHORT", &bars[..1]),
            ],
            &|_| {},
        )
        .expect("the run itself works");
    assert_same(
        got[0].as_ref().expect("good runs"),
        &alone(&host, &sma, &bars),
    );
    match &got[1] {
        Err(RunError::Series(e)) => assert!(e.to_string().contains("bar 1200"), "{e}"),
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    assert!(matches!(got[2], Err(RunError::TooShort(1))), "{:?}", got[2]);
}

#[test]
fn a_strategy_fault_fails_the_run_instead_of_skipping_bars() {
    let host = host();
    let hostile = module(&host, "hostile");
    let bars = eurusd();
    let from = bars[1000].open_time.to_string();
    let until = bars[1001].open_time.to_string();
    // Mode 3 panics (a trap) on one bar; live, that is a quarantine and
    // skipped bars; in a backtest it must be an error.
    let params = [
        ("mode", "3"),
        ("from_time", from.as_str()),
        ("until_time", until.as_str()),
    ];
    let err = replay(&host, &hostile, &params, options(), 1)
        .run(vec![series("EURUSD", &bars)], &|_| {})
        .expect_err("a faulting strategy fails the run");
    assert!(err.to_string().contains("faulted"), "{err}");
}
