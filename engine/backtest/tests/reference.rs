//! Agreement with backtesting.py on real data.
//!
//! `tests/backtest/make_reference.py` ran backtesting.py 0.6.6's SmaCross
//! example on `data/EURUSD-1h.csv` and wrote the fixtures read here. This
//! test runs the same strategy (the `sma_cross` plugin, SMA(10/20)) through
//! the engine, as `candlewick backtest` runs it (shard worker, plugin
//! runner, the broker as the sink), with the settings that mean the same
//! thing, and asserts the same trades, the same final equity and the same
//! statistics.

mod support;

use candlewick_backtest::{BrokerConfig, EndOfData, ExitReason, RunOptions, RunResult};
use candlewick_market::CsvReader;
use support::{eurusd_path, host, module, replay, root};

fn run_eurusd(end: EndOfData) -> RunResult {
    let reader = CsvReader::open(&eurusd_path()).expect("data file");
    let options = RunOptions {
        broker: BrokerConfig::new()
            .with_cash(10_000.0)
            .with_fee_bps(10.0)
            .with_lot_size(Some(1.0))
            .with_end_of_data(end),
        ..RunOptions::default()
    };
    let host = host();
    let sma = module(&host, "sma_cross");
    let series = candlewick_backtest::ReplaySeries {
        symbol: candlewick_market::Symbol::new("EURUSD").expect("symbol"),
        candles: Box::new(reader),
    };
    replay(&host, &sma, &[("fast", "10"), ("slow", "20")], options, 1)
        .run(vec![series], &|_| {})
        .expect("the engine runs")
        .pop()
        .expect("one series")
        .expect("backtest runs")
}

#[derive(Debug, PartialEq)]
struct RefTrade {
    entry_bar: usize,
    exit_bar: usize,
    size: f64,
    entry_price: f64,
    exit_price: f64,
    pnl: f64,
    commission: f64,
    return_frac: f64,
}

fn reference_trades() -> Vec<RefTrade> {
    let path = root().join("tests/backtest/fixtures/sma_cross_eurusd_trades.csv");
    let text = std::fs::read_to_string(path).expect("trades fixture");
    text.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<f64> = line
                .split(',')
                .map(|x| x.parse().expect("number"))
                .collect();
            RefTrade {
                entry_bar: f[0] as usize,
                exit_bar: f[1] as usize,
                size: f[2],
                entry_price: f[3],
                exit_price: f[4],
                pnl: f[5],
                commission: f[6],
                return_frac: f[7],
            }
        })
        .collect()
}

