//! The errors a newcomer meets first, each as one sentence that says what
//! is wrong and what to do: a file that is not a strategy, a CSV that is
//! not candles, a misspelt config key, a busy port, a state directory of
//! another version.

mod common;

use std::path::Path;
use std::process::Output;

use common::{candlewick, error_line, repo, wasm};

fn backtest(dir: &Path, data: &str, strategy: &str) -> Output {
    candlewick(
        dir,
        &[
            "backtest",
            "--data",
            data,
            "--strategy",
            strategy,
            "--out",
            "out",
        ],
    )
}

fn eurusd() -> String {
    repo().join("data/EURUSD-1h.csv").display().to_string()
}

#[test]
fn a_strategy_that_is_not_webassembly_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let readme = repo().join("README.md").display().to_string();
    let e = error_line(&backtest(dir.path(), &eurusd(), &readme), 1);
    assert!(
        e.contains("not a WebAssembly module: this is a text file"),
        "{e}"
    );
    assert!(e.contains("candlewick plugin build"), "{e}");
    assert!(!e.contains("0x61"), "no raw magic bytes: {e}");

    let wat = dir.path().join("s.wat");
    std::fs::write(&wat, "(module)\n").unwrap();
    let e = error_line(
        &backtest(dir.path(), &eurusd(), &wat.display().to_string()),
        1,
    );
    assert!(e.contains("WebAssembly text (.wat)"), "{e}");

    // The head of a native executable (an ELF header), as a wrong path gives.
    let native = dir.path().join("strategy.so");
    std::fs::write(
        &native,
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0",
    )
    .unwrap();
    let e = error_line(
        &backtest(dir.path(), &eurusd(), &native.display().to_string()),
        1,
    );
    assert!(e.contains("native executable"), "{e}");
}

#[test]
fn a_webassembly_module_without_a_manifest_is_not_a_strategy() {
    let dir = tempfile::tempdir().unwrap();
    // The smallest valid module: magic, version 1, no sections.
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, b"\0asm\x01\0\0\0").unwrap();
    let e = error_line(
        &backtest(dir.path(), &eurusd(), &empty.display().to_string()),
        1,
    );
    assert!(
        e.contains("a WebAssembly module, but not a Candlewick strategy"),
        "{e}"
    );
    assert!(e.contains("candlewick plugin new"), "{e}");
}

#[test]
fn a_csv_with_the_wrong_columns_says_what_a_candle_csv_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("trades.csv");
    std::fs::write(&data, "date,price,qty\n2024-01-02,100.5,3\n").unwrap();
    let strategy = wasm("sma_cross");
    let e = error_line(
        &backtest(dir.path(), &data.display().to_string(), &strategy),
        1,
    );
    assert!(e.contains("trades.csv:1: header has no open column"), "{e}");
    assert!(e.contains("\"date,price,qty\""), "quotes the header: {e}");
    assert!(e.contains("open, high, low, close and volume"), "{e}");
}

#[test]
fn a_misspelt_config_key_names_the_closest_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let typo = config.replace("max_batch", "max_bacth");
    std::fs::write(dir.path().join("c.toml"), &typo).unwrap();
    let e = error_line(&candlewick(dir.path(), &["run", "--config", "c.toml"]), 1);
    let line = typo.lines().position(|l| l.contains("max_bacth")).unwrap() + 1;
    assert!(
        e.contains(&format!("c.toml:{line}:1: unknown field `max_bacth`")),
        "{e}"
    );
    assert!(e.ends_with("did you mean `max_batch`?"), "{e}");
}

#[test]
fn a_busy_port_says_what_and_how_to_pick_another() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = candlewick(
        dir.path(),
        &["run", "--exit-at-end", "--speed", "0", "--listen", &addr],
    );
    let e = error_line(&o, 1);
    assert!(e.contains(&format!("cannot listen on {addr}")), "{e}");
    assert!(e.contains("is in use"), "{e}");
    assert!(e.contains("another `candlewick run`"), "{e}");
    assert!(e.contains("--listen 127.0.0.1:"), "{e}");
}

#[test]
fn a_state_directory_of_another_version_is_refused_in_words() {
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
    // What a later build, with the next schema version, would have left.
    let later = candlewick_state::SCHEMA_VERSION + 1;
    let state = dir.path().join("var/state");
    {
        let families = rocksdb::DB::list_cf(&rocksdb::Options::default(), &state).unwrap();
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &state, &families).unwrap();
        let meta = db.cf_handle("meta").expect("a meta column family");
        db.put_cf(meta, b"schema_version", later.to_le_bytes())
            .unwrap();
    }
    let e = error_line(&candlewick(dir.path(), &args), 1);
    let expected = format!(
        "has schema version {later}, this build reads version {}",
        candlewick_state::SCHEMA_VERSION
    );
    assert!(e.contains(&expected), "{e}");
    assert!(e.contains("move it aside"), "{e}");
}
