//! Writing indicator rows as CSV, and publishing files only when complete.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Writes `time,<column>...` rows: time as epoch milliseconds, values with
/// the shortest text that reads back to the same f64 (ryu), warm-up
/// values (NaN) as empty cells. Column names holding commas or quotes are
/// quoted as RFC 4180 says.
pub struct IndicatorWriter<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> IndicatorWriter<W> {
    pub fn new(out: W) -> Self {
        IndicatorWriter {
            out,
            line: Vec::with_capacity(1024),
        }
    }

    pub fn header(&mut self, columns: &[String]) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"time");
        for column in columns {
            self.line.push(b',');
            if column.contains([',', '"', '\n']) {
                self.line.push(b'"');
                self.line
                    .extend_from_slice(column.replace('"', "\"\"").as_bytes());
                self.line.push(b'"');
            } else {
                self.line.extend_from_slice(column.as_bytes());
            }
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    #[inline]
    pub fn row(&mut self, time: i64, values: &[f64]) -> io::Result<()> {
        self.line.clear();
        self.line
            .extend_from_slice(itoa::Buffer::new().format(time).as_bytes());
        let mut float = ryu::Buffer::new();
        for &v in values {
            self.line.push(b',');
            if v.is_finite() {
                self.line
                    .extend_from_slice(float.format_finite(v).as_bytes());
            }
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A file that appears at its path only once complete: written to
/// `PATH.partial`, renamed by [`AtomicFile::commit`], removed if dropped
/// uncommitted, so a failed run never leaves a plausible-looking half file.
pub struct AtomicFile {
    target: PathBuf,
    partial: PathBuf,
    committed: bool,
}

impl AtomicFile {
    pub fn create(target: &Path) -> anyhow::Result<(Self, BufWriter<File>)> {
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut partial = target.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let me = AtomicFile {
            target: target.to_path_buf(),
            partial,
            committed: false,
        };
        Ok((me, BufWriter::with_capacity(1 << 16, file)))
    }

    pub fn commit(mut self, file: BufWriter<File>) -> anyhow::Result<()> {
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.partial, &self.target)
            .with_context(|| format!("cannot move {} into place", self.target.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the partial file is garbage either way, and the
            // error that got us here is the one worth reporting.
            let _ = fs::remove_file(&self.partial);
        }
    }
}
