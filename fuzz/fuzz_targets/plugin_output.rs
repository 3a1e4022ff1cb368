//! Signal records a guest wrote into its output buffer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((&n, records)) = data.split_first() {
        let ok = candlewick_plugins::fuzz_signal_records(records, u32::from(n));
        assert!(ok <= usize::from(n), "more signals than bars accepted");
    }
});
