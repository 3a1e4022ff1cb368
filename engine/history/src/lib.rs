//! Candle history on disk: Arrow IPC and Parquet files, and one reader for
//! every format a backtest or an import is handed.
//!
//! # The files
//!
//! Both columnar formats hold the schema of DESIGN §4 ([`schema`]):
//!
//! | column      | type                                 |
//! |-------------|--------------------------------------|
//! | `open_time` | timestamp, milliseconds, UTC         |
//! | `open` `high` `low` `close` `volume` | f64         |
//! | `symbol`    | optional, dictionary-encoded utf8    |
//!
//! `.arrow` files are Arrow IPC *file* format (what `pyarrow.ipc.open_file`
//! and Feather v2 read); the reader also takes the IPC *stream* format.
//! `.parquet` files are written Snappy-compressed, in row groups of
//! [`WriteOptions::row_group`] rows; times delta-encoded, prices plain, the
//! symbol dictionary-encoded (`encoding.rs` says why).
//!
//! # Streaming, in constant memory
//!
//! Nothing here holds a whole file. [`CandleWriter`] buffers one chunk of
//! rows ([`WriteOptions::chunk`]) and hands it to the format's writer as a
//! record batch; [`CandleReader`] holds one decoded batch at a time and
//! hands out its rows. A year of one-second candles (31.5 million rows)
//! goes through both in the same few megabytes as a day of them.
//!
//! # Validation
//!
//! A columnar file is as untrusted as a CSV, so [`CandleReader`] checks
//! every row exactly as `candlewick_market::CsvReader` does
//! ([`Candle::check`](candlewick_market::Candle::check), times strictly
//! increasing per symbol) and stops at the first bad one with a
//! [`DataError`](candlewick_market::DataError) naming the file and the
//! 1-based row: `prices.parquet:1042: high is below low`. Schema faults (a
//! missing column, a column of the wrong type, a null) are reported the
//! same way. Nothing is ever skipped.
//!
//! # Symbols
//!
//! A file may hold several symbols, told apart by the `symbol` column.
//! [`CandleReader::next_row`] hands out every row with its symbol; the
//! [`Iterator`] of plain candles is one series, so it needs a file with at
//! most one symbol or a chosen one ([`CandleReader::only`]).
//!
//! # Example
//!
//! ```
//! use candlewick_history::{CandleReader, CandleWriter, Format, WriteOptions};
//! use candlewick_market::Candle;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("bars.parquet");
//! let mut writer = CandleWriter::create(&path, Format::Parquet, None, WriteOptions::default()).unwrap();
//! for i in 0..3 {
//!     let p = 100.0 + i as f64;
//!     writer.push(&Candle { open_time: i * 60_000, open: p, high: p + 1.0, low: p - 1.0, close: p, volume: 5.0 }).unwrap();
//! }
//! assert_eq!(writer.finish().unwrap(), 3);
//!
//! let candles: Vec<Candle> = CandleReader::open(&path).unwrap().collect::<Result<_, _>>().unwrap();
//! assert_eq!(candles.len(), 3);
//! assert_eq!(candles[2].close, 102.0);
//! ```
// One module maps files (`mapped`), with its SAFETY argument; no other
// code here may use `unsafe`.
#![deny(unsafe_code)]

mod batches;
mod encoding;
mod error;
mod format;
mod ipc_frames;
mod mapped;
mod reader;
pub mod schema;
mod table;
mod writer;

pub use error::HistoryError;
pub use format::Format;
pub use mapped::map_file;
pub use reader::{symbols, CandleReader, Progress, Row};
pub use table::{
    read_table_parquet, write_table_parquet, Column, ColumnData, Kind, Table, TableWriter, Values,
    TABLE_CHUNK,
};
pub use writer::{CandleWriter, WriteOptions};
