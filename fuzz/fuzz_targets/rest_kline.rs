//! A REST klines page: a JSON array of rows.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(serde_json::Value::Array(rows)) = serde_json::from_slice::<serde_json::Value>(data) {
        for row in &rows {
            if let Ok(k) = candlewick_ingest::binance::Kline::from_row(row) {
                assert!(k.candle.check().is_ok(), "a row passed with a bad candle");
            }
        }
    }
});
