//! Errors of the history writers. Readers report [`DataError`], the error
//! every candle source in Candlewick uses, so a backtest cannot tell (and
//! need not care) which format its candles came from.

use std::path::PathBuf;

use candlewick_market::DataError;

/// Writing a history file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file name says neither `.arrow` nor `.parquet` (or `.csv` where
    /// a reader is asked for).
    #[error("{}: unknown format; use a .csv, .arrow (or .ipc/.feather) or .parquet file", .0.display())]
    UnknownFormat(PathBuf),
    /// Writers produce the columnar formats only.
    #[error("{}: candles are written as .arrow or .parquet, not CSV", .0.display())]
    NotWritable(PathBuf),
    /// A candle handed to the writer is not well formed, or not after the
    /// previous one of its symbol. The row is 1-based, as readers count.
    #[error(transparent)]
    Row(#[from] DataError),
    /// A symbol that was not declared when the writer was created.
    #[error("{}: symbol {symbol:?} was not declared when the file was created", path.display())]
    UndeclaredSymbol { path: PathBuf, symbol: String },
    /// The file could not be created, written or renamed into place.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The Arrow IPC encoder failed.
    #[error("{}: arrow: {source}", path.display())]
    Arrow {
        path: PathBuf,
        source: arrow_schema::ArrowError,
    },
    /// The Parquet encoder failed.
    #[error("{}: parquet: {source}", path.display())]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
}
