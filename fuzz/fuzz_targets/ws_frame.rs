//! A Binance combined-stream frame, as text from the exchange.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = candlewick_ingest::binance::fuzz_frame(text);
    }
});
