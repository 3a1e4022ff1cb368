//! The promises a trader relies on, checked on real data: no look-ahead,
//! identical reruns, reports that stand alone, and sweeps that agree with
//! single runs.

mod support;

use candlewick_backtest::fingerprint::{fingerprint, sha256_file, Inputs};
use candlewick_backtest::report::{write_all, Report};
use candlewick_backtest::sweep::{grid, sweep, ParamRange};
use candlewick_backtest::{ExitReason, GapPolicy, RunError, RunOptions, RunResult, SeriesError};
use candlewick_market::Candle;
use candlewick_plugins::{LoadedModule, PluginHost};
use support::{eurusd, eurusd_path, host, module, options, run_one};

/// `sma_cross` with `fast`/`slow` through the engine.
fn cross(
    host: &PluginHost,
    sma: &LoadedModule,
    fast: u32,
    slow: u32,
    options: RunOptions,
    bars: &[Candle],
) -> Result<RunResult, RunError> {
    let (fast, slow) = (fast.to_string(), slow.to_string());
    run_one(
        host,
        sma,
        &[("fast", fast.as_str()), ("slow", slow.as_str())],
        options,
        bars,
    )
}

#[test]
fn changing_the_signal_bars_close_moves_no_fill() {
    let host = host();
    // Its signals follow the clock alone: a buy every 10 hours, a sell 5
    // hours after, whatever the prices. So the same bars signal on both
    // data sets, and only a fill that looked ahead could move.
    let metronome = module(&host, "metronome");
    let params = [("step_ms", "3600000"), ("period", "10")];
    let bars = eurusd();
    let beat = |c: &Candle| c.open_time.div_euclid(3_600_000).rem_euclid(10);
    let signal_bars: Vec<usize> = (0..bars.len())
        .filter(|&i| matches!(beat(&bars[i]), 0 | 5))
        .collect();
    assert!(signal_bars.len() > 500, "{} signal bars", signal_bars.len());
    let original = run_one(&host, &metronome, &params, options(), &bars).expect("runs");

    // Move every signal bar's close far away (keeping the bar valid).
    let mut altered = bars.clone();
    for &i in &signal_bars {
        let b = &mut altered[i];
        b.close *= 1.05;
        b.high = b.high.max(b.close);
    }
    let replay = run_one(&host, &metronome, &params, options(), &altered).expect("runs");
    assert!(original.trades.len() > 200, "{}", original.trades.len());
    assert_eq!(replay.trades.len(), original.trades.len());
    for (a, b) in original.trades.iter().zip(&replay.trades) {
        assert_eq!(
            (a.entry_bar, a.entry_price, a.size),
            (b.entry_bar, b.entry_price, b.size)
        );
        if a.exit_reason == ExitReason::Signal {
            assert_eq!((a.exit_bar, a.exit_price), (b.exit_bar, b.exit_price));
        }
        // Every fill is at the open of the bar after its signal bar.
        assert!(signal_bars.contains(&(a.entry_bar - 1)), "{a:?}");
        assert_eq!(a.entry_price, bars[a.entry_bar].open);
    }
}

#[test]
fn identical_reruns_give_an_identical_fingerprint_and_a_change_does_not() {
    let digest = sha256_file(&eurusd_path()).expect("hash");
    let inputs = Inputs {
        data_sha256: digest,
        strategy: "cross(10,20)".into(),
        params: vec![("fast".into(), 10.0), ("slow".into(), 20.0)],
    };
    let host = host();
    let sma = module(&host, "sma_cross");
    let bars = eurusd();
    let once = |options: RunOptions| {
        let r = cross(&host, &sma, 10, 20, options, &bars).expect("runs");
        fingerprint(&inputs, &r.options, &r.trades)
    };
    let (a, b) = (once(options()), once(options()));
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    let mut fee = options();
    fee.broker.fee_bps = 11.0;
    assert_ne!(once(fee), a);
}

