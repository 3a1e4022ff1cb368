//! `candlewick backtest` and `candlewick import` end to end: the sma_cross
//! plugin on real data against backtesting.py's numbers, reruns, every
//! candle format, several symbols, and one test per kind of bad input
//! (each must exit non-zero with a one-line error that names it).
//!
//! The plugins are built on first use, as `engine/plugins/tests` does:
//! `cargo build --target wasm32-unknown-unknown` over `plugins/` and
//! `tests/plugins/` into `target/wasm` of this checkout (what
//! `scripts/build-plugins` uses; override with `WASM_TARGET_DIR`), never
//! the running test's own target dir, so the two builds cannot deadlock.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{candlewick, repo, wasm};

use candlewick_history::{CandleReader, CandleWriter, Format, WriteOptions};

fn eurusd() -> PathBuf {
    repo().join("data/EURUSD-1h.csv")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// backtesting.py's settings for its SmaCross example (fixture README).
fn reference_run(dir: &Path, data: &str, out: &str) -> Output {
    let strategy = wasm("sma_cross");
    candlewick(
        dir,
        &[
            "backtest",
            "--data",
            data,
            "--strategy",
            &strategy,
            "--cash",
            "10000",
            "--fee-bps",
            "10",
            "--lot-size",
            "1",
            "--end-at",
            "open",
            "--out",
            out,
        ],
    )
}

fn fingerprint_line(o: &Output) -> String {
    stdout(o)
        .lines()
        .find(|l| l.starts_with("fingerprint "))
        .unwrap_or_else(|| panic!("no fingerprint in {}", stdout(o)))
        .to_owned()
}

/// `(entry_bar, exit_bar, entry_price, exit_price)` of a trades file.
fn trades(path: &Path, cols: [usize; 4]) -> Vec<(u64, u64, f64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[cols[0]].parse().unwrap(),
                f[cols[1]].parse().unwrap(),
                f[cols[2]].parse().unwrap(),
                f[cols[3]].parse().unwrap(),
            )
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn sma_cross_on_eurusd_matches_backtesting_py_and_reruns_identically() {
    let dir = tempfile::tempdir().unwrap();
    let data = eurusd().display().to_string();
    let first = reference_run(dir.path(), &data, "a");
    assert!(first.status.success(), "{}", stderr(&first));
    let out = dir.path().join("a");
    for f in [
        "stats.json",
        "trades.csv",
        "trades.parquet",
        "equity.parquet",
        "report.html",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }

    let fixtures = repo().join("tests/backtest/fixtures");
    let expected = trades(&fixtures.join("sma_cross_eurusd_trades.csv"), [0, 1, 3, 4]);
    let ours = trades(&out.join("trades.csv"), [0, 1, 6, 7]);
    assert_eq!(expected.len(), 263);
    assert_eq!(ours, expected, "same trades: bars and fill prices");

    let want = json(&fixtures.join("sma_cross_eurusd_stats.json"))["stats"]["Equity Final [$]"]
        .as_f64()
        .unwrap();
    let got = json(&out.join("stats.json"))["stats"]["Equity Final [$]"]
        .as_f64()
        .unwrap();
    assert!(
        (got - want).abs() <= 1e-9 * want,
        "final equity {got} vs {want}"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg"), "inline charts");
    for scheme in ["http://", "https://", "//cdn", "src=\"//"] {
        // The SVG namespace is an identifier, not a fetch; nothing else may name a URL.
        let stray = html
            .match_indices(scheme)
            .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
            .count();
        assert_eq!(stray, 0, "report.html references {scheme}");
    }

    let second = reference_run(dir.path(), &data, "b");
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(fingerprint_line(&first), fingerprint_line(&second));
    assert_eq!(
        std::fs::read(out.join("trades.csv")).unwrap(),
        std::fs::read(dir.path().join("b/trades.csv")).unwrap()
    );
}

/// A backtest of `sma_cross` on `data` into `dir/out`, with one of the
/// caches' variables set; it must succeed.
fn cached_backtest(dir: &Path, data: &Path, out: &str, cache: (&str, &Path)) -> Output {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_candlewick"))
        .args(["backtest", "--data", &data.display().to_string()])
        .args([
            "--strategy",
            &wasm("sma_cross"),
            "--lot-size",
            "1",
            "--out",
            out,
        ])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env(cache.0, cache.1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// The files in a cache directory (none when it was never made).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// A backtest keeps the compiled plugin in `CANDLEWICK_PLUGIN_CACHE`; a
/// rerun loads it from there, and a damaged entry is compiled again and
/// replaced, never used: the trades are the same all three times.
#[test]
fn the_compiled_plugin_is_cached_and_a_damaged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let data = eurusd();
    let run = |out: &str| {
        let o = cached_backtest(dir.path(), &data, out, ("CANDLEWICK_PLUGIN_CACHE", &cache));
        fingerprint_line(&o)
    };
    let entries = || files_in(&cache);
    let first = run("a");
    let cached = entries();
    assert_eq!(cached.len(), 1, "one compiled module: {cached:?}");
    let entry = &cached[0];
    assert!(entry.extension().is_some_and(|e| e == "cwasm"));
    let intact = std::fs::read(entry).unwrap();
    assert_eq!(run("b"), first, "from the cache");
    assert_eq!(std::fs::read(entry).unwrap(), intact, "read, not rewritten");

    let mut damaged = intact.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(entry, &damaged).unwrap();
    assert_eq!(run("c"), first, "recompiled");
    assert_eq!(
        std::fs::read(entry).unwrap(),
        intact,
        "the entry is replaced"
    );
}

/// The data's SHA-256 is remembered in `CANDLEWICK_DIGEST_CACHE` under the
/// file's `stat`; a rerun reads it from there (a doctored entry shows it
/// is read), and a copy of the file, just written, is hashed and not
/// remembered until it has settled.
#[test]
fn the_data_digest_is_remembered_once_the_file_has_settled() {
    use candlewick_backtest::fingerprint::{sha256_file, DigestCache};
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("digests");
    let run = |data: &Path, out: &str| {
        cached_backtest(dir.path(), data, out, ("CANDLEWICK_DIGEST_CACHE", &cache));
        json(&dir.path().join(out).join("stats.json"))["inputs"]["data_sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let entries = || files_in(&cache);
    // A file written a moment ago: hashed, not remembered.
    let fresh = dir.path().join("fresh.csv");
    std::fs::copy(eurusd(), &fresh).unwrap();
    let copied = std::time::Instant::now();
    assert_eq!(run(&fresh, "a"), sha256_file(&fresh).unwrap());
    // Only a run that hashed within the window proves anything (a machine
    // loaded enough to take 3 s for it would rightly remember the file).
    if copied.elapsed() < DigestCache::SETTLE {
        assert!(entries().is_empty(), "{:?}", entries());
    }

    // The bundled file (older than the settle window, unless the checkout
    // is brand new): remembered, then read back.
    let settled = eurusd();
    let changed = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&settled).unwrap();
        std::time::UNIX_EPOCH + Duration::new(m.ctime() as u64, m.ctime_nsec() as u32)
    };
    if let Ok(young) = (changed + DigestCache::SETTLE).duration_since(std::time::SystemTime::now())
    {
        std::thread::sleep(young + Duration::from_millis(50));
    }
    let truth = sha256_file(&settled).unwrap();
    assert_eq!(run(&settled, "b"), truth);
    let remembered = entries();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    let text = std::fs::read_to_string(&remembered[0]).unwrap();
    assert!(text.contains(&truth), "{text}");
    std::fs::write(&remembered[0], text.replace(&truth, &"0".repeat(64))).unwrap();
    assert_eq!(run(&settled, "c"), "0".repeat(64), "read from the entry");
}

#[test]
fn arrow_and_parquet_imports_backtest_exactly_like_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = eurusd().display().to_string();
    let csv_run = reference_run(dir.path(), &data, "csv");
    assert!(csv_run.status.success(), "{}", stderr(&csv_run));
    for file in ["e.arrow", "e.parquet"] {
        let import = candlewick(dir.path(), &["import", "--data", &data, "--out", file]);
        assert!(import.status.success(), "{}", stderr(&import));
        assert!(
            stdout(&import).starts_with("imported 5000 candles"),
            "{}",
            stdout(&import)
        );
        let out = format!("{file}-run");
        let run = reference_run(dir.path(), file, &out);
        assert!(run.status.success(), "{file}: {}", stderr(&run));
        assert_eq!(
            std::fs::read(dir.path().join("csv/trades.csv")).unwrap(),
            std::fs::read(dir.path().join(&out).join("trades.csv")).unwrap(),
            "{file}: same trades as the CSV"
        );
        let equity = |d: &str| {
            json(&dir.path().join(d).join("stats.json"))["stats"]["Equity Final [$]"].clone()
        };
        assert_eq!(equity("csv"), equity(&out));
    }
}

#[test]
fn several_symbols_run_apart_in_symbol_order() {
    let dir = tempfile::tempdir().unwrap();
    // One file holding two symbols (the second a scaled copy of EURUSD),
    // written in time order with the rows interleaved.
    let two = dir.path().join("two.parquet");
    let names = ["ZZZ".to_owned(), "AAA".to_owned()];
    let mut w =
        CandleWriter::create(&two, Format::Parquet, Some(&names), WriteOptions::default()).unwrap();
    for c in CandleReader::open(&eurusd()).unwrap() {
        let c = c.unwrap();
        w.push_for(Some("ZZZ"), &c).unwrap();
        let scaled = candlewick_market::Candle {
            open: c.open * 2.0,
            high: c.high * 2.0,
            low: c.low * 2.0,
            close: c.close * 2.0,
            ..c
        };
        w.push_for(Some("AAA"), &scaled).unwrap();
    }
    w.finish().unwrap();
    let data = eurusd().display().to_string();
    let run = |out: &str| reference_run(dir.path(), two.to_str().unwrap(), out);
    let _ = &data;
    let a = run("multi");
    assert!(a.status.success(), "{}", stderr(&a));
    let table = std::fs::read_to_string(dir.path().join("multi/symbols.csv")).unwrap();
    let symbols: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(symbols, ["AAA", "ZZZ"]);
    for s in ["AAA", "ZZZ"] {
        assert!(dir
            .path()
            .join("multi")
            .join(s)
            .join("report.html")
            .is_file());
    }
    // ZZZ is EURUSD itself: the same trades as the single-file run.
    let single = reference_run(dir.path(), &data, "single");
    assert!(single.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("single/trades.csv")).unwrap(),
        std::fs::read(dir.path().join("multi/ZZZ/trades.csv")).unwrap()
    );
    // Rerun: same combined fingerprint, whatever the thread schedule.
    let b = run("multi2");
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(fingerprint_line(&a), fingerprint_line(&b));

    // Several --data files work the same way, and --symbol picks one.
    let strategy = wasm("sma_cross");
    let files = candlewick(
        dir.path(),
        &[
            "backtest",
            "--data",
            &data,
            "--data",
            two.to_str().unwrap(),
            "--strategy",
            &strategy,
            "--out",
            "files",
        ],
    );
    assert!(files.status.success(), "{}", stderr(&files));
    let table = std::fs::read_to_string(dir.path().join("files/symbols.csv")).unwrap();
    let symbols: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(symbols, ["AAA", "EURUSD-1h", "ZZZ"]);
    let one = candlewick(
        dir.path(),
        &[
            "backtest",
            "--data",
            two.to_str().unwrap(),
            "--symbol",
            "ZZZ",
            "--strategy",
            &strategy,
            "--out",
            "one",
        ],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    assert!(
        dir.path().join("one/stats.json").is_file(),
        "one series: the single-run layout"
    );
}

/// Runs a backtest expected to fail; returns its one error line.
fn refused(dir: &Path, data: &str, plugin: &str, extra: &[&str]) -> String {
    let strategy = wasm(plugin);
    let mut args = vec![
        "backtest",
        "--data",
        data,
        "--strategy",
        &strategy,
        "--out",
        "out",
    ];
    args.extend_from_slice(extra);
    let o = candlewick(dir, &args);
    assert!(!o.status.success(), "{args:?} should fail: {}", stdout(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err:?}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_owned()
}

/// The first `n` data rows of EURUSD, with `edit` applied to the lines.
fn csv_with(dir: &Path, name: &str, n: usize, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let text = std::fs::read_to_string(eurusd()).unwrap();
    let mut lines: Vec<String> = text.lines().take(n + 1).map(str::to_owned).collect();
    edit(&mut lines);
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.display().to_string()
}

#[test]
fn unknown_parameter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let e = refused(
        dir.path(),
        &eurusd().display().to_string(),
        "sma_cross",
        &["--param", "fastest=3"],
    );
    assert!(e.contains("fastest"), "{e}");
}

#[test]
fn parameter_out_of_range_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = eurusd().display().to_string();
    let e = refused(dir.path(), &data, "sma_cross", &["--param", "fast=0"]);
    assert!(e.contains("fast") && e.contains('0'), "{e}");
    let e = refused(dir.path(), &data, "sma_cross", &["--param", "slow=99999"]);
    assert!(e.contains("slow") && e.contains("99999"), "{e}");
}

#[test]
fn a_gap_is_run_over_and_counted_or_refused_with_gaps_fail() {
    let dir = tempfile::tempdir().unwrap();
    let whole = csv_with(dir.path(), "whole.csv", 400, |_| {});
    // Drop three weekday hours (rows 100-102): a hole no weekend explains.
    let holed = csv_with(dir.path(), "gap.csv", 400, |l| {
        l.drain(101..104);
    });
    let strategy = wasm("sma_cross");
    let stats = |data: &str, out: &str| {
        let o = candlewick(
            dir.path(),
            &[
                "backtest",
                "--data",
                data,
                "--strategy",
                &strategy,
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("Missing Bars"), "{}", stdout(&o));
        json(&dir.path().join(out).join("stats.json"))["stats"].clone()
    };
    let (a, b) = (stats(&whole, "whole"), stats(&holed, "holed"));
    let n = |s: &serde_json::Value, k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k}: {s}"));
    // The untouched hours hold weekend closures only; the hole adds one
    // gap of three missing bars, and no weekend.
    assert!(n(&a, "Gaps") > 0);
    assert_eq!(n(&a, "Gaps"), n(&a, "Weekend Gaps"), "{a}");
    assert_eq!(n(&b, "Gaps"), n(&a, "Gaps") + 1, "{b}");
    assert_eq!(n(&b, "Weekend Gaps"), n(&a, "Weekend Gaps"));
    assert_eq!(n(&b, "Missing Bars"), n(&a, "Missing Bars") + 3);

    let e = refused(dir.path(), &holed, "sma_cross", &["--gaps", "fail"]);
    assert!(e.contains("missing") && e.contains("--gaps report"), "{e}");
    let e = refused(dir.path(), &holed, "sma_cross", &["--gaps", "weekends"]);
    assert!(e.contains("3 bars missing"), "{e}");
    let e = refused(dir.path(), &whole, "sma_cross", &["--gaps", "fail"]);
    assert!(e.contains("missing"), "a weekend is a hole too: {e}");
}

#[test]
fn data_with_a_duplicate_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_with(dir.path(), "dup.csv", 400, |l| {
        let row = l[200].clone();
        l.insert(201, row);
    });
    let e = refused(dir.path(), &data, "sma_cross", &[]);
    assert!(
        e.contains("dup.csv:202:") && e.contains("strictly increase"),
        "{e}"
    );
    // The same in a columnar file, by row.
    let parquet = dir.path().join("dup.parquet");
    let import = candlewick(
        dir.path(),
        &["import", "--data", &data, "--out", "dup.parquet"],
    );
    assert!(!import.status.success(), "import refuses it too");
    assert!(
        stderr(&import).contains("dup.csv:202:"),
        "{}",
        stderr(&import)
    );
    assert!(!parquet.exists(), "no half-written output");
}

