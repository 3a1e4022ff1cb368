//! Tables other than candles (a backtest's per-bar equity, drawdown and
//! exposure; its trades): named columns of times, integers, floats or
//! text, to Parquet.
//!
//! A backtest of millions of bars has millions of such rows; Parquet keeps
//! them binary (no float formatting, a few bytes a row after Snappy) and
//! readable by pandas, polars and DuckDB. The file appears only when
//! complete, as with [`CandleWriter`](crate::CandleWriter).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::encoding::properties;
use crate::HistoryError;
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

/// Rows per record batch handed to the encoder (and per row group):
/// bounds the writer's own buffers whatever the table's length. Callers
/// that compute a column as they write ([`TableWriter`]) use it too.
pub const TABLE_CHUNK: usize = 1 << 17;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Epoch milliseconds, written as a UTC timestamp.
    Time,
    Int,
    /// NaN is written as NaN (Parquet keeps it), not as null.
    Float,
    Text,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Time => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Text => DataType::Utf8,
        }
    }
}

/// One column's values, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    Time(&'a [i64]),
    Int(&'a [i64]),
    Float(&'a [f64]),
    Text(&'a [&'a str]),
}

impl<'a> Values<'a> {
    fn len(&self) -> usize {
        match self {
            Values::Time(v) | Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Values::Time(_) => Kind::Time,
            Values::Int(_) => Kind::Int,
            Values::Float(_) => Kind::Float,
            Values::Text(_) => Kind::Text,
        }
    }

    fn slice(&self, start: usize, end: usize) -> Values<'a> {
        match *self {
            Values::Time(v) => Values::Time(&v[start..end]),
            Values::Int(v) => Values::Int(&v[start..end]),
            Values::Float(v) => Values::Float(&v[start..end]),
            Values::Text(v) => Values::Text(&v[start..end]),
        }
    }

    fn to_array(self) -> ArrayRef {
        match self {
            Values::Time(v) => {
                Arc::new(TimestampMillisecondArray::from(v.to_vec()).with_timezone("UTC"))
            }
            Values::Int(v) => Arc::new(Int64Array::from(v.to_vec())),
            Values::Float(v) => Arc::new(Float64Array::from(v.to_vec())),
            Values::Text(v) => Arc::new(StringArray::from_iter_values(v)),
        }
    }
}

/// A named column.
pub type Column<'a> = (&'a str, Values<'a>);

