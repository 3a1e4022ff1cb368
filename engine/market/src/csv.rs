//! Streaming CSV reader for the two candle dialects of DESIGN §4.
//!
//! - **Header** dialect: a header row whose first column is the timestamp
//!   and whose other columns include `Open, High, Low, Close, Volume` in
//!   any case and order (pandas' `,Open,High,Low,Close,Volume` is one).
//!   Other columns are ignored.
//! - **Binance** dialect: no header, 12 columns as in Binance's kline
//!   files and REST answers, open time in milliseconds or microseconds.
//!
//! The dialect is detected from the first line. The reader holds one line
//! in a reused buffer, so memory stays constant in the number of rows.
//! Every row is validated ([`Candle::check`]) and times must strictly
//! increase; the first bad row ends the stream with a [`DataError`] naming
//! the line and the field. Blank lines are not data and are passed over.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::time::{epoch_integer_to_ms, parse_timestamp};
use crate::{Candle, DataError, DataErrorKind};

/// Which of the two layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvDialect {
    Header,
    Binance,
}

/// Field positions of one dialect.
#[derive(Debug, Clone)]
struct Layout {
    dialect: CsvDialect,
    /// Index of time, open, high, low, close, volume.
    columns: [usize; 6],
    /// Names used in error messages, same order as `columns`.
    names: [String; 6],
    /// Number of fields every row must have.
    width: usize,
}

/// Longest line accepted, newline included: a row is about 100 bytes and
/// a header a few hundred, so a longer line is not candle data, and
/// reading it whole could exhaust memory (a file with no newline at all).
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// `read_line` that stops after [`MAX_LINE_BYTES`]; `Ok(0)` at the end.
fn read_line_bounded<R: BufRead>(input: &mut R, buf: &mut String) -> Result<usize, DataErrorKind> {
    let n = input
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_line(buf)
        .map_err(DataErrorKind::Io)?;
    if n > MAX_LINE_BYTES {
        return Err(DataErrorKind::LineTooLong {
            limit: MAX_LINE_BYTES,
        });
    }
    Ok(n)
}

const BINANCE_WIDTH: usize = 12;
const BINANCE_NAMES: [&str; 6] = ["open_time", "open", "high", "low", "close", "volume"];
const OHLCV: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// Reads validated candles from a CSV file, one row at a time.
///
/// ```no_run
/// # fn main() -> Result<(), candlewick_market::DataError> {
/// let reader = candlewick_market::CsvReader::open("data/EURUSD-1h.csv".as_ref())?;
/// for candle in reader {
///     let candle = candle?; // stops at the first bad row, with its line
///     println!("{} {}", candle.open_time, candle.close);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CsvReader<R> {
    path: PathBuf,
    input: R,
    layout: Layout,
    /// The line held in `buf`, 1-based.
    line_no: u64,
    buf: String,
    /// A first line that was data (Binance dialect), returned before reading on.
    pending_first: bool,
    previous_time: Option<i64>,
    /// Bytes consumed so far, for progress reporting.
    consumed: u64,
    /// Set after an error or end of input: the iterator is fused.
    done: bool,
}

