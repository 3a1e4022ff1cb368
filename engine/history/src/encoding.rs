//! How every Parquet file Candlewick writes encodes its columns.
//!
//! Parquet's default dictionary-encodes every column. For prices, equity
//! and times, nearly every value is distinct: the writer hashes each one
//! into a dictionary that overflows and is thrown away, which made it the
//! largest cost of writing a backtest's `equity.parquet` (about a fifth of
//! the whole `candlewick backtest` process at 1M bars), and the reader then
//! decodes pages of dictionary indices for nothing. So:
//!
//! - text (symbols, sides, exit reasons) keeps the dictionary: few distinct
//!   values, many rows;
//! - integers and times are delta-encoded (`DELTA_BINARY_PACKED`): a sorted
//!   minute series becomes a few bits a row;
//! - floats are written plain, then Snappy-compressed like everything else.

use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

/// Writer properties for `schema`: Snappy, row groups of at most
/// `row_group` rows, and each column's encoding chosen by its type (see
/// the module's docs).
pub(crate) fn properties(schema: &Schema, row_group: usize) -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group.max(1)))
        .set_dictionary_enabled(false);
    schema
        .fields()
        .iter()
        .fold(builder, |b, field| {
            encode(
                b,
                ColumnPath::from(field.name().as_str()),
                field.data_type(),
            )
        })
        .build()
}

fn encode(b: WriterPropertiesBuilder, column: ColumnPath, t: &DataType) -> WriterPropertiesBuilder {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
            b.set_column_dictionary_enabled(column, true)
        }
        DataType::Int32 | DataType::Int64 | DataType::Timestamp(_, _) => {
            b.set_column_encoding(column, Encoding::DELTA_BINARY_PACKED)
        }
        _ => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, TimeUnit};

    #[test]
    fn text_keeps_its_dictionary_and_numbers_do_without() {
        let schema = Schema::new(vec![
            Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("close", DataType::Float64, false),
            Field::new("side", DataType::Utf8, false),
        ]);
        let p = properties(&schema, 10);
        let col = |n: &str| ColumnPath::from(n);
        assert!(!p.dictionary_enabled(&col("time")));
        assert!(!p.dictionary_enabled(&col("close")));
        assert!(p.dictionary_enabled(&col("side")));
        assert_eq!(
            p.encoding(&col("time")),
            Some(Encoding::DELTA_BINARY_PACKED)
        );
        assert_eq!(p.encoding(&col("close")), None);
        assert_eq!(p.max_row_group_row_count(), Some(10));
    }
}
