//! A candle CSV file.
#![no_main]
use candlewick_market::CsvReader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = CsvReader::new("fuzz.csv".as_ref(), std::io::Cursor::new(data)) {
        for row in reader {
            if let Ok(c) = row {
                assert!(c.check().is_ok());
            }
        }
    }
});