impl CsvReader<BufReader<File>> {
    /// Opens `path` and detects its dialect.
    ///
    /// # Errors
    /// The file cannot be read, is empty, or its header lacks a column.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::new(path, 0, e.into()))?;
        Self::new(path, BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: BufRead> CsvReader<R> {
    /// Wraps any buffered input; `path` is only used in error messages.
    ///
    /// # Errors
    /// As [`CsvReader::open`].
    pub fn new(path: &Path, mut input: R) -> Result<Self, DataError> {
        let mut buf = String::new();
        let mut line_no = 0;
        let mut consumed = 0;
        loop {
            buf.clear();
            let n = read_line_bounded(&mut input, &mut buf)
                .map_err(|kind| DataError::new(path, line_no + 1, kind))?;
            if n == 0 {
                return Err(DataError::new(path, 0, DataErrorKind::Empty));
            }
            consumed += n as u64;
            line_no += 1;
            if !buf.trim().is_empty() {
                break;
            }
        }
        let first = buf.trim_end_matches(['\r', '\n']);
        let (layout, pending_first) =
            detect(first).map_err(|kind| DataError::new(path, line_no, kind))?;
        Ok(CsvReader {
            path: path.to_path_buf(),
            input,
            layout,
            line_no,
            buf,
            pending_first,
            previous_time: None,
            consumed,
            done: false,
        })
    }

    pub fn dialect(&self) -> CsvDialect {
        self.layout.dialect
    }

    /// Bytes of input consumed so far (for progress bars).
    pub fn bytes_read(&self) -> u64 {
        self.consumed
    }

    /// Reads the next non-blank line into `buf`; false at end of input.
    fn next_line(&mut self) -> Result<bool, DataError> {
        if std::mem::take(&mut self.pending_first) {
            return Ok(true);
        }
        loop {
            self.buf.clear();
            let n = read_line_bounded(&mut self.input, &mut self.buf)
                .map_err(|kind| DataError::new(&self.path, self.line_no + 1, kind))?;
            if n == 0 {
                return Ok(false);
            }
            self.consumed += n as u64;
            self.line_no += 1;
            if !self.buf.trim().is_empty() {
                return Ok(true);
            }
        }
    }

    fn parse_row(&self) -> Result<Candle, DataErrorKind> {
        let line = self.buf.trim_end_matches(['\r', '\n']);
        let layout = &self.layout;
        let mut fields: [&str; 6] = [""; 6];
        let mut found = 0;
        for (i, field) in line.split(',').enumerate() {
            if let Some(slot) = layout.columns.iter().position(|&c| c == i) {
                fields[slot] = field.trim();
            }
            found = i + 1;
        }
        if found != layout.width {
            return Err(DataErrorKind::FieldCount {
                expected: layout.width,
                found,
            });
        }
        let open_time = match layout.dialect {
            CsvDialect::Header => parse_timestamp(fields[0]).ok(),
            CsvDialect::Binance => fields[0]
                .parse()
                .ok()
                .and_then(|v| epoch_integer_to_ms(v).ok()),
        }
        .ok_or_else(|| parse_error(&layout.names[0], fields[0], "a timestamp"))?;
        let mut values = [0.0; 5];
        for (k, v) in values.iter_mut().enumerate() {
            *v = fields[k + 1]
                .parse()
                .map_err(|_| parse_error(&layout.names[k + 1], fields[k + 1], "a number"))?;
        }
        let [open, high, low, close, volume] = values;
        let candle = Candle {
            open_time,
            open,
            high,
            low,
            close,
            volume,
        };
        candle.check().map_err(DataErrorKind::Candle)?;
        Ok(candle)
    }
}

fn parse_error(field: &str, value: &str, what: &'static str) -> DataErrorKind {
    DataErrorKind::Parse {
        field: field.to_owned(),
        value: value.chars().take(40).collect(),
        what,
    }
}

/// Works out the layout from the first non-blank line. Returns whether
/// that line is data (and so must be read as the first row).
fn detect(first: &str) -> Result<(Layout, bool), DataErrorKind> {
    let fields: Vec<&str> = first.split(',').map(str::trim).collect();
    let first_is_integer = !fields[0].is_empty() && fields[0].bytes().all(|b| b.is_ascii_digit());
    if first_is_integer {
        let layout = Layout {
            dialect: CsvDialect::Binance,
            columns: [0, 1, 2, 3, 4, 5],
            names: BINANCE_NAMES.map(str::to_owned),
            width: BINANCE_WIDTH,
        };
        return Ok((layout, true));
    }
    let lower: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
    let mut columns = [0; 6];
    let mut names: [String; 6] = Default::default();
    names[0] = if fields[0].is_empty() {
        "time".to_owned()
    } else {
        fields[0].to_owned()
    };
    for (k, want) in OHLCV.iter().enumerate() {
        let i = lower
            .iter()
            .skip(1)
            .position(|h| h == want)
            .ok_or_else(|| DataErrorKind::CsvHeader {
                missing: want,
                found: first.chars().take(80).collect(),
            })?
            + 1;
        columns[k + 1] = i;
        names[k + 1] = fields[i].to_owned();
    }
    Ok((
        Layout {
            dialect: CsvDialect::Header,
            columns,
            names,
            width: fields.len(),
        },
        false,
    ))
}

impl<R: BufRead> Iterator for CsvReader<R> {
    type Item = Result<Candle, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = match self.next_line() {
            Ok(false) => {
                self.done = true;
                return None;
            }
            Ok(true) => self.parse_row().and_then(|c| match self.previous_time {
                Some(previous) if c.open_time <= previous => Err(DataErrorKind::NotIncreasing {
                    time: c.open_time,
                    previous,
                }),
                _ => Ok(c),
            }),
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        match result {
            Ok(c) => {
                self.previous_time = Some(c.open_time);
                Some(Ok(c))
            }
            Err(kind) => {
                self.done = true;
                Some(Err(DataError::new(&self.path, self.line_no, kind)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read(text: &str) -> Result<Vec<Candle>, DataError> {
        CsvReader::new(Path::new("t.csv"), Cursor::new(text.to_owned()))?.collect()
    }

    fn err(text: &str) -> String {
        read(text).unwrap_err().to_string()
    }

    const HEAD: &str = ",Open,High,Low,Close,Volume\n";

    #[test]
    fn reads_the_header_dialect_in_any_case_and_order() {
        let rows = read(&format!(
            "{HEAD}2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n"
        ))
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].open_time, 1_492_592_400_000);
        assert_eq!(rows[0].low, 1.07083);
        let rows =
            read("Date,volume,CLOSE,low,high,open,extra\n2004-08-19,5,2,1,3,1.5,x\r\n").unwrap();
        assert_eq!(
            (
                rows[0].open,
                rows[0].high,
                rows[0].low,
                rows[0].close,
                rows[0].volume
            ),
            (1.5, 3.0, 1.0, 2.0, 5.0)
        );
    }

    #[test]
    fn reads_binance_rows_in_ms_and_us() {
        let ms = "1700000000000,1,2,0.5,1.5,10,1700000059999,15,3,5,7,0\n";
        let us = "1735689600000000,1,2,0.5,1.5,10,1735689659999999,15,3,5,7,0\n";
        let rows = read(&format!("{ms}{us}")).unwrap();
        assert_eq!(rows[0].open_time, 1_700_000_000_000);
        assert_eq!(rows[1].open_time, 1_735_689_600_000);
    }

    #[test]
    fn every_bad_row_names_its_line_and_field() {
        let row = |s: &str| format!("{HEAD}2017-04-19 09:00:00,1,2,0.5,1.5,10\n{s}\n");
        assert_eq!(
            err(&row("2017-04-19 10:00:00,1,2,0.5,NaN,10")),
            "t.csv:3: close is not a finite number"
        );
        assert_eq!(
            err(&row("2017-04-19 10:00:00,1,2,x,1.5,10")),
            "t.csv:3: field Low: cannot parse \"x\" as a number"
        );
        assert_eq!(
            err(&row("2017-04-19 10:00:00,1,0.4,0.5,0.45,10")),
            "t.csv:3: high is below low"
        );
        assert_eq!(
            err(&row("2017-04-19 08:00:00,1,2,0.5,1.5,10")),
            "t.csv:3: timestamp 1492588800000 is not after the previous one (1492592400000); times must strictly increase"
        );
        assert_eq!(
            err(&row("2017-04-19 10:00:00,1,2,0.5")),
            "t.csv:3: expected 6 fields, found 4 (truncated or malformed line)"
        );
        assert_eq!(
            err(&row("2017-04-19 25:00:00,1,2,0.5,1.5,10")),
            "t.csv:3: field time: cannot parse \"2017-04-19 25:00:00\" as a timestamp"
        );
        assert_eq!(
            err(",Open,High,Low,Volume\n"),
            "t.csv:1: header has no close column (it reads \",Open,High,Low,Volume\"); a candle \
             CSV's first line names the time column, then open, high, low, close and volume in \
             any case and order (more columns are fine), or the file is Binance kline rows \
             without a header"
        );
        assert_eq!(err(""), "t.csv: the file is empty");
    }

    #[test]
    fn stops_at_the_first_error() {
        let text = format!(
            "{HEAD}2017-04-19 09:00:00,1,2,0.5,1.5,-1\n2017-04-19 10:00:00,1,2,0.5,1.5,10\n"
        );
        let mut reader = CsvReader::new(Path::new("t.csv"), Cursor::new(text)).unwrap();
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none());
    }

    #[test]
    fn passes_over_blank_lines_but_counts_them() {
        let rows = read(&format!("\n{HEAD}\n2017-04-19 09:00:00,1,2,0.5,1.5,10\n\n")).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            err(&format!("{HEAD}\n\n2017-04-19 09:00:00,1,2,0.5,1.5,-1\n")),
            "t.csv:4: volume is negative"
        );
    }

    #[test]
    fn a_line_over_the_limit_is_an_error_not_a_huge_allocation() {
        let long = format!(
            "time,open,high,low,close,volume\n{}\n",
            "1".repeat(MAX_LINE_BYTES + 10)
        );
        let e = err(&long);
        assert!(e.contains(":2:") && e.contains("longer than"), "{e}");
        // No newline at all, in the header.
        let e = CsvReader::new(
            "x.csv".as_ref(),
            std::io::Cursor::new("t".repeat(MAX_LINE_BYTES * 4)),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(":1:") && e.contains("longer than"), "{e}");
        // Exactly at the limit still reads (and then fails for its content).
        let edge = format!(
            "time,open,high,low,close,volume\n{}\n",
            "2".repeat(MAX_LINE_BYTES - 1)
        );
        assert!(!err(&edge).contains("longer than"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_candles_or_an_error_with_its_line(text in "[0-9a-zA-Z,.:\\- \r\n]{0,600}") {
            if let Err(e) = read(&text) {
                proptest::prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            if let Ok(r) = CsvReader::new(Path::new("t.csv"), Cursor::new(bytes)) {
                for c in r.flatten() {
                    proptest::prop_assert!(c.check().is_ok());
                }
            }
        }
    }
}
