//! The candle schema (DESIGN §4) and how a record batch's columns are
//! found and read.
//!
//! Writers always produce [`candle_schema`]. Readers are lenient about
//! what does not change meaning and strict about what does: columns are
//! found by name in any order and extra columns are ignored; `open_time`
//! may be a timestamp of any unit (converted to milliseconds; the time
//! zone is display metadata in Arrow, instants are always UTC) or a plain
//! `Int64` of milliseconds; `symbol` may be dictionary-encoded or plain
//! utf8. Prices must be `Float64`, and no value may be null.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use candlewick_market::DataErrorKind;

/// Column names, in the order writers lay them out.
pub const OPEN_TIME: &str = "open_time";
pub const PRICES: [&str; 5] = ["open", "high", "low", "close", "volume"];
pub const SYMBOL: &str = "symbol";

/// The type of the `symbol` column as written: dictionary of `Int32`
/// keys over utf8 values.
pub fn symbol_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The schema writers produce; `with_symbol` adds the `symbol` column last.
pub fn candle_schema(with_symbol: bool) -> SchemaRef {
    let mut fields = vec![Field::new(
        OPEN_TIME,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        false,
    )];
    fields.extend(
        PRICES
            .iter()
            .map(|name| Field::new(*name, DataType::Float64, false)),
    );
    if with_symbol {
        fields.push(Field::new(SYMBOL, symbol_type(), false));
    }
    Arc::new(Schema::new(fields))
}

/// Where the candle columns are in a file's schema, checked once per file.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    time: usize,
    time_unit: Option<TimeUnit>,
    prices: [usize; 5],
    symbol: Option<usize>,
}

impl Layout {
    /// Finds and type-checks the candle columns of `schema`.
    pub(crate) fn of(schema: &Schema) -> Result<Layout, DataErrorKind> {
        let find = |name: &'static str| {
            schema
                .index_of(name)
                .map_err(|_| DataErrorKind::MissingColumn(name))
        };
        let time = find(OPEN_TIME)?;
        let time_unit = match schema.field(time).data_type() {
            DataType::Timestamp(unit, _) => Some(*unit),
            DataType::Int64 => None,
            other => return Err(wrong_type(OPEN_TIME, other, "a timestamp or Int64 (ms)")),
        };
        let mut prices = [0; 5];
        for (slot, name) in prices.iter_mut().zip(PRICES) {
            *slot = find(name)?;
            let t = schema.field(*slot).data_type();
            if *t != DataType::Float64 {
                return Err(wrong_type(name, t, "Float64"));
            }
        }
        let symbol = match schema.index_of(SYMBOL) {
            Err(_) => None,
            Ok(i) => {
                let t = schema.field(i).data_type();
                let ok = match t {
                    DataType::Utf8 | DataType::LargeUtf8 => true,
                    DataType::Dictionary(key, value) => {
                        key.is_integer() && matches!(**value, DataType::Utf8 | DataType::LargeUtf8)
                    }
                    _ => false,
                };
                if !ok {
                    return Err(wrong_type(SYMBOL, t, "utf8 or a dictionary of utf8"));
                }
                Some(i)
            }
        };
        Ok(Layout {
            time,
            time_unit,
            prices,
            symbol,
        })
    }

    pub(crate) fn has_symbol(&self) -> bool {
        self.symbol.is_some()
    }

    /// The column index of `symbol`, for projections.
    pub(crate) fn symbol_index(&self) -> Option<usize> {
        self.symbol
    }

    /// Binds one batch's columns for row access.
    /// A null is not reported here but at its row ([`Bound::first_null`]),
    /// so that faults come out in row order.
    pub(crate) fn bind(&self, batch: &RecordBatch) -> Result<Bound, DataErrorKind> {
        let time = times_ms(batch.column(self.time), self.time_unit);
        let prices = self.prices.map(|i| batch.column(i).as_primitive().clone());
        let symbols = self
            .symbol
            .map(|i| SymbolColumn::new(batch.column(i)))
            .transpose()?;
        let mut bound = Bound {
            time,
            prices,
            symbols,
            first_null: None,
        };
        bound.first_null = bound.check_nulls().err();
        Ok(bound)
    }
}

fn wrong_type(column: &'static str, found: &DataType, want: &str) -> DataErrorKind {
    DataErrorKind::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("column {column} is {found}, expected {want}"),
    ))
}

/// Converts any timestamp column (or Int64 of ms) to milliseconds,
/// flooring sub-millisecond units. Nulls stay nulls.
fn times_ms(column: &ArrayRef, unit: Option<TimeUnit>) -> arrow_array::Int64Array {
    use arrow_array::PrimitiveArray;
    let convert =
        |values: Vec<Option<i64>>| values.into_iter().collect::<PrimitiveArray<Int64Type>>();
    match unit {
        None => column.as_primitive::<Int64Type>().clone(),
        Some(TimeUnit::Millisecond) => column
            .as_primitive::<TimestampMillisecondType>()
            .reinterpret_cast::<Int64Type>(),
        Some(TimeUnit::Second) => convert(
            column
                .as_primitive::<TimestampSecondType>()
                .iter()
                .map(|v| v.map(|s| s.saturating_mul(1000)))
                .collect(),
        ),
        Some(TimeUnit::Microsecond) => convert(
            column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.map(|us| us.div_euclid(1000)))
                .collect(),
        ),
        Some(TimeUnit::Nanosecond) => convert(
            column
                .as_primitive::<TimestampNanosecondType>()
                .iter()
                .map(|v| v.map(|ns| ns.div_euclid(1_000_000)))
                .collect(),
        ),
    }
}

