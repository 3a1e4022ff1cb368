//! [`CandleReader`]: one validated candle stream from a CSV, Arrow IPC or
//! Parquet file, the format chosen by the file's extension.
//!
//! # Life of a reader
//!
//! [`CandleReader::open`] reads only what it must to know the file's
//! layout: a CSV's first line, a columnar file's schema. Rows are then
//! decoded one batch at a time as they are asked for, each one checked
//! (see the crate docs) before it is handed out. The first bad row ends
//! the stream: it is returned as an error naming the file and row, and
//! every later call returns `None`, so a consumer can never read past a
//! fault by accident.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candlewick_market::{Candle, CsvReader, DataError, DataErrorKind};

use crate::batches::Batches;
use crate::schema::{Bound, Layout, SYMBOL};
use crate::Format;

/// One row of a history file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// The row's symbol; `None` in a file without a `symbol` column.
    pub symbol: Option<&'a str>,
    pub candle: Candle,
}

/// How far a reader is through its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Units done: bytes for CSV, rows for the columnar formats.
    pub done: u64,
    /// Units in the file, where known (CSV and Parquet; not Arrow IPC,
    /// whose footer does not count rows).
    pub total: Option<u64>,
    /// `"bytes"` or `"rows"`.
    pub unit: &'static str,
}

/// Validated candles from a history file of any format.
///
/// As an [`Iterator`] it yields the candles of one series: of the file, if
/// it holds at most one symbol, or of the symbol chosen with
/// [`CandleReader::only`]. [`CandleReader::next_row`] yields every row with
/// its symbol. Either way every row of the file is validated, including
/// rows of symbols that are not handed out.
///
/// ```no_run
/// # fn main() -> Result<(), candlewick_market::DataError> {
/// use candlewick_history::CandleReader;
/// for candle in CandleReader::open("history/BTCUSDT-1m.parquet".as_ref())? {
///     let candle = candle?; // stops at the first bad row, naming it
///     println!("{} {}", candle.open_time, candle.close);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CandleReader {
    path: PathBuf,
    format: Format,
    inner: Inner,
    /// The one symbol the iterator hands out, if chosen.
    only: Option<String>,
    /// Without `only`: the id of the first symbol seen (a second is an error).
    first_symbol: Option<u32>,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per reader, created once: the size is irrelevant
enum Inner {
    Csv {
        reader: CsvReader<BufReader<File>>,
        size: u64,
    },
    Columnar(Box<Columnar>),
}

impl CandleReader {
    /// Opens `path`, choosing the format by its extension ([`Format`]).
    ///
    /// # Errors
    /// The name gives no known format, or the file cannot be read, is
    /// empty, or lacks a column (CSV header or columnar schema) or has one
    /// of the wrong type.
    pub fn open(path: &Path) -> Result<CandleReader, DataError> {
        let format = Format::from_path(path).map_err(|e| {
            DataError::new(
                path,
                0,
                DataErrorKind::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    strip_path(&e.to_string(), path),
                )),
            )
        })?;
        let inner = match format {
            Format::Csv => {
                let size = std::fs::metadata(path)
                    .map_err(|e| DataError::new(path, 0, e.into()))?
                    .len();
                Inner::Csv {
                    reader: CsvReader::open(path)?,
                    size,
                }
            }
            Format::Arrow | Format::Parquet => {
                let batches = Batches::open(path, format, false)?;
                let layout =
                    Layout::of(batches.schema()).map_err(|k| DataError::new(path, 0, k))?;
                Inner::Columnar(Box::new(Columnar::new(path, batches, layout)))
            }
        };
        Ok(CandleReader {
            path: path.to_path_buf(),
            format,
            inner,
            only: None,
            first_symbol: None,
        })
    }

    /// Makes the iterator hand out only `symbol`'s candles. A file without
    /// a `symbol` column has none.
    pub fn only(mut self, symbol: &str) -> CandleReader {
        self.only = Some(symbol.to_owned());
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has a `symbol` column.
    pub fn has_symbols(&self) -> bool {
        match &self.inner {
            Inner::Csv { .. } => false,
            Inner::Columnar(c) => c.layout.has_symbol(),
        }
    }

    pub fn progress(&self) -> Progress {
        match &self.inner {
            Inner::Csv { reader, size } => Progress {
                done: reader.bytes_read(),
                total: Some(*size),
                unit: "bytes",
            },
            Inner::Columnar(c) => Progress {
                done: c.rows_done(),
                total: c.batches.total_rows(),
                unit: "rows",
            },
        }
    }

    /// The next row and its symbol, validated; `None` at the end, or after
    /// an error.
    pub fn next_row(&mut self) -> Option<Result<Row<'_>, DataError>> {
        match &mut self.inner {
            Inner::Csv { reader, .. } => reader.next().map(|r| {
                r.map(|candle| Row {
                    symbol: None,
                    candle,
                })
            }),
            Inner::Columnar(c) => c.next_tagged().map(|r| {
                r.map(|(id, candle, _)| Row {
                    symbol: c.name(id),
                    candle,
                })
            }),
        }
    }
}

