//! Checks an Arrow IPC file's framing against its size before arrow-ipc
//! reads it.
//!
//! arrow-ipc trusts the lengths a file declares: a 5-byte stream whose
//! first message claims 2 GB made the reader allocate and zero 2 GB
//! (found by `fuzz/fuzz_targets/columnar_bytes.rs`; the input is in
//! `tests/fuzz-regressions/columnar_bytes/`). A candle file is untrusted, so
//! every length it declares (each stream message's metadata and body, the
//! file format's footer and its blocks) must fit in the bytes it has. The
//! walk reads only the small metadata, so it costs a few reads per record
//! batch.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The IPC stream's continuation marker before each message length.
const CONTINUATION: i32 = -1;

/// Checks every message of an IPC *stream* in `file` (`len` bytes) and
/// leaves the file at its start.
///
/// # Errors
/// A reason, in words, for the first length that does not fit.
pub(crate) fn check_stream(file: &mut File, len: u64) -> Result<(), String> {
    let mut pos = 0u64;
    while pos < len {
        let mut meta_len = read_i32(file, &mut pos, len)?;
        if meta_len == CONTINUATION {
            meta_len = read_i32(file, &mut pos, len)?;
        }
        if meta_len == 0 {
            break; // end-of-stream marker
        }
        let meta = read_meta(file, &mut pos, len, meta_len)?;
        let message = arrow_ipc::root_as_message(&meta)
            .map_err(|e| format!("IPC message at byte {pos} is not valid ({e})"))?;
        pos = fits(pos, message.bodyLength(), len, "message body")?;
        file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Checks an IPC *file*'s footer and the blocks it lists, and leaves the
/// file at its start.
///
/// # Errors
/// A reason, in words, for the first length that does not fit.
pub(crate) fn check_file(file: &mut File, len: u64) -> Result<(), String> {
    // ... footer, footer length (i32), "ARROW1".
    if len < 10 {
        return Err("too short for an Arrow IPC file".into());
    }
    let mut pos = len - 10;
    file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
    let footer_len = read_i32(file, &mut pos, len)?;
    let start = (len - 10)
        .checked_sub(u64::try_from(footer_len).map_err(|_| "negative footer length")?)
        .ok_or_else(|| format!("a footer of {footer_len} bytes is longer than the file"))?;
    let mut at = start;
    file.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let footer = read_meta(file, &mut at, len, footer_len)?;
    let footer = arrow_ipc::root_as_footer(&footer)
        .map_err(|e| format!("the IPC footer is not valid ({e})"))?;
    let blocks = footer.recordBatches().into_iter().flatten();
    for block in blocks.chain(footer.dictionaries().into_iter().flatten()) {
        let offset = u64::try_from(block.offset()).map_err(|_| "negative block offset")?;
        let meta_end = fits(
            offset,
            i64::from(block.metaDataLength()),
            len,
            "block metadata",
        )?;
        fits(meta_end, block.bodyLength(), len, "block body")?;
    }
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    Ok(())
}

/// `pos + n`, when it is within `len`.
fn fits(pos: u64, n: i64, len: u64, what: &str) -> Result<u64, String> {
    u64::try_from(n)
        .ok()
        .and_then(|n| pos.checked_add(n))
        .filter(|&end| end <= len)
        .ok_or_else(|| {
            format!(
                "an IPC {what} of {n} bytes at byte {pos} runs past the file's end ({len} bytes)"
            )
        })
}

fn read_i32(file: &mut File, pos: &mut u64, len: u64) -> Result<i32, String> {
    fits(*pos, 4, len, "length prefix")?;
    let mut b = [0u8; 4];
    file.read_exact(&mut b).map_err(|e| e.to_string())?;
    *pos += 4;
    Ok(i32::from_le_bytes(b))
}

fn read_meta(file: &mut File, pos: &mut u64, len: u64, n: i32) -> Result<Vec<u8>, String> {
    let end = fits(*pos, i64::from(n), len, "metadata")?;
    let mut meta = vec![0u8; (end - *pos) as usize];
    file.read_exact(&mut meta).map_err(|e| e.to_string())?;
    *pos = end;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> (tempfile::TempDir, File, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.arrow");
        std::fs::write(&path, bytes).unwrap();
        (dir, File::open(&path).unwrap(), bytes.len() as u64)
    }

    #[test]
    fn a_length_beyond_the_file_is_refused_before_any_allocation() {
        // The fuzzer's input: a message claiming 0x7effff86 bytes.
        let (_d, mut f, len) = file(&[0x86, 0xff, 0xff, 0x7e, 0x86]);
        let e = check_stream(&mut f, len).unwrap_err();
        assert!(e.contains("runs past the file's end"), "{e}");
        let (_d, mut f, len) = file(&[0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x40]);
        assert!(check_stream(&mut f, len).is_err());
        let (_d, mut f, len) = file(b"ARROW1\0\0\xff\xff\xff\x7fARROW1");
        let e = check_file(&mut f, len).unwrap_err();
        assert!(e.contains("longer than the file"), "{e}");
    }
}
