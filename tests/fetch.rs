//! `candlewick fetch` end to end: the real binary against the loopback
//! exchange (tests/simulator), never the internet. Every run is compared
//! with what the exchange holds, candle for candle.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::Ordering;

use common::{candlewick, error_line};

use candlewick_history::CandleReader;
use candlewick_market::Candle;
use candlewick_simulator::{RestFault, SimConfig, Simulator};

/// 2023-11-14 22:13:00 UTC: on the 1m grid.
const START: i64 = 1_699_999_980_000;
const SYMBOL: &str = "S0000USDT";

/// The simulator and the runtime serving it (alive as long as this is).
struct Exchange {
    _runtime: tokio::runtime::Runtime,
    sim: Simulator,
}

fn exchange(steps: usize, edit: impl FnOnce(&mut SimConfig)) -> Exchange {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = SimConfig::symbols(1, steps);
    config.start_ms = START;
    edit(&mut config);
    let sim = runtime
        .block_on(Simulator::start(config, 0))
        .expect("simulator binds");
    sim.publish(steps);
    Exchange {
        _runtime: runtime,
        sim,
    }
}

impl Exchange {
    fn requests(&self) -> u64 {
        self.sim.stats().rest_requests.load(Ordering::Relaxed)
    }

    /// Runs `fetch` of `steps` klines into `out`, with `extra` arguments.
    fn fetch(&self, dir: &Path, out: &str, steps: usize, extra: &[&str]) -> Output {
        let to = (START + 60_000 * steps as i64).to_string();
        let from = START.to_string();
        let url = self.sim.rest_url();
        let mut args = vec![
            "fetch",
            "--symbol",
            SYMBOL,
            "--interval",
            "1m",
            "--from",
            &from,
            "--to",
            &to,
            "--out",
            out,
            "--base-url",
            &url,
            "--allow-insecure-loopback",
        ];
        args.extend_from_slice(extra);
        candlewick(dir, &args)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn read(path: &Path) -> Vec<Candle> {
    CandleReader::open(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".partial"))
        .collect()
}

#[test]
fn a_full_fetch_equals_the_exchange_in_every_format() {
    let steps = 2_500;
    let ex = exchange(steps, |_| {});
    let dir = tempfile::tempdir().unwrap();
    for name in ["k.csv", "k.arrow", "k.parquet"] {
        let stdout = assert_ok(&ex.fetch(dir.path(), name, steps, &[]));
        assert!(
            stdout.contains("fetched S0000USDT 1m: 2500 klines from 2023-11-14 22:13:00")
                && stdout.contains("2500 downloaded in 3 requests, 0 resumed; no gaps"),
            "{stdout}"
        );
        let candles = read(&dir.path().join(name));
        assert_eq!(candles.len(), steps, "{name}");
        assert_eq!(candles, ex.sim.candles(0), "{name}: every value");
        assert!(leftovers(dir.path()).is_empty(), "{name}");
    }
    // CSV: Binance's layout, no header, 12 columns, open time in ms.
    let csv = std::fs::read_to_string(dir.path().join("k.csv")).unwrap();
    let first: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(first.len(), 12);
    assert_eq!(first[0], START.to_string());
    assert_eq!(first[6], (START + 59_999).to_string(), "close time");
    assert_eq!(csv.lines().count(), steps);

    // And a backtest reads it.
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/wasm/wasm32-unknown-unknown/release/sma_cross.wasm");
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-plugins",
        wasm.display()
    );
    let bt = candlewick(
        dir.path(),
        &[
            "backtest",
            "--data",
            "k.parquet",
            "--strategy",
            wasm.to_str().unwrap(),
            "--out",
            "bt",
        ],
    );
    assert_ok(&bt);
    assert!(dir.path().join("bt/stats.json").is_file());
}