impl Iterator for CandleReader {
    type Item = Result<Candle, DataError>;

    /// At most the rows a columnar file has left (its metadata says how
    /// many), so that a consumer can size its buffers once; no bound for
    /// a CSV, or for one symbol picked out of several.
    fn size_hint(&self) -> (usize, Option<usize>) {
        match (&self.inner, &self.only) {
            (Inner::Columnar(c), None) => {
                let left = c
                    .batches
                    .total_rows()
                    .map(|total| total.saturating_sub(c.rows_done()));
                (0, left.and_then(|n| usize::try_from(n).ok()))
            }
            _ => (0, None),
        }
    }

    fn next(&mut self) -> Option<Self::Item> {
        let c = match &mut self.inner {
            Inner::Csv { reader, .. } => {
                return if self.only.is_some() {
                    // No symbol column: no row is the chosen symbol's.
                    reader.find_map(|r| r.err().map(Err))
                } else {
                    reader.next()
                };
            }
            Inner::Columnar(c) => c,
        };
        loop {
            let (id, candle, line) = match c.next_tagged()? {
                Ok(row) => row,
                Err(e) => return Some(Err(e)),
            };
            if !c.layout.has_symbol() {
                if self.only.is_some() {
                    continue;
                }
                return Some(Ok(candle));
            }
            match &self.only {
                Some(want) => {
                    if c.name(id) == Some(want.as_str()) {
                        return Some(Ok(candle));
                    }
                }
                None => match self.first_symbol {
                    None => {
                        self.first_symbol = Some(id);
                        return Some(Ok(candle));
                    }
                    Some(first) if first == id => return Some(Ok(candle)),
                    Some(first) => {
                        c.done = true;
                        let msg = format!(
                            "field {SYMBOL}: {:?} after {:?}; this file holds several symbols, \
                             so choose one (e.g. --symbol)",
                            c.name(id).unwrap_or_default(),
                            c.name(first).unwrap_or_default()
                        );
                        return Some(Err(DataError::new(
                            &self.path,
                            line,
                            DataErrorKind::Io(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                msg,
                            )),
                        )));
                    }
                },
            }
        }
    }
}

/// The symbols of a history file, sorted by name; empty for a file
/// without a `symbol` column (every CSV). Reads only the `symbol` column
/// where the format allows (Parquet).
///
/// # Errors
/// As [`CandleReader::open`], or a null symbol.
pub fn symbols(path: &Path) -> Result<Vec<String>, DataError> {
    let format = match Format::from_path(path) {
        Ok(Format::Csv) => return CandleReader::open(path).map(|_| Vec::new()),
        Ok(f) => f,
        Err(_) => return CandleReader::open(path).map(|_| Vec::new()),
    };
    let mut batches = Batches::open(path, format, true)?;
    let Some(index) = batches.schema().index_of(SYMBOL).ok() else {
        return Ok(Vec::new());
    };
    let mut names = std::collections::BTreeSet::new();
    let mut rows = 0u64;
    while let Some(batch) = batches.next_batch() {
        let batch = batch.map_err(|k| DataError::new(path, 0, k))?;
        let layout_free = crate::schema::symbol_column(batch.column(index))
            .map_err(|k| DataError::new(path, 0, k))?;
        if let Some(row) = (0..batch.num_rows()).find(|&i| layout_free.key(i).is_none()) {
            return Err(DataError::new(
                path,
                rows + row as u64 + 1,
                crate::schema::null_fault(SYMBOL),
            ));
        }
        for name in layout_free.names() {
            if !names.contains(name) {
                names.insert(name.clone());
            }
        }
        rows += batch.num_rows() as u64;
    }
    Ok(names.into_iter().collect())
}

