//! A model artifact's manifest.json.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = candlewick_models::artifact::fuzz_manifest(text);
    }
});