/// A batch's symbol column as a key per row into the batch's own list of
/// names (a dictionary's values, or names gathered from plain strings).
pub(crate) struct SymbolColumn {
    /// Per row: index into `names`; `None` for a null.
    keys: Vec<Option<u32>>,
    names: Vec<String>,
}

impl SymbolColumn {
    fn new(column: &ArrayRef) -> Result<SymbolColumn, DataErrorKind> {
        match column.data_type() {
            DataType::Dictionary(key, _) => {
                macro_rules! dict {
                    ($t:ty) => {{
                        let d = column.as_dictionary::<$t>();
                        let names = strings(d.values());
                        let keys = (0..d.len())
                            .map(|i| {
                                d.is_valid(i)
                                    .then(|| d.keys().value(i).to_key_u32())
                                    .flatten()
                            })
                            .collect();
                        (keys, names)
                    }};
                }
                let (keys, names): (Vec<Option<u32>>, Vec<String>) = match **key {
                    DataType::Int8 => dict!(Int8Type),
                    DataType::Int16 => dict!(Int16Type),
                    DataType::Int32 => dict!(Int32Type),
                    DataType::Int64 => dict!(Int64Type),
                    DataType::UInt8 => dict!(UInt8Type),
                    DataType::UInt16 => dict!(UInt16Type),
                    DataType::UInt32 => dict!(UInt32Type),
                    _ => {
                        return Err(wrong_type(
                            SYMBOL,
                            column.data_type(),
                            "a dictionary of utf8",
                        ))
                    }
                };
                Ok(SymbolColumn { keys, names })
            }
            _ => {
                let all = strings(column);
                let mut names: Vec<String> = Vec::new();
                let keys = (0..column.len())
                    .map(|i| {
                        column.is_valid(i).then(|| {
                            let s = &all[i];
                            match names.iter().position(|n| n == s) {
                                Some(k) => k as u32,
                                None => {
                                    names.push(s.clone());
                                    (names.len() - 1) as u32
                                }
                            }
                        })
                    })
                    .collect();
                Ok(SymbolColumn { keys, names })
            }
        }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn key(&self, row: usize) -> Option<u32> {
        self.keys[row]
    }
}

/// A symbol column, dictionary or plain, read for its keys and names.
pub(crate) fn symbol_column(column: &ArrayRef) -> Result<SymbolColumn, DataErrorKind> {
    SymbolColumn::new(column)
}

/// The fault reported for a null in `field`.
pub(crate) fn null_fault(field: &str) -> DataErrorKind {
    DataErrorKind::Parse {
        field: field.to_owned(),
        value: "null".to_owned(),
        what: "a value (nulls are not candles)",
    }
}

/// A dictionary key as an index; negative keys are treated as null.
trait AsUsizeKey {
    fn to_key_u32(self) -> Option<u32>;
}

macro_rules! as_key {
    ($($t:ty),*) => {$(
        impl AsUsizeKey for $t {
            fn to_key_u32(self) -> Option<u32> {
                u32::try_from(self).ok()
            }
        }
    )*};
}
as_key!(i8, i16, i32, i64, u8, u16, u32);

/// The strings of a utf8 column (nulls as empty strings).
fn strings(column: &ArrayRef) -> Vec<String> {
    match column.data_type() {
        DataType::LargeUtf8 => column
            .as_string::<i64>()
            .iter()
            .map(|s| s.unwrap_or_default().to_owned())
            .collect(),
        _ => column
            .as_string::<i32>()
            .iter()
            .map(|s| s.unwrap_or_default().to_owned())
            .collect(),
    }
}

/// One batch's columns, ready for row access.
pub(crate) struct Bound {
    time: arrow_array::Int64Array,
    prices: [Float64Array; 5],
    pub(crate) symbols: Option<SymbolColumn>,
    /// The first row holding a null, and the fault to report there.
    pub(crate) first_null: Option<(usize, DataErrorKind)>,
}

impl Bound {
    pub(crate) fn len(&self) -> usize {
        self.time.len()
    }

    /// The first null in the batch, as `(row in batch, fault)`.
    fn check_nulls(&self) -> Result<(), (usize, DataErrorKind)> {
        let mut first: Option<(usize, &str)> = None;
        let mut consider = |row: Option<usize>, name: &'static str| {
            if let Some(row) = row {
                if first.is_none_or(|(r, _)| row < r) {
                    first = Some((row, name));
                }
            }
        };
        consider(first_null(&self.time), OPEN_TIME);
        for (a, name) in self.prices.iter().zip(PRICES) {
            consider(first_null(a), name);
        }
        if let Some(s) = &self.symbols {
            consider(s.keys.iter().position(Option::is_none), SYMBOL);
        }
        match first {
            Some((row, field)) => Err((row, null_fault(field))),
            None => Ok(()),
        }
    }

    /// Row `i` as `(open_time ms, [open, high, low, close, volume])`.
    #[inline]
    pub(crate) fn row(&self, i: usize) -> (i64, [f64; 5]) {
        (
            self.time.value(i),
            self.prices.each_ref().map(|a| a.value(i)),
        )
    }
}

fn first_null(a: &dyn Array) -> Option<usize> {
    if a.null_count() == 0 {
        return None;
    }
    (0..a.len()).find(|&i| a.is_null(i))
}
