//! Which format a file is, from its name.

use std::path::Path;

use crate::HistoryError;

/// The three candle file formats of DESIGN §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Either CSV dialect (`candlewick_market::CsvReader`).
    Csv,
    /// Arrow IPC, file or stream format.
    Arrow,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// The format named by `path`'s extension, in any case: `.csv`;
    /// `.arrow`, `.ipc`, `.feather` or `.arrows`; `.parquet` or `.pq`.
    ///
    /// # Errors
    /// [`HistoryError::UnknownFormat`] for any other name.
    pub fn from_path(path: &Path) -> Result<Format, HistoryError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("arrow" | "arrows" | "ipc" | "feather") => Ok(Format::Arrow),
            Some("parquet" | "pq") => Ok(Format::Parquet),
            _ => Err(HistoryError::UnknownFormat(path.to_path_buf())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Arrow => "arrow",
            Format::Parquet => "parquet",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_extension_in_any_case() {
        let f = |p: &str| Format::from_path(Path::new(p)).ok();
        assert_eq!(f("a/b.CSV"), Some(Format::Csv));
        assert_eq!(f("b.arrow"), Some(Format::Arrow));
        assert_eq!(f("b.feather"), Some(Format::Arrow));
        assert_eq!(f("b.Parquet"), Some(Format::Parquet));
        assert_eq!(f("b.txt"), None);
        assert_eq!(f("noext"), None);
    }
}
