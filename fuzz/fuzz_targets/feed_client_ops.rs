//! Messages a feed client sends, one per line.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let held = candlewick_feed::fuzz_client_ops(text.lines());
        assert!(held <= 8);
    }
});