#[test]
fn writes_every_file_and_the_html_needs_no_network() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let r = cross(&host, &sma, 10, 20, options(), &eurusd()).expect("runs");
    let inputs = Inputs {
        data_sha256: "0".repeat(64),
        strategy: "cross".into(),
        params: vec![],
    };
    let fp = fingerprint(&inputs, &r.options, &r.trades);
    let dir = tempfile::tempdir().expect("tmp");
    let report = Report {
        result: &r,
        inputs: &inputs,
        data_label: "EURUSD-1h.csv",
        strategy_label: "cross <10,20>",
        fingerprint: &fp,
    };
    write_all(dir.path(), &report).expect("written");

    let trades = std::fs::read_to_string(dir.path().join("trades.csv")).expect("trades");
    assert_eq!(trades.lines().count(), r.trades.len() + 1);
    assert!(trades
        .lines()
        .last()
        .is_some_and(|l| l.ends_with("end_of_data")));
    let equity =
        candlewick_history::read_table_parquet(&dir.path().join("equity.parquet")).expect("equity");
    assert_eq!(equity.rows(), 5000);
    assert_eq!(equity.floats("equity"), Some(r.curve.equity()));
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("stats.json")).expect("json"),
    )
    .expect("valid");
    assert_eq!(stats["fingerprint"], fp.as_str());
    assert_eq!(stats["stats"]["# Trades"], r.trades.len());
    assert_eq!(stats["stats"]["Annualisation"]["periods_per_year"], 252.0);
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("html");
    assert!(html.contains("<svg") && html.contains(&fp));
    assert!(html.contains("cross &lt;10,20&gt;"), "labels are escaped");
    for forbidden in ["<script", "http://", "https://", "<link", "@import"] {
        let hits = html.matches(forbidden).count();
        let allowed = if forbidden == "http://" {
            html.matches("http://www.w3.org/2000/svg").count()
        } else {
            0
        };
        assert_eq!(hits, allowed, "{forbidden} in report.html");
    }
}

#[test]
fn a_sweep_ranks_points_and_matches_single_runs() {
    let bars = eurusd();
    let points = grid(&[
        ParamRange::parse("fast=5..15:5").expect("range"),
        ParamRange::parse("slow=20..40:10").expect("range"),
    ])
    .expect("grid");
    let host = host();
    let sma = module(&host, "sma_cross");
    let job =
        |p: &Vec<(String, f64)>| cross(&host, &sma, p[0].1 as u32, p[1].1 as u32, options(), &bars);
    let rows = sweep(points, "Return [%]", false, job).expect("sweep");
    assert_eq!(rows.len(), 9);
    assert!(rows.windows(2).all(|w| w[0].score >= w[1].score));
    let best = &rows[0];
    let single = job(&best.point).expect("single run");
    assert_eq!(single.stats.return_pct, best.score);
    assert!(
        candlewick_backtest::sweep::heatmap_svg(&rows, "Return [%]", false)
            .is_some_and(|s| s.contains("<rect"))
    );
    assert!(sweep(vec![], "No Such Stat", false, job).is_err());
}

#[test]
fn bad_series_and_strategies_are_named() {
    let host = host();
    let sma = module(&host, "sma_cross");
    let mut bars = eurusd()[..100].to_vec();
    // A duplicate bar.
    let mut dup = bars.clone();
    dup.insert(50, dup[49]);
    let err = cross(&host, &sma, 2, 3, options(), &dup).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Series(SeriesError::Duplicate { index: 50, .. })
        ),
        "{err}"
    );
    // A weekday hole of five hours (bars 30..35 removed).
    bars.drain(30..35);
    let err = cross(&host, &sma, 2, 3, options(), &bars).unwrap_err();
    assert!(
        matches!(err, RunError::Series(SeriesError::Gap { missing: 5, .. })),
        "{err}"
    );
    assert!(err.to_string().contains("--gaps report"), "{err}");
    let mut allow = options();
    allow.gaps = GapPolicy::Allow;
    assert!(cross(&host, &sma, 2, 3, allow.clone(), &bars).is_ok());
    // Indicators the data is too short for.
    let err = cross(&host, &sma, 10, 500, allow, &bars).unwrap_err();
    assert!(
        matches!(
            err,
            RunError::NotEnoughHistory {
                needed: 499,
                have: 95,
                ..
            }
        ),
        "{err}"
    );
    // No bars at all.
    let err = cross(&host, &sma, 2, 3, options(), &[]).unwrap_err();
    assert!(matches!(err, RunError::TooShort(0)), "{err}");
}
