//! An Arrow IPC or Parquet candle file (the first byte picks which).
#![no_main]
use candlewick_history::CandleReader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let name = if pick % 2 == 0 { "f.arrow" } else { "f.parquet" };
    let path = dir.path().join(name);
    if std::fs::write(&path, body).is_err() {
        return;
    }
    if let Ok(reader) = CandleReader::open(&path) {
        for row in reader.take(100_000) {
            if row.is_err() {
                break;
            }
        }
    }
});
