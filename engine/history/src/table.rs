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
/// bounds the writer's own buffers whatever the table's length.
const CHUNK: usize = 1 << 17;

/// One column's values, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Values<'a> {
    /// Epoch milliseconds, written as a UTC timestamp.
    Time(&'a [i64]),
    Int(&'a [i64]),
    /// NaN is written as NaN (Parquet keeps it), not as null.
    Float(&'a [f64]),
    Text(&'a [&'a str]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Time(v) | Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Values::Time(_) => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            Values::Int(_) => DataType::Int64,
            Values::Float(_) => DataType::Float64,
            Values::Text(_) => DataType::Utf8,
        }
    }

    fn slice(&self, start: usize, end: usize) -> ArrayRef {
        match self {
            Values::Time(v) => Arc::new(
                TimestampMillisecondArray::from(v[start..end].to_vec()).with_timezone("UTC"),
            ),
            Values::Int(v) => Arc::new(Int64Array::from(v[start..end].to_vec())),
            Values::Float(v) => Arc::new(Float64Array::from(v[start..end].to_vec())),
            Values::Text(v) => Arc::new(StringArray::from_iter_values(&v[start..end])),
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
    let rows = columns.first().map_or(0, |(_, v)| v.len());
    if let Some((name, values)) = columns.iter().find(|(_, v)| v.len() != rows) {
        return Err(HistoryError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!(
                "column {name} has {} values for {rows} rows",
                values.len()
            )),
        });
    }
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, v)| Field::new(*name, v.data_type(), false))
            .collect::<Vec<_>>(),
    ));
    let partial = partial_path(path);
    let written = write(&partial, path, schema, columns, rows).and_then(|()| {
        std::fs::rename(&partial, path).map_err(|source| HistoryError::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written.map(|()| rows as u64)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    PathBuf::from(partial)
}

fn write(
    partial: &Path,
    path: &Path,
    schema: Arc<Schema>,
    columns: &[Column<'_>],
    rows: usize,
) -> Result<(), HistoryError> {
    let parquet_err = |source| HistoryError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(partial).map_err(|source| HistoryError::Io {
        path: partial.to_path_buf(),
        source,
    })?;
    let props = properties(&schema, CHUNK);
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(parquet_err)?;
    for start in (0..rows).step_by(CHUNK) {
        let end = (start + CHUNK).min(rows);
        let arrays: Vec<ArrayRef> = columns.iter().map(|(_, v)| v.slice(start, end)).collect();
        let batch =
            RecordBatch::try_new(schema.clone(), arrays).map_err(|source| HistoryError::Arrow {
                path: path.to_path_buf(),
                source,
            })?;
        writer.write(&batch).map_err(parquet_err)?;
    }
    writer.close().map_err(parquet_err)?;
    Ok(())
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
        let n = CHUNK + 123;
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
}
