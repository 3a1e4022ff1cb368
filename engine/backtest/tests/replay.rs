//! Backtests through the live pipeline ([`Replay`]) on real data: the same
//! trades as the direct loop, whatever the number of workers and symbols,
//! and a strategy fault fails the run instead of skipping bars.

use std::path::PathBuf;

use candlewick_backtest::{
    backtest_limits, run, PluginSource, Replay, ReplaySeries, RunError, RunOptions, RunResult,
};
use candlewick_market::{Candle, CsvReader, Symbol};
use candlewick_pipeline::Strategy;
use candlewick_plugins::{HostConfig, LoadedModule, PluginHost};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn eurusd() -> Vec<Candle> {
    CsvReader::open(&root().join("data/EURUSD-1h.csv"))
        .expect("data")
        .collect::<Result<_, _>>()
        .expect("valid data")
}

fn host() -> PluginHost {
    PluginHost::new(HostConfig {
        limits: backtest_limits(),
        ..HostConfig::default()
    })
    .expect("host")
}

fn module(host: &PluginHost, name: &str) -> LoadedModule {
    let dir = candlewick_plugins::testing::build_plugins(&root()).unwrap_or_else(|e| panic!("{e}"));
    host.load_file(&dir.join(format!("{name}.wasm")))
        .expect("module")
}

fn options() -> RunOptions {
    let mut options = RunOptions::default();
    options.broker.lot_size = Some(1.0);
    options
}

fn replay<'a>(
    host: &'a PluginHost,
    module: &LoadedModule,
    params: &[(&str, &str)],
    workers: usize,
) -> Replay<'a> {
    Replay {
        host,
        strategy: Strategy {
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            limits: backtest_limits(),
            ..Strategy::new(module.clone())
        },
        options: options(),
        workers,
    }
}

fn series<'a>(symbol: &str, bars: &'a [Candle]) -> ReplaySeries<'a> {
    ReplaySeries {
        symbol: Symbol::new(symbol).expect("symbol"),
        candles: Box::new(bars.iter().copied().map(Ok)),
    }
}

fn direct(host: &PluginHost, module: &LoadedModule, bars: &[Candle]) -> RunResult {
    let values = module
        .manifest()
        .resolve_params::<&str, &str>(&[])
        .expect("defaults");
    let mut source = PluginSource::new(host, module, &values).expect("instance");
    run(
        &mut source,
        bars.iter().copied().map(Ok),
        &options(),
        &mut |_| {},
    )
    .expect("runs")
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
fn the_pipeline_gives_the_direct_loops_trades_on_eurusd() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let bars = eurusd();
    let expected = direct(&host, &sma, &bars);
    assert!(
        expected.trades.len() > 100,
        "a real test: {} trades",
        expected.trades.len()
    );
    let mut results = replay(&host, &sma, &[], 1)
        .run(vec![series("EURUSD", &bars)], &|_| {})
        .expect("runs");
    assert_same(&results.pop().unwrap().expect("series runs"), &expected);
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
    let expected: Vec<RunResult> = cuts.iter().map(|b| direct(&host, &sma, b)).collect();
    for workers in [1, 3] {
        let inputs = cuts
            .iter()
            .enumerate()
            .map(|(i, b)| series(&format!("S{i}"), b))
            .collect();
        let routed = std::sync::atomic::AtomicU64::new(0);
        let got = replay(&host, &sma, &[], workers)
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
    let got = replay(&host, &sma, &[], 2)
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
        &direct(&host, &sma, &bars),
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
    let err = replay(&host, &hostile, &params, 1)
        .run(vec![series("EURUSD", &bars)], &|_| {})
        .expect_err("a faulting strategy fails the run");
    assert!(err.to_string().contains("faulted"), "{err}");
}
