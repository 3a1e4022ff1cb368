//! The promises a trader relies on, checked on real data: no look-ahead,
//! identical reruns, reports that stand alone, and sweeps that agree with
//! single runs.

use std::path::PathBuf;

use candlewick_backtest::fingerprint::{fingerprint, sha256_file, Inputs};
use candlewick_backtest::report::{write_all, Report};
use candlewick_backtest::sweep::{grid, sweep, ParamRange};
use candlewick_backtest::{
    run, CrossSource, GapPolicy, RunError, RunOptions, RunResult, SeriesError, Signal,
    SignalSource, StrategyError,
};
use candlewick_market::{Candle, CsvReader};

fn data_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/EURUSD-1h.csv")
}

fn eurusd() -> Vec<Candle> {
    CsvReader::open(&data_path())
        .expect("data")
        .collect::<Result<_, _>>()
        .expect("valid data")
}

fn options() -> RunOptions {
    let mut o = RunOptions::default();
    o.broker.lot_size = Some(1.0);
    o
}

fn run_on(source: &mut dyn SignalSource, bars: &[Candle]) -> RunResult {
    run(
        source,
        bars.iter().copied().map(Ok),
        &options(),
        &mut |_| {},
    )
    .expect("runs")
}

/// Replays signals recorded from another run, whatever the prices say.
struct Scripted(Vec<(usize, Signal)>, usize);

impl SignalSource for Scripted {
    fn indicator_spec(&self) -> String {
        String::new()
    }
    fn on_batch(
        &mut self,
        bars: &[Candle],
        _: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        let start = self.1;
        self.1 += bars.len();
        out.extend(
            self.0
                .iter()
                .filter(|(i, _)| (start..self.1).contains(i))
                .map(|(i, s)| (i - start, *s)),
        );
        Ok(())
    }
}

/// Records the signals a source gives, with absolute bar indices.
struct Recorder<S>(S, Vec<(usize, Signal)>, usize);

impl<S: SignalSource> SignalSource for Recorder<S> {
    fn indicator_spec(&self) -> String {
        self.0.indicator_spec()
    }
    fn on_batch(
        &mut self,
        bars: &[Candle],
        values: &[f64],
        out: &mut Vec<(usize, Signal)>,
    ) -> Result<(), StrategyError> {
        let before = out.len();
        self.0.on_batch(bars, values, out)?;
        self.1
            .extend(out[before..].iter().map(|(i, s)| (i + self.2, *s)));
        self.2 += bars.len();
        Ok(())
    }
}

#[test]
fn changing_the_signal_bars_close_moves_no_fill() {
    let bars = eurusd();
    let mut rec = Recorder(CrossSource::new(10, 20).expect("periods"), Vec::new(), 0);
    let original = run_on(&mut rec, &bars);
    let signals = rec.1;
    assert!(signals.len() > 100);

    // Move every signal bar's close far away (keeping the bar valid).
    let mut altered = bars.clone();
    for &(i, _) in &signals {
        let b = &mut altered[i];
        b.close *= 1.05;
        b.high = b.high.max(b.close);
    }
    let replay = run_on(&mut Scripted(signals, 0), &altered);
    assert_eq!(replay.trades.len(), original.trades.len());
    for (a, b) in original.trades.iter().zip(&replay.trades) {
        assert_eq!(
            (a.entry_bar, a.entry_price, a.size),
            (b.entry_bar, b.entry_price, b.size)
        );
        if a.exit_reason == candlewick_backtest::ExitReason::Signal {
            assert_eq!((a.exit_bar, a.exit_price), (b.exit_bar, b.exit_price));
        }
        // Every fill is at the open of the bar after its signal bar.
        assert_eq!(a.entry_price, bars[a.entry_bar].open);
    }
}

#[test]
fn identical_reruns_give_an_identical_fingerprint_and_a_change_does_not() {
    let digest = sha256_file(&data_path()).expect("hash");
    let inputs = Inputs {
        data_sha256: digest,
        strategy: "cross(10,20)".into(),
        params: vec![("fast".into(), 10.0), ("slow".into(), 20.0)],
    };
    let once = || {
        let reader = CsvReader::open(&data_path()).expect("data");
        let r = run(
            &mut CrossSource::new(10, 20).expect("p"),
            reader,
            &options(),
            &mut |_| {},
        )
        .expect("runs");
        fingerprint(&inputs, &r.options, &r.trades)
    };
    let (a, b) = (once(), once());
    assert_eq!(a, b);
    assert_eq!(a.len(), 64);
    let mut fee = options();
    fee.broker.fee_bps = 11.0;
    let r = run(
        &mut CrossSource::new(10, 20).expect("p"),
        eurusd().into_iter().map(Ok),
        &fee,
        &mut |_| {},
    )
    .expect("runs");
    assert_ne!(fingerprint(&inputs, &r.options, &r.trades), a);
}

#[test]
fn writes_every_file_and_the_html_needs_no_network() {
    let r = run_on(&mut CrossSource::new(10, 20).expect("p"), &eurusd());
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
    let job = |p: &Vec<(String, f64)>| {
        let mut s =
            CrossSource::new(p[0].1 as u32, p[1].1 as u32).map_err(|e| RunError::Strategy(e.0))?;
        run(
            &mut s,
            bars.iter().copied().map(Ok),
            &options(),
            &mut |_| {},
        )
    };
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
    let mut bars = eurusd()[..100].to_vec();
    // A duplicate bar.
    let mut dup = bars.clone();
    dup.insert(50, dup[49]);
    let err = run(
        &mut CrossSource::new(2, 3).expect("p"),
        dup.into_iter().map(Ok),
        &options(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Series(SeriesError::Duplicate { index: 50, .. })
        ),
        "{err}"
    );
    // A weekday hole of five hours (bars 30..35 removed).
    bars.drain(30..35);
    let err = run(
        &mut CrossSource::new(2, 3).expect("p"),
        bars.iter().copied().map(Ok),
        &options(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, RunError::Series(SeriesError::Gap { missing: 5, .. })),
        "{err}"
    );
    assert!(err.to_string().contains("--gaps report"), "{err}");
    let mut allow = options();
    allow.gaps = GapPolicy::Allow;
    assert!(run(
        &mut CrossSource::new(2, 3).expect("p"),
        bars.iter().copied().map(Ok),
        &allow,
        &mut |_| {}
    )
    .is_ok());
    // Indicators the data is too short for.
    let err = run(
        &mut CrossSource::new(10, 500).expect("p"),
        bars.iter().copied().map(Ok),
        &allow,
        &mut |_| {},
    )
    .unwrap_err();
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
    let err = run(
        &mut CrossSource::new(2, 3).expect("p"),
        std::iter::empty(),
        &options(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(matches!(err, RunError::TooShort(0)), "{err}");
}