fn reference_stats() -> serde_json::Value {
    let path = root().join("tests/backtest/fixtures/sma_cross_eurusd_stats.json");
    let text = std::fs::read_to_string(path).expect("stats fixture");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["stats"].clone()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn same_trades_as_backtesting_py() {
    let ours = run_eurusd(EndOfData::CloseAtLastOpen);
    let reference = reference_trades();
    assert_eq!(ours.trades.len(), reference.len(), "number of trades");
    for (i, (t, r)) in ours.trades.iter().zip(&reference).enumerate() {
        assert_eq!(
            (t.entry_bar, t.exit_bar),
            (r.entry_bar, r.exit_bar),
            "trade {i} bars"
        );
        assert_eq!(t.size, r.size, "trade {i} size");
        assert_eq!(
            (t.entry_price, t.exit_price),
            (r.entry_price, r.exit_price),
            "trade {i} prices"
        );
        assert!(
            close(t.pnl, r.pnl, 1e-9),
            "trade {i} pnl {} vs {}",
            t.pnl,
            r.pnl
        );
        assert!(close(t.fees, r.commission, 1e-12), "trade {i} fees");
        assert!(
            close(t.return_frac, r.return_frac, 1e-9),
            "trade {i} return"
        );
    }
    let last = ours.trades.last().expect("trades");
    assert_eq!(last.exit_reason, ExitReason::EndOfData);
    assert!(ours.trades[..ours.trades.len() - 1]
        .iter()
        .all(|t| t.exit_reason == ExitReason::Signal));
}

/// Every statistic backtesting.py 0.6.6 reports (less its `_` objects):
/// the fixture must hold each, and so must ours, or the test fails rather
/// than comparing fewer.
const STATISTICS: [&str; 32] = [
    "Start",
    "End",
    "Duration",
    "Exposure Time [%]",
    "Equity Final [$]",
    "Equity Peak [$]",
    "Commissions [$]",
    "Return [%]",
    "Buy & Hold Return [%]",
    "Return (Ann.) [%]",
    "Volatility (Ann.) [%]",
    "CAGR [%]",
    "Sharpe Ratio",
    "Sortino Ratio",
    "Calmar Ratio",
    "Alpha [%]",
    "Beta",
    "Max. Drawdown [%]",
    "Avg. Drawdown [%]",
    "Max. Drawdown Duration",
    "Avg. Drawdown Duration",
    "# Trades",
    "Win Rate [%]",
    "Best Trade [%]",
    "Worst Trade [%]",
    "Avg. Trade [%]",
    "Max. Trade Duration",
    "Avg. Trade Duration",
    "Profit Factor",
    "Expectancy [%]",
    "SQN",
    "Kelly Criterion",
];

#[test]
fn same_final_equity_and_statistics_as_backtesting_py() {
    let ours = run_eurusd(EndOfData::CloseAtLastOpen);
    let expected = reference_stats();
    let got = serde_json::to_value(&ours.stats).expect("stats serialise");
    let fixture = expected.as_object().expect("object");
    let mut names: Vec<&str> = fixture.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut wanted = STATISTICS.to_vec();
    wanted.sort_unstable();
    assert_eq!(names, wanted, "the fixture's statistics");
    for name in STATISTICS {
        let want = &expected[name];
        let have = got
            .get(name)
            .unwrap_or_else(|| panic!("{name}: missing from our statistics"));
        match want {
            serde_json::Value::Number(n) => {
                let w = n.as_f64().expect("a finite number");
                let h = have
                    .as_f64()
                    .unwrap_or_else(|| panic!("{name}: backtesting.py {w}, ours {have}"));
                assert!(close(w, h, 1e-9), "{name}: backtesting.py {w}, ours {h}");
            }
            serde_json::Value::String(s) => assert_eq!(have.as_str(), Some(s.as_str()), "{name}"),
            serde_json::Value::Null => assert!(have.is_null(), "{name}: expected null, got {have}"),
            other => panic!("{name}: unexpected {other}"),
        }
    }
    // Spot values read off backtesting.py's printout, so a fixture
    // regenerated wrongly cannot carry the comparison with it.
    assert_eq!(got["# Trades"].as_f64(), Some(263.0));
    assert_eq!(got["Duration"].as_str(), Some("294 days 06:00:00"));
    let final_equity = expected["Equity Final [$]"].as_f64().expect("number");
    assert_eq!(
        ours.stats.equity_final, final_equity,
        "final equity, bit for bit"
    );
    assert!((final_equity - 5931.4458).abs() < 1e-4, "{final_equity}");
}

#[test]
fn the_default_end_of_data_differs_only_in_the_last_exit() {
    let at_open = run_eurusd(EndOfData::CloseAtLastOpen);
    let at_close = run_eurusd(EndOfData::CloseAtLastClose);
    let n = at_open.trades.len();
    assert_eq!(at_open.trades[..n - 1], at_close.trades[..n - 1]);
    let last = &at_close.trades[n - 1];
    assert_eq!(last.exit_reason, ExitReason::EndOfData);
    assert_eq!(
        last.exit_price,
        *at_close.curve.close().last().expect("bars")
    );
    assert_eq!(at_close.stats.equity_final, at_close.curve.last_equity());
}
