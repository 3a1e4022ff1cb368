#![allow(clippy::type_complexity)] // test tables of column edits
//! Round trips through every format, several symbols, and every kind of
//! bad file, each named by file and row as a CSV error names its line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_array::{Int32Array, TimestampSecondArray};
use arrow_schema::{Field, Schema};
use candlewick_history::{symbols, CandleReader, CandleWriter, Format, WriteOptions};
use candlewick_market::{Candle, CsvReader};

fn eurusd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/EURUSD-1h.csv")
}

fn bar(i: i64, p: f64) -> Candle {
    Candle {
        open_time: 1_700_000_000_000 + i * 60_000,
        open: p,
        high: p + 1.0,
        low: p - 1.0,
        close: p + 0.5,
        volume: 10.0 + i as f64,
    }
}

fn read_all(path: &Path) -> Result<Vec<Candle>, String> {
    CandleReader::open(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// Small chunks and row groups, so that tests cross batch boundaries.
fn small() -> WriteOptions {
    WriteOptions {
        chunk: 7,
        row_group: 11,
    }
}

#[test]
fn csv_to_arrow_and_parquet_and_back_is_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let csv: Vec<Candle> = CsvReader::open(&eurusd())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(csv.len() > 2000);
    for (name, format) in [("e.arrow", Format::Arrow), ("e.parquet", Format::Parquet)] {
        let path = dir.path().join(name);
        let mut w = CandleWriter::create(&path, format, None, small()).unwrap();
        for c in CandleReader::open(&eurusd()).unwrap() {
            w.push(&c.unwrap()).unwrap();
        }
        assert_eq!(w.finish().unwrap(), csv.len() as u64);
        assert!(!dir.path().join(format!("{name}.partial")).exists());
        let back = read_all(&path).unwrap();
        assert_eq!(back, csv, "{name}");
        let mut reader = CandleReader::open(&path).unwrap();
        assert_eq!(reader.format(), format);
        assert!(!reader.has_symbols());
        let _ = reader.by_ref().count();
        assert_eq!(reader.progress().done, csv.len() as u64);
    }
}

#[test]
fn several_symbols_are_kept_apart_and_chosen_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["ETHUSDT".to_owned(), "BTCUSDT".to_owned()];
    for format in [Format::Arrow, Format::Parquet] {
        let path = dir.path().join(format!("two.{}", format.as_str()));
        let mut w = CandleWriter::create(&path, format, Some(&names), small()).unwrap();
        // Interleaved by time, as a multi-symbol feed arrives.
        for i in 0..50 {
            w.push_for(Some("BTCUSDT"), &bar(i, 100.0)).unwrap();
            w.push_for(Some("ETHUSDT"), &bar(i, 10.0)).unwrap();
        }
        assert!(w.push_for(Some("XRPUSDT"), &bar(99, 1.0)).is_err());
        w.finish().unwrap();

        assert_eq!(symbols(&path).unwrap(), ["BTCUSDT", "ETHUSDT"]);
        let eth: Vec<Candle> = CandleReader::open(&path)
            .unwrap()
            .only("ETHUSDT")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(eth, (0..50).map(|i| bar(i, 10.0)).collect::<Vec<_>>());

        let mut reader = CandleReader::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some(row) = reader.next_row() {
            let row = row.unwrap();
            seen.push(row.symbol.unwrap().to_owned());
        }
        assert_eq!(seen.len(), 100);
        assert_eq!(&seen[..2], ["BTCUSDT", "ETHUSDT"]);

        // One series asked of a two-symbol file: refused at the second symbol's row.
        let err = read_all(&path).unwrap_err();
        assert!(
            err.ends_with(":2: cannot read: field symbol: \"ETHUSDT\" after \"BTCUSDT\"; this file holds several symbols, so choose one (e.g. --symbol)"),
            "{err}"
        );
    }
}

#[test]
fn a_csv_has_no_symbols() {
    assert!(symbols(&eurusd()).unwrap().is_empty());
}

/// Writes a file with any columns, bypassing the writer's checks.
fn raw(dir: &Path, name: &str, columns: Vec<(&str, ArrayRef)>) -> PathBuf {
    let path = dir.join(name);
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let file = std::fs::File::create(&path).unwrap();
    if name.ends_with(".parquet") {
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    } else {
        let mut w = arrow_ipc::writer::FileWriter::try_new(file, &schema).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
    }
    path
}

fn f64s(v: &[f64]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}

