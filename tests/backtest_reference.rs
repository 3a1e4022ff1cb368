//! `candlewick backtest`, the command itself (the shard workers' replay,
//! the sma_cross plugin, the files it writes), against backtesting.py
//! 0.6.6 on every trade, every statistic and, on stock data, the equity
//! at every bar.
//!
//! Two files: the bundled EURUSD hours (weekend closures), and daily bars
//! on the real NYSE calendar (`tests/backtest/fixtures/ACME-1d.csv`:
//! weekends, every exchange holiday and half-day of 2018-2025, prices a
//! seeded walk; see `make_nyse_fixture.py`), run without any flag about
//! its holes. The references were made by `tests/backtest/make_reference.py`.
//!
//! On the NYSE file the SMAs are 10 and 30 bars: with prices in cents,
//! SMA(10) and SMA(20) are exactly equal on 2020-07-22, and backtesting.py's
//! `crossover` does not count a cross through an exact tie where the
//! sma_cross plugin does (one trade more); 10/30 has no tie, so the two
//! definitions agree and every trade can be compared.

mod common;

use std::path::{Path, PathBuf};

use common::{candlewick, repo, wasm};

fn fixtures() -> PathBuf {
    repo().join("tests/backtest/fixtures")
}

/// backtesting.py's SmaCross settings (see make_reference.py); returns
/// the output directory.
fn run(dir: &Path, data: &Path, slow: &str, extra: &[&str]) -> PathBuf {
    let strategy = wasm("sma_cross");
    let data = data.display().to_string();
    let mut args = vec![
        "backtest",
        "--data",
        &data,
        "--strategy",
        &strategy,
        "--param",
        "fast=10",
        "--param",
        slow,
        "--cash",
        "10000",
        "--fee-bps",
        "10",
        "--lot-size",
        "1",
        "--end-at",
        "open",
        "--out",
        "out",
    ];
    args.extend_from_slice(extra);
    let o = candlewick(dir, &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dir.join("out")
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

fn rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

/// Every trade: bars, size, prices exactly; PnL, fees, return to 1e-9.
fn same_trades(ours: &Path, reference: &Path) -> usize {
    // ours: entry_bar,exit_bar,entry_time,exit_time,side,size,entry_price,
    //       exit_price,stop_loss,take_profit,pnl,fees,return_pct,exit_reason
    // theirs: entry_bar,exit_bar,size,entry_price,exit_price,pnl,commission,return_pct
    let (ours, theirs) = (rows(ours), rows(reference));
    assert_eq!(ours.len(), theirs.len(), "number of trades");
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!((&o[0], &o[1]), (&t[0], &t[1]), "trade {i}: bars");
        for (a, b, what) in [(5, 2, "size"), (6, 3, "entry"), (7, 4, "exit")] {
            assert_eq!(num(&o[a]), num(&t[b]), "trade {i}: {what}");
        }
        assert!(close(num(&o[10]), num(&t[5]), 1e-9), "trade {i}: pnl");
        assert!(close(num(&o[11]), num(&t[6]), 1e-9), "trade {i}: fees");
        let ret = num(&o[12]) / 100.0;
        assert!(close(ret, num(&t[7]), 1e-9), "trade {i}: return");
    }
    ours.len()
}

/// Every statistic backtesting.py reports, by its name.
fn same_statistics(ours: &Path, reference: &Path) -> usize {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (ours, theirs) = (
        read(ours)["stats"].clone(),
        read(reference)["stats"].clone(),
    );
    let theirs = theirs.as_object().expect("an object");
    assert!(theirs.len() >= 30, "the fixture holds every statistic");
    for (name, want) in theirs {
        let have = ours
            .get(name)
            .unwrap_or_else(|| panic!("{name}: not in our stats.json"));
        match want {
            serde_json::Value::Number(w) => {
                let (w, h) = (w.as_f64().unwrap(), have.as_f64());
                assert!(
                    h.is_some_and(|h| close(w, h, 1e-9)),
                    "{name}: backtesting.py {w}, ours {have}"
                );
            }
            serde_json::Value::String(w) => assert_eq!(have.as_str(), Some(w.as_str()), "{name}"),
            serde_json::Value::Null => assert!(have.is_null(), "{name}: ours {have}"),
            other => panic!("{name}: unexpected {other}"),
        }
    }
    theirs.len()
}

#[test]
fn eurusd_through_the_command_matches_backtesting_py_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &repo().join("data/EURUSD-1h.csv"),
        "slow=20",
        &[],
    );
    let f = fixtures();
    assert_eq!(
        same_trades(
            &out.join("trades.csv"),
            &f.join("sma_cross_eurusd_trades.csv")
        ),
        263
    );
    same_statistics(
        &out.join("stats.json"),
        &f.join("sma_cross_eurusd_stats.json"),
    );
}