/// Writes `columns` (all of one length) to a Parquet file at `path`,
/// Snappy-compressed. Returns the number of rows.
///
/// # Errors
/// Columns of different lengths, or the file cannot be written; nothing is
/// left at `path` then.
pub fn write_table_parquet(path: &Path, columns: &[Column<'_>]) -> Result<u64, HistoryError> {
    let header: Vec<(&str, Kind)> = columns.iter().map(|(n, v)| (*n, v.kind())).collect();
    let mut writer = TableWriter::create(path, &header)?;
    let rows = columns.first().map_or(0, |(_, v)| v.len());
    if let Some((name, values)) = columns.iter().find(|(_, v)| v.len() != rows) {
        return Err(writer.mismatch(name, values.len(), rows));
    }
    let mut chunk = Vec::with_capacity(columns.len());
    for start in (0..rows).step_by(TABLE_CHUNK) {
        let end = (start + TABLE_CHUNK).min(rows);
        chunk.clear();
        chunk.extend(columns.iter().map(|(_, v)| v.slice(start, end)));
        writer.write(&chunk)?;
    }
    writer.finish()
}

/// A table written a chunk of rows at a time, so that a column computed
/// from others (a backtest's drawdown) never needs to exist whole. The
/// file appears at its path only on [`TableWriter::finish`]; a writer
/// dropped before, or one that failed, leaves nothing there.
pub struct TableWriter {
    path: PathBuf,
    partial: PathBuf,
    schema: Arc<Schema>,
    /// `None` once a write has failed: the file is then never finished.
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl TableWriter {
    /// Starts a table with these columns.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path, header: &[(&str, Kind)]) -> Result<Self, HistoryError> {
        let schema = Arc::new(Schema::new(
            header
                .iter()
                .map(|(name, kind)| Field::new(*name, kind.data_type(), false))
                .collect::<Vec<_>>(),
        ));
        let partial = partial_path(path);
        let file = File::create(&partial).map_err(|source| HistoryError::Io {
            path: partial.clone(),
            source,
        })?;
        let props = properties(&schema, TABLE_CHUNK);
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props));
        let mut table = TableWriter {
            path: path.to_path_buf(),
            partial,
            schema,
            writer: None,
            rows: 0,
        };
        table.writer = Some(writer.map_err(|e| table.parquet_error(e))?);
        Ok(table)
    }

    /// Appends rows: one [`Values`] per column, in the header's order, all
    /// of one length (at most [`TABLE_CHUNK`] keeps the buffers bounded).
    ///
    /// # Errors
    /// Columns that do not match the header, or the file cannot be written.
    pub fn write(&mut self, columns: &[Values<'_>]) -> Result<(), HistoryError> {
        let rows = columns.first().map_or(0, Values::len);
        let fields = self.schema.fields();
        if columns.len() != fields.len() {
            return Err(self.io_error(format!(
                "{} columns for a table of {}",
                columns.len(),
                fields.len()
            )));
        }
        for (field, values) in fields.iter().zip(columns) {
            if values.kind().data_type() != *field.data_type() {
                return Err(self.io_error(format!(
                    "column {} is {}, given {:?}",
                    field.name(),
                    field.data_type(),
                    values.kind()
                )));
            }
            if values.len() != rows {
                return Err(self.mismatch(field.name(), values.len(), rows));
            }
        }
        let arrays: Vec<ArrayRef> = columns.iter().map(|v| v.to_array()).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|source| {
            HistoryError::Arrow {
                path: self.path.clone(),
                source,
            }
        })?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.failed_earlier());
        };
        if let Err(e) = writer.write(&batch) {
            self.writer = None;
            return Err(self.parquet_error(e));
        }
        self.rows += rows as u64;
        Ok(())
    }

    /// Closes the file and moves it to its path. Returns the number of rows.
    ///
    /// # Errors
    /// The file cannot be written or renamed; nothing is left at the path.
    pub fn finish(mut self) -> Result<u64, HistoryError> {
        let writer = self.writer.take().ok_or_else(|| self.failed_earlier())?;
        writer.close().map_err(|e| self.parquet_error(e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|source| HistoryError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.partial = PathBuf::new(); // moved: nothing left to remove
        Ok(self.rows)
    }

    fn failed_earlier(&self) -> HistoryError {
        self.io_error("an earlier write to this table failed; it was not written".to_owned())
    }

    fn mismatch(&self, name: &str, len: usize, rows: usize) -> HistoryError {
        self.io_error(format!("column {name} has {len} values for {rows} rows"))
    }

    fn io_error(&self, message: String) -> HistoryError {
        HistoryError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(message),
        }
    }

    fn parquet_error(&self, source: parquet::errors::ParquetError) -> HistoryError {
        HistoryError::Parquet {
            path: self.path.clone(),
            source,
        }
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if !self.partial.as_os_str().is_empty() {
            drop(self.writer.take());
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

/// One column's values, owned (as read back).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Time(Vec<i64>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    Text(Vec<String>),
}

/// A table read back, columns in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub columns: Vec<(String, ColumnData)>,
}

impl Table {
    pub fn get(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// A float column's values.
    pub fn floats(&self, name: &str) -> Option<&[f64]> {
        match self.get(name)? {
            ColumnData::Float(v) => Some(v),
            _ => None,
        }
    }

    /// A time or integer column's values.
    pub fn ints(&self, name: &str) -> Option<&[i64]> {
        match self.get(name)? {
            ColumnData::Time(v) | ColumnData::Int(v) => Some(v),
            _ => None,
        }
    }

    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| match c {
            ColumnData::Time(v) | ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        })
    }
}