/// Three rows; `edit` changes the columns before they are written.
fn three_rows(
    edit: impl FnOnce(&mut Vec<(&'static str, ArrayRef)>),
) -> Vec<(&'static str, ArrayRef)> {
    let mut cols: Vec<(&'static str, ArrayRef)> = vec![
        (
            "open_time",
            Arc::new(Int64Array::from(vec![0, 60_000, 120_000])),
        ),
        ("open", f64s(&[1.0, 1.0, 1.0])),
        ("high", f64s(&[2.0, 2.0, 2.0])),
        ("low", f64s(&[0.5, 0.5, 0.5])),
        ("close", f64s(&[1.5, 1.5, 1.5])),
        ("volume", f64s(&[10.0, 10.0, 10.0])),
    ];
    edit(&mut cols);
    cols
}

fn set(cols: &mut [(&'static str, ArrayRef)], name: &str, a: ArrayRef) {
    let slot = cols.iter_mut().find(|(n, _)| *n == name).unwrap();
    slot.1 = a;
}

#[test]
fn every_bad_file_is_named_with_its_row_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["arrow", "parquet"] {
        let case = |name: &str, edit: &dyn Fn(&mut Vec<(&'static str, ArrayRef)>)| {
            let file = format!("{name}.{ext}");
            let path = raw(dir.path(), &file, three_rows(edit));
            match read_all(&path) {
                Ok(_) => String::new(),
                Err(e) => e
                    .strip_prefix(&format!("{}", path.display()))
                    .unwrap_or(&e)
                    .to_owned(),
            }
        };
        assert_eq!(case("ok", &|_| {}), "", "a good file reads ({ext})");
        assert_eq!(
            case("nan", &|c| set(c, "close", f64s(&[1.5, f64::NAN, 1.5]))),
            ":2: close is not a finite number"
        );
        assert_eq!(
            case("inverted", &|c| set(c, "high", f64s(&[2.0, 2.0, 0.4]))),
            ":3: high is below low"
        );
        assert_eq!(
            case("negvol", &|c| set(c, "volume", f64s(&[1.0, -1.0, 1.0]))),
            ":2: volume is negative"
        );
        assert_eq!(
            case("dup", &|c| set(c, "open_time", Arc::new(Int64Array::from(vec![0, 60_000, 60_000])))),
            ":3: timestamp 60000 is not after the previous one (60000); times must strictly increase"
        );
        assert_eq!(
            case("null", &|c| set(
                c,
                "low",
                Arc::new(Float64Array::from(vec![Some(0.5), Some(0.5), None]))
            )),
            ":3: field low: cannot parse \"null\" as a value (nulls are not candles)"
        );
        assert_eq!(
            case("missing", &|c| c.retain(|(n, _)| *n != "volume")),
            ": header has no volume column"
        );
        assert_eq!(
            case("wrongtype", &|c| set(
                c,
                "open",
                Arc::new(Int32Array::from(vec![1, 1, 1]))
            )),
            ": cannot read: column open is Int32, expected Float64"
        );
        // Seconds are converted; extra columns are ignored.
        assert_eq!(
            case("seconds", &|c| {
                set(
                    c,
                    "open_time",
                    Arc::new(TimestampSecondArray::from(vec![0, 60, 120])),
                );
                c.push(("note", Arc::new(StringArray::from(vec!["a", "b", "c"]))));
            }),
            ""
        );
    }
}

#[test]
fn empty_truncated_and_misnamed_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.parquet");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(
        read_all(&empty).unwrap_err(),
        format!("{}: the file is empty", empty.display())
    );
    for format in [Format::Arrow, Format::Parquet] {
        let path = dir.path().join(format!("t.{}", format.as_str()));
        let mut w = CandleWriter::create(&path, format, None, small()).unwrap();
        for i in 0..100 {
            w.push(&bar(i, 50.0)).unwrap();
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_all(&path).unwrap_err();
        assert!(
            err.starts_with(&format!("{}: cannot read: ", path.display())),
            "{err}"
        );
    }
    let txt = dir.path().join("bars.txt");
    std::fs::write(&txt, b"x").unwrap();
    assert!(read_all(&txt).unwrap_err().contains("unknown format"));
}

#[test]
fn the_ipc_stream_format_is_read_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.arrow");
    let cols = three_rows(|_| {});
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut w =
        arrow_ipc::writer::StreamWriter::try_new(std::fs::File::create(&path).unwrap(), &schema)
            .unwrap();
    w.write(&batch).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    // The second batch repeats the first's times: row 4 is out of order.
    assert_eq!(
        read_all(&path).unwrap_err(),
        format!("{}:4: timestamp 0 is not after the previous one (120000); times must strictly increase", path.display())
    );
}

#[test]
fn the_writer_refuses_bad_candles_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.parquet");
    let mut w = CandleWriter::create(&path, Format::Parquet, None, small()).unwrap();
    w.push(&bar(1, 5.0)).unwrap();
    let err = w.push(&bar(0, 5.0)).unwrap_err().to_string();
    assert!(err.ends_with("w.parquet:2: timestamp 1700000000000 is not after the previous one (1700000060000); times must strictly increase"), "{err}");
    drop(w);
    assert!(!path.exists());
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "partial file removed"
    );
    assert!(CandleWriter::create(&dir.path().join("x.csv"), Format::Csv, None, small()).is_err());
}