#[test]
fn an_empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["empty.csv", "empty.parquet", "empty.arrow"] {
        std::fs::write(dir.path().join(name), b"").unwrap();
        let e = refused(dir.path(), name, "sma_cross", &[]);
        assert!(e.contains(name) && e.contains("empty"), "{e}");
    }
    // A header and no rows is no data either.
    let data = csv_with(dir.path(), "header.csv", 0, |_| {});
    let e = refused(dir.path(), &data, "sma_cross", &[]);
    assert!(e.contains("0 candles"), "{e}");
}

#[test]
fn a_plugin_needing_what_the_data_cannot_provide_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Model outputs: no backtest data carries them.
    let e = refused(
        dir.path(),
        &eurusd().display().to_string(),
        "model_follow",
        &[],
    );
    assert!(e.contains("model outputs"), "{e}");
    // An indicator longer than the data: sma(500) never has a value in 300 bars.
    let data = csv_with(dir.path(), "short.csv", 300, |_| {});
    let e = refused(dir.path(), &data, "sma_cross", &["--param", "slow=500"]);
    assert!(e.contains("sma(500)") && e.contains("300 bars"), "{e}");
}

#[test]
fn import_refuses_a_bad_row_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_with(dir.path(), "bad.csv", 50, |l| {
        let mut fields: Vec<&str> = l[10].split(',').collect();
        fields[1] = "x";
        l[10] = fields.join(",");
    });
    let o = candlewick(dir.path(), &["import", "--data", &data, "--out", "o.arrow"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.csv:11:"), "{}", stderr(&o));
    let o = candlewick(dir.path(), &["import", "--data", &data, "--out", "o.txt"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown format"), "{}", stderr(&o));
}
