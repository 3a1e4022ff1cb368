//! A stored indicator record, decoded and then given candles.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = candlewick_state::fuzz_indicator_record(data);
});
