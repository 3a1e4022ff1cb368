//! A file's bytes without a copy: the page cache mapped into the process.
//!
//! Reading a 40 MB Parquet file through `read` copied every page into a
//! fresh buffer (and a backtest read its input twice: once to decode, once
//! to hash it for the fingerprint). A mapping shares the page cache's
//! pages instead; decoding slices it and hashing walks it.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

/// The whole of `path`, mapped read-only; `None` where the file cannot be
/// mapped (a pipe, a special file, an empty file, a platform without
/// `mmap`), for the caller to read it the ordinary way.
///
/// The mapping is made with its pages already in place (`MAP_POPULATE`),
/// so walking it takes no page fault per page.
pub fn map_file(path: &Path) -> Option<Bytes> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    // SAFETY: the mapping is read-only and private to this process. The one
    // hazard is another process truncating the file while it is mapped:
    // reading the lost pages then raises SIGBUS. Candlewick's inputs are the
    // user's own files, read once; the same holds for every tool that maps
    // its input (ripgrep, DuckDB, Polars). Documented on the commands that
    // read history.
    #[allow(unsafe_code)]
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.ok()?;
    Some(Bytes::from_owner(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_file_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bin");
        std::fs::write(&path, b"candles").unwrap();
        assert_eq!(map_file(&path).as_deref(), Some(&b"candles"[..]));
        std::fs::write(&path, b"").unwrap();
        assert_eq!(map_file(&path), None, "an empty file is read, not mapped");
        assert_eq!(map_file(dir.path()), None, "a directory");
        assert_eq!(map_file(&dir.path().join("missing")), None);
    }
}
