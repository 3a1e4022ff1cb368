//! [`CandleWriter`]: candles into an Arrow IPC or Parquet file, a chunk at
//! a time.
//!
//! # Life of a writer
//!
//! [`CandleWriter::create`] opens `FILE.partial` beside the target; each
//! [`push`](CandleWriter::push) validates one candle and appends it to
//! column buffers; every [`WriteOptions::chunk`] rows the buffers become
//! one record batch and go to the encoder. [`CandleWriter::finish`] writes
//! the last chunk and the footer, and only then renames the file into
//! place, so an import that fails or is interrupted never leaves a file
//! under the target name. A writer dropped unfinished removes its partial
//! file.
//!
//! Memory is the chunk being filled, plus for Parquet the row group being
//! encoded ([`WriteOptions::row_group`] rows, compressed): a few megabytes
//! at the defaults, whatever the number of rows written.
//!
//! # Symbols
//!
//! The `symbol` column is dictionary-encoded against the list given at
//! creation, which is the same for every batch (the IPC file format allows
//! one dictionary per column per file). A candle for a symbol not on the
//! list is refused.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;
use candlewick_market::{Candle, DataError, DataErrorKind};
use parquet::arrow::ArrowWriter;

use crate::encoding::properties;
use crate::schema::candle_schema;
use crate::{Format, HistoryError};

/// Sizes that bound a writer's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Rows per record batch handed to the encoder. Default 65 536
    /// (about 3 MiB of buffers).
    pub chunk: usize,
    /// Rows per Parquet row group, the unit a reader decodes and the
    /// encoder holds in memory. Default 131 072.
    pub row_group: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            chunk: 1 << 16,
            row_group: 1 << 17,
        }
    }
}

enum Sink {
    Ipc(FileWriter<BufWriter<File>>),
    Parquet(ArrowWriter<File>),
}

/// Writes validated candles to an Arrow IPC or Parquet file.
pub struct CandleWriter {
    path: PathBuf,
    partial: PathBuf,
    /// `None` once finished (or failed while finishing).
    sink: Option<Sink>,
    schema: SchemaRef,
    /// Declared symbols and the dictionary values every batch shares (the
    /// same `Arc`, so the IPC writer sees one dictionary).
    symbols: Option<(Vec<String>, ArrayRef)>,
    time: Vec<i64>,
    prices: [Vec<f64>; 5],
    keys: Vec<i32>,
    /// Last time per symbol (one slot without symbols).
    previous: Vec<Option<i64>>,
    rows: u64,
    chunk: usize,
}

