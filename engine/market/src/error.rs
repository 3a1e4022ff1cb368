//! Errors of the market-data readers, with positions.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::CandleFault;

/// An error reading market data: where it happened and what was wrong.
///
/// Displayed on one line as `FILE:LINE: field FIELD: reason`, the format
/// every Candlewick command uses for bad input. Boxed so that the `Ok`
/// path of a reader stays one register wide.
#[derive(Debug)]
pub struct DataError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    /// 1-based line number, 0 when the error is not tied to a line.
    line: u64,
    kind: DataErrorKind,
}

/// What was wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataErrorKind {
    #[error("cannot read: {0}")]
    Io(std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("the line is longer than {limit} bytes (not candle data)")]
    LineTooLong { limit: usize },
    #[error("header has no {0} column")]
    MissingColumn(&'static str),
    /// A CSV whose first line is neither a candle header nor a kline row.
    #[error(
        "header has no {missing} column (it reads {found:?}); a candle CSV's first line names \
         the time column, then open, high, low, close and volume in any case and order (more \
         columns are fine), or the file is Binance kline rows without a header"
    )]
    CsvHeader {
        missing: &'static str,
        found: String,
    },
    #[error("expected {expected} fields, found {found} (truncated or malformed line)")]
    FieldCount { expected: usize, found: usize },
    #[error("field {field}: cannot parse {value:?} as {what}")]
    Parse {
        field: String,
        value: String,
        what: &'static str,
    },
    #[error("{0}")]
    Candle(CandleFault),
    #[error(
        "timestamp {time} is not after the previous one ({previous}); times must strictly increase"
    )]
    NotIncreasing { time: i64, previous: i64 },
}

impl From<std::io::Error> for DataErrorKind {
    fn from(e: std::io::Error) -> Self {
        DataErrorKind::Io(e)
    }
}

impl DataError {
    pub fn new(path: &Path, line: u64, kind: DataErrorKind) -> Self {
        DataError(Box::new(Inner {
            path: path.to_path_buf(),
            line,
            kind,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// 1-based line number; 0 when the error concerns the whole file.
    pub fn line(&self) -> u64 {
        self.0.line
    }

    pub fn kind(&self) -> &DataErrorKind {
        &self.0.kind
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        if inner.line == 0 {
            write!(f, "{}: {}", inner.path.display(), inner.kind)
        } else {
            write!(f, "{}:{}: {}", inner.path.display(), inner.line, inner.kind)
        }
    }
}

/// No `source()`: the one-line message already carries the cause, and a
/// chain printer would otherwise repeat it.
impl std::error::Error for DataError {}
