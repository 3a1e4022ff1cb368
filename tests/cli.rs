//! The `candlewick` binary end to end: real files in, real files out.

mod common;

use std::path::Path;
use std::process::Command;

use common::{candlewick, error_line, repo};

const SPEC: &str = "sma(20) sma(5) ema(20) ema(50) wma(20) dema(20) tema(20) rsi(14) rsi(2) \
    macd(12,26,9) macd(5,35,5) bbands(20,2) bbands(10,1.5) atr(14) natr(14) stoch(14,3,3) \
    stochrsi(14,14,3) willr(14) cci(20) adx(14) plus_di(14) minus_di(14) obv mfi(14) roc(10) \
    mom(10) stddev(20) stddev(10,2)";

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Parses a cell as the value it denotes: empty is warm-up.
fn value(cell: &str) -> Option<u64> {
    (!cell.is_empty()).then(|| cell.parse::<f64>().unwrap().to_bits())
}

#[test]
fn indicators_command_reproduces_talib_on_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo().join("data/EURUSD-1h.csv");
    let out = candlewick(
        dir.path(),
        &[
            "indicators",
            "--data",
            data.to_str().unwrap(),
            "--spec",
            SPEC,
            "--out",
            "o.csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, rows) = read_csv(&dir.path().join("o.csv"));
    let (golden_header, golden) = read_csv(&repo().join("tests/golden/EURUSD-1h.talib.csv"));
    assert_eq!(header, golden_header);
    assert_eq!(rows.len(), golden.len());
    for (i, (ours, theirs)) in rows.iter().zip(&golden).enumerate() {
        assert_eq!(ours[0], theirs[0], "time, row {i}");
        for j in 1..ours.len() {
            assert_eq!(value(&ours[j]), value(&theirs[j]), "{} row {i}", header[j]);
        }
    }
}

/// Each kind of bad input: non-zero exit, one line naming file and line,
/// and no output file left behind.
#[test]
fn bad_csvs_fail_with_their_line() {
    let good = "2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n";
    let cases = [
        (
            "nan",
            "2017-04-19 10:00:00,1.07,1.08,1.06,NaN,10\n",
            ":3: close is not a finite number",
        ),
        (
            "high-low",
            "2017-04-19 10:00:00,1.07,1.05,1.06,1.055,10\n",
            ":3: high is below low",
        ),
        (
            "backwards",
            "2017-04-19 08:00:00,1.07,1.08,1.06,1.07,10\n",
            ":3: timestamp 1492588800000 is not after",
        ),
        (
            "truncated",
            "2017-04-19 10:00:00,1.07,1.08",
            ":3: expected 6 fields, found 3",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, row, expected) in cases {
        let path = dir.path().join(format!("{name}.csv"));
        std::fs::write(&path, format!(",Open,High,Low,Close,Volume\n{good}{row}")).unwrap();
        assert_fails_with(dir.path(), &path, expected);
    }
    let missing = dir.path().join("missing-column.csv");
    std::fs::write(&missing, format!(",Open,High,Low,Volume\n{good}")).unwrap();
    assert_fails_with(dir.path(), &missing, ":1: header has no close column");
}

fn assert_fails_with(dir: &Path, data: &Path, expected: &str) {
    let out = candlewick(
        dir,
        &[
            "indicators",
            "--data",
            data.to_str().unwrap(),
            "--spec",
            "sma(2)",
            "--out",
            "o.csv",
        ],
    );
    let error = error_line(&out, 1);
    assert!(
        error.contains(&format!("{}{expected}", data.display())),
        "{error}"
    );
    assert!(!dir.join("o.csv").exists() && !dir.join("o.csv.partial").exists());
}

#[test]
fn a_bad_spec_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = repo().join("data/EURUSD-1h.csv");
    let out = candlewick(
        dir.path(),
        &[
            "indicators",
            "--data",
            data.to_str().unwrap(),
            "--spec",
            "sma(20) foo(3)",
            "--out",
            "o.csv",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: --spec: unknown indicator \"foo\""),
        "{stderr}"
    );
}

/// Runs `candlewick ARGS` and returns its own peak resident set in KiB
/// (from `wait4`, so other tests' children running in parallel don't count).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, not by Child::wait
fn peak_rss_kib(dir: &Path, args: &[&str]) -> i64 {
    let child = Command::new(env!("CARGO_BIN_EXE_candlewick"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    let pid = child.id() as libc::pid_t;
    // SAFETY: wait4 writes only the status and the rusage we pass, both plain
    // data; the child is ours and is reaped exactly once, here.
    unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut usage), pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "candlewick failed: {status}"
        );
        usage.ru_maxrss
    }
}