impl std::fmt::Debug for CandleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleWriter")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl CandleWriter {
    /// Creates a writer for `path` in `format` (Arrow or Parquet). With
    /// `symbols`, the file gets a `symbol` column over exactly those names.
    ///
    /// # Errors
    /// `format` is CSV, or the file cannot be created.
    pub fn create(
        path: &Path,
        format: Format,
        symbols: Option<&[String]>,
        options: WriteOptions,
    ) -> Result<CandleWriter, HistoryError> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let schema = candle_schema(symbols.is_some());
        let file = File::create(&partial).map_err(|source| HistoryError::Io {
            path: partial.clone(),
            source,
        })?;
        let sink = match format {
            Format::Csv => {
                let _ = std::fs::remove_file(&partial);
                return Err(HistoryError::NotWritable(path.to_path_buf()));
            }
            Format::Arrow => Sink::Ipc(FileWriter::try_new_buffered(file, &schema).map_err(
                |source| HistoryError::Arrow {
                    path: path.to_path_buf(),
                    source,
                },
            )?),
            Format::Parquet => {
                let props = properties(&schema, options.row_group);
                Sink::Parquet(
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|source| {
                        HistoryError::Parquet {
                            path: path.to_path_buf(),
                            source,
                        }
                    })?,
                )
            }
        };
        let symbols = symbols.map(|names| {
            let values: ArrayRef = Arc::new(StringArray::from_iter_values(names));
            (names.to_vec(), values)
        });
        let n_slots = symbols.as_ref().map_or(1, |(n, _)| n.len().max(1));
        let chunk = options.chunk.max(1);
        Ok(CandleWriter {
            path: path.to_path_buf(),
            partial,
            sink: Some(sink),
            schema,
            symbols,
            time: Vec::with_capacity(chunk),
            prices: std::array::from_fn(|_| Vec::with_capacity(chunk)),
            keys: Vec::new(),
            previous: vec![None; n_slots],
            rows: 0,
            chunk,
        })
    }

    /// Appends a candle of the file's only symbol (or of a file without a
    /// `symbol` column).
    ///
    /// # Errors
    /// As [`CandleWriter::push_for`]; also when the file was declared with
    /// several symbols, since it cannot tell which this is.
    pub fn push(&mut self, candle: &Candle) -> Result<(), HistoryError> {
        match &self.symbols {
            Some((names, _)) if names.len() == 1 => {
                let name = names[0].clone();
                self.push_for(Some(&name), candle)
            }
            _ => self.push_for(None, candle),
        }
    }

    /// Appends `symbol`'s candle.
    ///
    /// # Errors
    /// The candle is not well formed or not after the previous one of its
    /// symbol ([`HistoryError::Row`], numbered as a reader would); the
    /// symbol was not declared (or one was given to a file without a
    /// `symbol` column, or none to a file with one); encoding failed.
    pub fn push_for(&mut self, symbol: Option<&str>, candle: &Candle) -> Result<(), HistoryError> {
        let row = self.rows + 1;
        let slot = match (&self.symbols, symbol) {
            (None, None) => 0,
            (Some((names, _)), Some(s)) => {
                names
                    .iter()
                    .position(|n| n == s)
                    .ok_or_else(|| HistoryError::UndeclaredSymbol {
                        path: self.path.clone(),
                        symbol: s.to_owned(),
                    })?
            }
            (None, Some(s)) => {
                return Err(HistoryError::UndeclaredSymbol {
                    path: self.path.clone(),
                    symbol: s.to_owned(),
                })
            }
            (Some(_), None) => {
                return Err(HistoryError::UndeclaredSymbol {
                    path: self.path.clone(),
                    symbol: String::new(),
                })
            }
        };
        candle
            .check()
            .map_err(|f| DataError::new(&self.path, row, DataErrorKind::Candle(f)))?;
        if let Some(previous) = self.previous[slot] {
            if candle.open_time <= previous {
                return Err(DataError::new(
                    &self.path,
                    row,
                    DataErrorKind::NotIncreasing {
                        time: candle.open_time,
                        previous,
                    },
                )
                .into());
            }
        }
        self.previous[slot] = Some(candle.open_time);
        self.time.push(candle.open_time);
        let values = [
            candle.open,
            candle.high,
            candle.low,
            candle.close,
            candle.volume,
        ];
        for (column, v) in self.prices.iter_mut().zip(values) {
            column.push(v);
        }
        if self.symbols.is_some() {
            // At most i32::MAX symbols can be declared in practice: a
            // dictionary that large would not fit the chunk anyway.
            self.keys.push(i32::try_from(slot).unwrap_or(i32::MAX));
        }
        self.rows += 1;
        if self.time.len() >= self.chunk {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes what is buffered and the footer, and moves the file into
    /// place. Returns the number of rows.
    ///
    /// # Errors
    /// Encoding, writing or renaming failed; the partial file is removed.
    pub fn finish(mut self) -> Result<u64, HistoryError> {
        self.flush()?;
        let closed = match self.sink.take() {
            Some(Sink::Ipc(mut w)) => w.finish().map_err(|source| HistoryError::Arrow {
                path: self.path.clone(),
                source,
            }),
            Some(Sink::Parquet(w)) => w.close().map(drop).map_err(|source| HistoryError::Parquet {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        };
        let moved = closed.and_then(|()| {
            std::fs::rename(&self.partial, &self.path).map_err(|source| HistoryError::Io {
                path: self.path.clone(),
                source,
            })
        });
        if moved.is_err() {
            let _ = std::fs::remove_file(&self.partial);
        }
        moved.map(|()| self.rows)
    }

    /// Hands the buffered rows to the encoder as one record batch.
    fn flush(&mut self) -> Result<(), HistoryError> {
        if self.time.is_empty() {
            return Ok(());
        }
        let take = |v: &mut Vec<f64>, cap| std::mem::replace(v, Vec::with_capacity(cap));
        let cap = self.chunk;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(7);
        let time = std::mem::replace(&mut self.time, Vec::with_capacity(cap));
        columns.push(Arc::new(
            TimestampMillisecondArray::from(time).with_timezone("UTC"),
        ));
        for column in &mut self.prices {
            columns.push(Arc::new(Float64Array::from(take(column, cap))));
        }
        if let Some((_, values)) = &self.symbols {
            let keys = Int32Array::from(std::mem::take(&mut self.keys));
            let dict =
                DictionaryArray::<Int32Type>::try_new(keys, values.clone()).map_err(|source| {
                    HistoryError::Arrow {
                        path: self.path.clone(),
                        source,
                    }
                })?;
            columns.push(Arc::new(dict));
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| {
            HistoryError::Arrow {
                path: self.path.clone(),
                source,
            }
        })?;
        match &mut self.sink {
            Some(Sink::Ipc(w)) => w.write(&batch).map_err(|source| HistoryError::Arrow {
                path: self.path.clone(),
                source,
            }),
            Some(Sink::Parquet(w)) => w.write(&batch).map_err(|source| HistoryError::Parquet {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for CandleWriter {
    /// An unfinished writer leaves nothing behind.
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