#[test]
fn nyse_daily_bars_with_holidays_run_without_flags_and_match_backtesting_py() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixtures().join("ACME-1d.csv");
    let out = run(dir.path(), &data, "slow=30", &["--equity-format", "csv"]);
    let f = fixtures();
    let trades = same_trades(
        &out.join("trades.csv"),
        &f.join("sma_cross_nyse_daily_trades.csv"),
    );
    assert!(trades > 50, "{trades} trades");
    same_statistics(
        &out.join("stats.json"),
        &f.join("sma_cross_nyse_daily_stats.json"),
    );

    // The equity at every bar's close.
    let ours = rows(&out.join("equity.csv"));
    let theirs = rows(&f.join("sma_cross_nyse_daily_equity.csv"));
    let bars = std::fs::read_to_string(&data).unwrap().lines().count() - 1;
    assert_eq!((ours.len(), theirs.len()), (bars, bars));
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let (o, t) = (num(&o[2]), num(&t[1]));
        assert!(
            close(o, t, 1e-9),
            "bar {i}: equity {o} vs backtesting.py {t}"
        );
    }

    // Its holes are reported: weekends, and the exchange's holidays and
    // days of mourning (Thanksgiving 2018-11-22, 2018-12-05, ...).
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let s = &stats["stats"];
    let (gaps, weekend) = (
        s["Gaps"].as_u64().unwrap(),
        s["Weekend Gaps"].as_u64().unwrap(),
    );
    // One weekend a calendar week (a long weekend is still one).
    let days: u64 = s["Duration"]
        .as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let weeks = days / 7;
    assert!(
        weekend + 3 >= weeks && weekend <= weeks + 1,
        "{weeks} weeks: {s}"
    );
    assert!(gaps > weekend, "holidays are holes too: {s}");
    assert_eq!(stats["settings"]["gaps"], "allow");
}

#[test]
fn nyse_half_hours_with_nights_and_half_days_run_without_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixtures().join("ACME-30m.csv");
    let out = run(dir.path(), &data, "slow=20", &[]);
    let table = candlewick_history::read_table_parquet(&out.join("equity.parquet")).unwrap();
    let bars = std::fs::read_to_string(&data).unwrap().lines().count() - 1;
    assert_eq!(table.rows(), bars);
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let s = &stats["stats"];
    // One hole a night: sessions minus one.
    let sessions = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l[..10].to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert_eq!(s["Gaps"].as_u64(), Some(sessions - 1), "{s}");
    // The longest: Martin Luther King Day's long weekend, from Friday
    // 2025-01-17's last half hour (15:30 in New York) to Tuesday's open.
    assert_eq!(s["Largest Gap After"], "2025-01-17 20:30:00", "{s}");
    assert_eq!(s["Largest Gap"], "3 days 18:00:00", "{s}");
    // A half-day (2024-12-24, closing at 13:00 in New York) has 7 bars.
    let text = std::fs::read_to_string(&data).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("2024-12-24")).count(),
        7
    );
}