/// Reads a file written by [`write_table_parquet`].
///
/// # Errors
/// The file cannot be read, or holds a column of another type.
pub fn read_table_parquet(path: &Path) -> Result<Table, HistoryError> {
    let parquet_err = |source| HistoryError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err)?
        .build()
        .map_err(parquet_err)?;
    let mut table = Table::default();
    for batch in reader {
        let batch = batch.map_err(|source| HistoryError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        let schema = batch.schema();
        for (i, (field, array)) in schema.fields().iter().zip(batch.columns()).enumerate() {
            if table.columns.len() <= i {
                let empty = match field.data_type() {
                    DataType::Timestamp(TimeUnit::Millisecond, _) => ColumnData::Time(Vec::new()),
                    DataType::Int64 => ColumnData::Int(Vec::new()),
                    DataType::Float64 => ColumnData::Float(Vec::new()),
                    DataType::Utf8 => ColumnData::Text(Vec::new()),
                    other => {
                        return Err(HistoryError::Io {
                            path: path.to_path_buf(),
                            source: std::io::Error::other(format!(
                                "column {} is {other}, not a table column",
                                field.name()
                            )),
                        })
                    }
                };
                table.columns.push((field.name().clone(), empty));
            }
            let any = array.as_any();
            match &mut table.columns[i].1 {
                ColumnData::Time(v) => v.extend(
                    any.downcast_ref::<TimestampMillisecondArray>()
                        .into_iter()
                        .flat_map(|a| a.values().iter().copied()),
                ),
                ColumnData::Int(v) => v.extend(
                    any.downcast_ref::<Int64Array>()
                        .into_iter()
                        .flat_map(|a| a.values().iter().copied()),
                ),
                ColumnData::Float(v) => v.extend(
                    any.downcast_ref::<Float64Array>()
                        .into_iter()
                        .flat_map(|a| a.values().iter().copied()),
                ),
                ColumnData::Text(v) => v.extend(
                    any.downcast_ref::<StringArray>()
                        .into_iter()
                        .flat_map(|a| (0..a.len()).map(|j| a.value(j).to_owned())),
                ),
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_reads_back_bit_for_bit_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let n = TABLE_CHUNK + 123;
        let time: Vec<i64> = (0..n as i64)
            .map(|i| 1_600_000_000_000 + i * 60_000)
            .collect();
        let equity: Vec<f64> = (0..n).map(|i| 10_000.0 + (i as f64).sin()).collect();
        let dd: Vec<f64> = (0..n).map(|i| -((i % 97) as f64) / 7.0).collect();
        let side: Vec<&str> = (0..n)
            .map(|i| if i % 3 == 0 { "long" } else { "short" })
            .collect();
        let bars: Vec<i64> = (0..n as i64).collect();
        let columns = [
            ("time", Values::Time(&time)),
            ("bar", Values::Int(&bars)),
            ("equity", Values::Float(&equity)),
            ("drawdown_pct", Values::Float(&dd)),
            ("side", Values::Text(&side)),
        ];
        assert_eq!(write_table_parquet(&path, &columns).unwrap(), n as u64);
        let t = read_table_parquet(&path).unwrap();
        assert_eq!(t.rows(), n);
        assert_eq!(t.ints("time").unwrap(), time.as_slice());
        assert_eq!(t.ints("bar").unwrap(), bars.as_slice());
        assert_eq!(t.floats("equity").unwrap(), equity.as_slice());
        assert_eq!(t.floats("drawdown_pct").unwrap(), dd.as_slice());
        assert_eq!(
            t.get("side"),
            Some(&ColumnData::Text(
                side.iter().map(|s| s.to_string()).collect()
            ))
        );
        assert!(!dir.path().join("t.parquet.partial").exists());
    }

    #[test]
    fn a_column_of_the_wrong_length_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let columns = [
            ("time", Values::Time(&[1, 2, 3])),
            ("equity", Values::Float(&[1.0, 2.0])),
        ];
        let err = write_table_parquet(&path, &columns).unwrap_err();
        assert!(err.to_string().contains("2 values for 3 rows"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn a_table_written_in_chunks_checks_each_and_appears_only_when_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let header = [("time", Kind::Time), ("equity", Kind::Float)];
        let mut table = TableWriter::create(&path, &header).unwrap();
        table
            .write(&[Values::Time(&[1, 2]), Values::Float(&[1.0, 2.0])])
            .unwrap();
        let err = table
            .write(&[Values::Time(&[3]), Values::Int(&[3])])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("column equity is Float64, given Int"),
            "{err}"
        );
        table
            .write(&[Values::Time(&[3]), Values::Float(&[3.0])])
            .unwrap();
        assert!(!path.exists(), "not before finish");
        assert_eq!(table.finish().unwrap(), 3);
        let t = read_table_parquet(&path).unwrap();
        assert_eq!(t.ints("time").unwrap(), &[1, 2, 3]);
        assert_eq!(t.floats("equity").unwrap(), &[1.0, 2.0, 3.0]);

        // Dropped unfinished: nothing at the path, no partial file left.
        let other = dir.path().join("u.parquet");
        let mut table = TableWriter::create(&other, &header).unwrap();
        table
            .write(&[Values::Time(&[1]), Values::Float(&[1.0])])
            .unwrap();
        drop(table);
        assert!(!other.exists());
        assert!(!dir.path().join("u.parquet.partial").exists());
    }
}