/// Messages from [`crate::HistoryError`] start with the path, which
/// [`DataError`] prints itself.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}

/// The columnar half of a reader: batches in, checked rows out.
struct Columnar {
    path: PathBuf,
    batches: Batches,
    layout: Layout,
    /// The batch being handed out, and the next row in it.
    bound: Option<Bound>,
    next: usize,
    /// Rows in the batches before `bound` (row numbers are file-wide).
    rows_before: u64,
    /// Symbol names, interned across batches: a row's id indexes this.
    names: Vec<String>,
    /// `names` inverted, so interning is O(1) per name (a file with many
    /// symbols must not cost symbols² per batch).
    ids: std::collections::HashMap<String, u32>,
    /// For the current batch: its symbol keys to ids in `names`.
    key_to_id: Vec<u32>,
    /// Per symbol id (one slot without a symbol column): last time seen.
    previous: Vec<Option<i64>>,
    /// Set at end of input or after an error: the stream is fused.
    done: bool,
}

impl std::fmt::Debug for Columnar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Columnar")
            .field("path", &self.path)
            .field("rows_done", &self.rows_done())
            .field("symbols", &self.names)
            .finish_non_exhaustive()
    }
}

impl Columnar {
    fn new(path: &Path, batches: Batches, layout: Layout) -> Self {
        Columnar {
            path: path.to_path_buf(),
            batches,
            layout,
            bound: None,
            next: 0,
            rows_before: 0,
            names: Vec::new(),
            ids: std::collections::HashMap::new(),
            key_to_id: Vec::new(),
            previous: vec![None],
            done: false,
        }
    }

    fn rows_done(&self) -> u64 {
        self.rows_before + self.next as u64
    }

    fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }

    fn fail(
        &mut self,
        line: u64,
        kind: DataErrorKind,
    ) -> Option<Result<(u32, Candle, u64), DataError>> {
        self.done = true;
        Some(Err(DataError::new(&self.path, line, kind)))
    }

    /// The next row as `(symbol id, candle, 1-based row number)`.
    fn next_tagged(&mut self) -> Option<Result<(u32, Candle, u64), DataError>> {
        loop {
            if self.done {
                return None;
            }
            let Some(bound) = &mut self.bound else {
                match self.load() {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Err(kind) => return self.fail(0, kind),
                }
            };
            let i = self.next;
            if i == bound.len() {
                self.rows_before += i as u64;
                self.bound = None;
                self.next = 0;
                continue;
            }
            self.next += 1;
            let line = self.rows_before + i as u64 + 1;
            if bound.first_null.as_ref().is_some_and(|(row, _)| *row == i) {
                if let Some((_, kind)) = bound.first_null.take() {
                    return self.fail(line, kind);
                }
            }
            let (open_time, [open, high, low, close, volume]) = bound.row(i);
            let id = match &bound.symbols {
                Some(s) => s.key(i).map_or(0, |k| self.key_to_id[k as usize]),
                None => 0,
            };
            let candle = Candle {
                open_time,
                open,
                high,
                low,
                close,
                volume,
            };
            if let Err(fault) = candle.check() {
                return self.fail(line, DataErrorKind::Candle(fault));
            }
            let slot = &mut self.previous[id as usize];
            if let Some(previous) = *slot {
                if open_time <= previous {
                    return self.fail(
                        line,
                        DataErrorKind::NotIncreasing {
                            time: open_time,
                            previous,
                        },
                    );
                }
            }
            *slot = Some(open_time);
            return Some(Ok((id, candle, line)));
        }
    }

    /// Decodes the next batch into `bound`; false at the end of the file.
    fn load(&mut self) -> Result<bool, DataErrorKind> {
        let Some(batch) = self.batches.next_batch() else {
            return Ok(false);
        };
        let bound = self.layout.bind(&batch?)?;
        self.key_to_id.clear();
        if let Some(symbols) = &bound.symbols {
            for name in symbols.names() {
                let id = match self.ids.get(name) {
                    Some(&id) => id,
                    None => {
                        let id = self.names.len() as u32;
                        self.names.push(name.clone());
                        self.ids.insert(name.clone(), id);
                        self.previous.push(None);
                        id
                    }
                };
                self.key_to_id.push(id);
            }
        }
        self.bound = Some(bound);
        self.next = 0;
        Ok(true)
    }
}
