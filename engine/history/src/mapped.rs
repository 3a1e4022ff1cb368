//! A file's bytes without a copy: the page cache mapped into the process.
//!
//! Reading a 40 MB Parquet file through `read` copied every page into a
//! fresh buffer (and a backtest read its input twice: once to decode, once
//! to hash it for the fingerprint). A mapping shares the page cache's
//! pages instead; decoding slices it and hashing walks it.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;

/// Files up to this size are mapped with every page in place.
pub const POPULATE_UP_TO: u64 = 256 << 20;

/// The whole of `path`, mapped read-only; `None` where the file cannot be
/// mapped (a pipe, a special file, an empty file, a platform without
/// `mmap`), for the caller to read it the ordinary way.
///
/// A file of up to [`POPULATE_UP_TO`] is mapped with its pages already in
/// place (`MAP_POPULATE`), so walking it takes no page fault per page; a
/// larger one is mapped lazily and read ahead as it is walked, so that
/// opening a file many times the size of memory neither waits for all of
/// it nor holds it (a reader that wants one column touches only that
/// column's pages).
pub fn map_file(path: &Path) -> Option<Bytes> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    let small = meta.len() <= POPULATE_UP_TO;
    let mut options = memmap2::MmapOptions::new();
    if small {
        options.populate();
    }
    // SAFETY: the mapping is read-only and private to this process. The one
    // hazard is another process truncating the file while it is mapped:
    // reading the lost pages then raises SIGBUS. Candlewick's inputs are the
    // user's own files, read once; the same holds for every tool that maps
    // its input (ripgrep, DuckDB, Polars). Documented on the commands that
    // read history.
    #[allow(unsafe_code)]
    let map = unsafe { options.map(&file) }.ok()?;
    #[cfg(unix)]
    if !small {
        // Advice only: a refusal changes nothing but speed.
        let _ = map.advise(memmap2::Advice::Sequential);
    }
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

    /// A file past the populate limit is mapped lazily (a sparse file here,
    /// so nothing is written): the call returns at once and reads right.
    #[test]
    fn a_large_file_is_mapped_lazily() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large.bin");
        let file = File::create(&path).unwrap();
        file.set_len(POPULATE_UP_TO + 8192).unwrap();
        drop(file);
        let bytes = map_file(&path).unwrap();
        assert_eq!(bytes.len() as u64, POPULATE_UP_TO + 8192);
        assert_eq!(bytes[bytes.len() - 1], 0);
    }
}
