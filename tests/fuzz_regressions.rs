//! Replays every input under tests/fuzz-regressions/TARGET/ through the
//! code its fuzz target drives (fuzz/fuzz_targets/TARGET.rs). Each input
//! once crashed a target or is a known-hostile case: each must be refused
//! with an error, never panic.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// Whether `target`'s code accepts `data` (the same calls as the target).
fn accepts(target: &str, data: &[u8]) -> bool {
    let text = std::str::from_utf8(data);
    match target {
        "ws_frame" => text.is_ok_and(candlewick_ingest::binance::fuzz_frame),
        "rest_kline" => match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(serde_json::Value::Array(rows)) => rows
                .iter()
                .all(|r| candlewick_ingest::binance::Kline::from_row(r).is_ok()),
            _ => false,
        },
        "csv_reader" => {
            match candlewick_market::CsvReader::new("r.csv".as_ref(), std::io::Cursor::new(data)) {
                Ok(reader) => reader.into_iter().all(|r| r.is_ok()),
                Err(_) => false,
            }
        }
        "plugin_manifest" => candlewick_plugins::Manifest::from_json(data).is_ok(),
        "plugin_output" => match data.split_first() {
            Some((&n, records)) => {
                candlewick_plugins::fuzz_signal_records(records, u32::from(n)) * 40 == records.len()
            }
            None => false,
        },
        "state_record" => candlewick_state::fuzz_indicator_record(data),
        "model_manifest" => text.is_ok_and(candlewick_models::artifact::fuzz_manifest),
        "feed_client_ops" => text.is_ok_and(|t| candlewick_feed::fuzz_client_ops(t.lines()) > 0),
        "columnar_bytes" => columnar_accepts(data),
        other => panic!("no such fuzz target {other}"),
    }
}

/// The first byte picks the format, the rest is the file (as the target).
fn columnar_accepts(data: &[u8]) -> bool {
    let Some((&pick, body)) = data.split_first() else {
        return false;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if pick % 2 == 0 {
        "f.arrow"
    } else {
        "f.parquet"
    });
    std::fs::write(&path, body).unwrap();
    candlewick_history::CandleReader::open(&path).is_ok_and(|r| r.take(100_000).all(|r| r.is_ok()))
}

#[test]
fn every_regression_input_is_refused_without_panic() {
    let targets = [
        "ws_frame",
        "rest_kline",
        "csv_reader",
        "plugin_manifest",
        "plugin_output",
        "state_record",
        "model_manifest",
        "feed_client_ops",
        "columnar_bytes",
    ];
    let mut replayed = 0;
    for target in targets {
        for (path, data) in inputs(target) {
            assert!(
                !accepts(target, &data),
                "{} was accepted by {target}",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed >= 7, "only {replayed} inputs found");
}

#[test]
fn a_sound_input_of_each_kind_is_accepted() {
    // The same calls accept good data: the refusals above are not a
    // target that refuses everything.
    let frame = br#"{"stream":"btcusdt@kline_1m","data":{"e":"kline","k":{"t":1700000000000,"o":"1","h":"2","l":"0.5","c":"1.5","v":"3","x":true}}}"#;
    assert!(accepts("ws_frame", frame));
    assert!(accepts(
        "csv_reader",
        b"time,open,high,low,close,volume\n2017-01-02 08:00:00,1.05155,1.0527,1.05148,1.05233,2127\n"
    ));
    let record = candlewick_state::fuzz_seed_record("sma(3) rsi(2)").unwrap();
    assert!(accepts("state_record", &record));
    assert!(accepts(
        "feed_client_ops",
        br#"{"op":"subscribe","symbols":["BTCUSDT"]}"#
    ));
}