fn synthetic_csv(path: &Path, rows: usize) {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..rows {
        let close = 100.0 + (i % 1000) as f64 * 0.01;
        let t = 1_600_000_000_000i64 + i as i64 * 60_000;
        writeln!(
            w,
            "{t},{close},{},{},{close},5,{},0,1,0,0,0",
            close + 0.5,
            close - 0.5,
            t + 59_999
        )
        .unwrap();
    }
}

/// Streaming: 20x the rows must not take more memory (ratio, not a time).
#[test]
fn indicators_stream_in_constant_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "sma(20) ema(20) rsi(14) macd(12,26,9) bbands(20,2) atr(14) stoch(14,3,3) obv adx(14) cci(20)";
    let mut peaks = Vec::new();
    for rows in [50_000, 1_000_000] {
        let data = dir.path().join(format!("{rows}.csv"));
        synthetic_csv(&data, rows);
        let args = [
            "indicators",
            "--data",
            data.to_str().unwrap(),
            "--spec",
            spec,
            "--out",
            "o.csv",
        ];
        peaks.push(peak_rss_kib(dir.path(), &args));
    }
    assert!(
        peaks[1] < peaks[0] * 3 / 2,
        "peak RSS grew with rows: {peaks:?} KiB"
    );
}

/// `run` with the embedded default, unpaced and stopping at the end of
/// the bundled data: every candle applied once, then none on a rerun (the
/// RocksDB checkpoint resumes it).
#[test]
fn run_resumes_from_its_checkpoint_without_reapplying() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--exit-at-end",
        "--speed",
        "0",
        "--listen",
        "127.0.0.1:0",
    ];
    let first = candlewick(dir.path(), &args);
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{log}");
    assert!(log.contains("applied=5000 already_applied=0"), "{log}");
    assert!(
        log.contains("watch it: candlewick watch --url ws://127.0.0.1:"),
        "{log}"
    );
    assert!(log.contains("strategy loaded"), "{log}");

    let second = candlewick(dir.path(), &args);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{log}");
    assert!(
        log.contains("resuming after the candle of 2018-02-07 15:00:00"),
        "{log}"
    );
    assert!(log.contains("applied=0 already_applied=5000"), "{log}");
}

#[test]
fn run_refuses_a_config_with_a_typo() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        config.replace("send_timeout_s", "send_timout_s"),
    )
    .unwrap();
    let out = candlewick(dir.path(), &["run", "--config", "c.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("unknown field `send_timout_s`")
            && stderr.contains("did you mean `send_timeout_s`?"),
        "{stderr}"
    );
}

/// `state forget` drops one stream's records: the next run applies it
/// again from its first candle, where it would otherwise resume.
#[test]
fn state_forget_makes_one_stream_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "--exit-at-end",
        "--speed",
        "0",
        "--listen",
        "127.0.0.1:0",
    ];
    let first = candlewick(dir.path(), &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let forget = candlewick(dir.path(), &["state", "forget", "--stream", "EURUSD/1h"]);
    let said = String::from_utf8_lossy(&forget.stdout);
    assert!(
        forget.status.success(),
        "{}",
        String::from_utf8_lossy(&forget.stderr)
    );
    assert!(said.contains("forgot EURUSD/1h"), "{said}");
    let again = candlewick(dir.path(), &args);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{log}");
    assert!(log.contains("applied=5000 already_applied=0"), "{log}");
    let bad = candlewick(dir.path(), &["state", "forget", "--stream", "EURUSD"]);
    assert!(!bad.status.success());
}