#[test]
fn rate_limits_are_waited_out_and_nothing_is_lost_or_doubled() {
    let steps = 2_500;
    let ex = exchange(steps, |_| {});
    let limited = |code| RestFault::Status {
        code,
        retry_after_s: Some(1),
    };
    ex.sim.rest_fault_at(2, limited(429));
    ex.sim.rest_fault_at(3, limited(418));
    let dir = tempfile::tempdir().unwrap();
    let stdout = assert_ok(&ex.fetch(dir.path(), "k.csv", steps, &[]));
    assert!(
        stdout.contains("waited out 2 rate-limit answers"),
        "{stdout}"
    );
    assert_eq!(read(&dir.path().join("k.csv")), ex.sim.candles(0));
    assert_eq!(ex.requests(), 3 + 2);
}

#[test]
fn a_failure_mid_run_stops_and_the_same_command_resumes_exactly() {
    let steps = 3_500;
    let cases = [
        (
            "k.csv",
            RestFault::Status {
                code: 500,
                retry_after_s: None,
            },
            "HTTP 500",
        ),
        ("k.parquet", RestFault::Drop, "after 2 attempts"),
    ];
    for (name, fault, cause) in cases {
        let ex = exchange(steps, |_| {});
        let dir = tempfile::tempdir().unwrap();
        // Two pages arrive, then the exchange fails for good.
        ex.sim.rest_fault_from(3, fault);
        let failed = ex.fetch(dir.path(), name, steps, &["--retries", "1"]);
        let line = error_line(&failed, 1);
        assert!(
            line.contains(cause) && line.contains("2000 klines are kept") && line.contains("rerun"),
            "{line}"
        );
        assert!(!dir.path().join(name).exists(), "no half file under {name}");
        let journal = dir.path().join(format!("{name}.partial.csv"));
        let saved = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(saved.lines().count(), 2000);
        // A crash mid-write leaves half a line; the rerun must cope.
        std::fs::write(&journal, format!("{saved}{}", &saved[..20])).unwrap();

        ex.sim.clear_rest_faults();
        let before = ex.requests();
        let stdout = assert_ok(&ex.fetch(dir.path(), name, steps, &["--retries", "1"]));
        assert!(
            stdout.contains("3500 klines")
                && stdout.contains("1500 downloaded in 2 requests, 2000 resumed"),
            "{stdout}"
        );
        assert_eq!(ex.requests() - before, 2, "only what was missing");
        assert_eq!(read(&dir.path().join(name)), ex.sim.candles(0), "{name}");
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[test]
fn an_existing_file_is_extended_without_duplicates() {
    let ex = exchange(2_500, |_| {});
    let dir = tempfile::tempdir().unwrap();
    for name in ["k.csv", "k.arrow"] {
        assert_ok(&ex.fetch(dir.path(), name, 1_500, &[]));
        let stdout = assert_ok(&ex.fetch(dir.path(), name, 2_500, &[]));
        assert!(
            stdout.contains("1000 downloaded in 1 request, 1500 resumed"),
            "{stdout}"
        );
        assert_eq!(read(&dir.path().join(name)), ex.sim.candles(0), "{name}");
        assert!(leftovers(dir.path()).is_empty(), "{name}");
    }
}

#[test]
fn a_hole_in_the_exchange_data_is_reported_not_hidden() {
    let steps = 2_500;
    let ex = exchange(steps, |c| c.missing = vec![1_200..1_260, 2_450..2_500]);
    let dir = tempfile::tempdir().unwrap();
    let out = ex.fetch(dir.path(), "k.csv", steps, &[]);
    let stdout = assert_ok(&out);
    let stderr = text(&out.stderr);
    let gaps: Vec<&str> = stderr.lines().filter(|l| l.starts_with("gap: ")).collect();
    assert_eq!(gaps.len(), 2, "{stderr}");
    assert!(
        gaps[0].contains(
            "no klines from 2023-11-15 18:13:00 until 2023-11-15 19:13:00 UTC (60 missing"
        ),
        "{}",
        gaps[0]
    );
    assert!(gaps[1].contains("(50 missing"), "{}", gaps[1]);
    assert!(
        stdout.contains("2390 klines") && stdout.contains("2 gaps, 110 klines missing"),
        "{stdout}"
    );
    assert_eq!(read(&dir.path().join("k.csv")), ex.sim.rest_candles(0));

    // --gaps fail: an error, and what came before the hole is kept.
    let failed = ex.fetch(dir.path(), "strict.csv", steps, &["--gaps", "fail"]);
    let line = error_line(&failed, 1);
    assert!(
        line.contains("gap: ") && line.contains("60 missing"),
        "{line}"
    );
    assert!(!dir.path().join("strict.csv").exists());
    let kept = std::fs::read_to_string(dir.path().join("strict.csv.partial.csv")).unwrap();
    assert_eq!(kept.lines().count(), 1_200);
}

#[test]
fn bad_inputs_fail_with_a_clear_line_before_any_request() {
    let ex = exchange(10, |_| {});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file.txt"), "not a directory").unwrap();
    let url = ex.sim.rest_url();
    let base = |extra: &'static [&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "fetch",
            "--symbol",
            SYMBOL,
            "--interval",
            "1m",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let loopback = ["--base-url", url.as_str(), "--allow-insecure-loopback"];
    let with_loopback = |mut v: Vec<String>| {
        v.extend(loopback.iter().map(|s| s.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            with_loopback(
                [
                    "fetch",
                    "--symbol",
                    SYMBOL,
                    "--interval",
                    "1m",
                    "--from",
                    "2024-01-02",
                    "--to",
                    "2024-01-01",
                    "--out",
                    "k.csv",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
            1,
            "--from 2024-01-02 00:00:00 is not before --to 2024-01-01 00:00:00",
        ),
        (
            with_loopback(
                [
                    "fetch",
                    "--symbol",
                    SYMBOL,
                    "--interval",
                    "2m",
                    "--from",
                    "2024-01-01",
                    "--to",
                    "2024-01-02",
                    "--out",
                    "k.csv",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ),
            2,
            "unknown interval \"2m\"",
        ),
        (
            base(&[
                "--out",
                "k.csv",
                "--base-url",
                "https://api.binance.com.evil.example",
            ]),
            1,
            "host is not in allowed_hosts",
        ),
        (
            base(&["--out", "k.csv", "--base-url", "http://api.binance.com"]),
            1,
            "plain ws/http is allowed only to loopback",
        ),
        (
            {
                let mut v = base(&["--out", "k.csv", "--base-url"]);
                v.push(url.clone());
                v
            },
            1,
            "--allow-insecure-loopback",
        ),
        (
            with_loopback(base(&["--out", "file.txt/k.csv"])),
            1,
            "--out file.txt/k.csv: cannot create file.txt",
        ),
        (
            with_loopback(base(&["--out", "k.txt"])),
            1,
            "k.txt: unknown format",
        ),
    ];
    for (args, code, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = candlewick(dir.path(), &args);
        let line = if code == 2 {
            // clap's own usage error
            assert_eq!(out.status.code(), Some(2));
            text(&out.stderr)
        } else {
            error_line(&out, code)
        };
        assert!(line.contains(expected), "{args:?}: {line}");
    }
    assert_eq!(ex.requests(), 0, "refused before any request");
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "nothing written but file.txt: {files:?}");

    // The exchange's own refusal (an unknown symbol) is named too.
    let out = candlewick(
        dir.path(),
        &with_loopback(
            [
                "fetch",
                "--symbol",
                "NOPEUSDT",
                "--interval",
                "1m",
                "--from",
                "2024-01-01",
                "--to",
                "2024-01-02",
                "--out",
                "n.csv",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    let line = error_line(&out, 1);
    assert!(
        line.contains("HTTP 400: Invalid symbol. (code -1121)"),
        "{line}"
    );
}
