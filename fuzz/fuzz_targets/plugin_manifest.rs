//! A plugin manifest: the JSON alone, and a module that carries it.
#![no_main]
use candlewick_plugins::Manifest;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        let _ = m.indicator_spec(m.defaults());
        let _ = m.resolve_params(&[("fast", "3")]);
    }
    let _ = Manifest::from_module(data);
});
