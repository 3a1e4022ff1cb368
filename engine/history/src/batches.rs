//! Record batches out of a columnar file, one at a time.
//!
//! The three decoders (Arrow IPC file, Arrow IPC stream, Parquet) differ in
//! how they open a file and in what they know up front (the IPC file and
//! Parquet footers give the row count; a stream does not), and agree on
//! what matters here: each yields record batches in file order and holds
//! only the batch being decoded. This module hides the difference behind
//! [`Batches`].

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use arrow_array::RecordBatch;
use arrow_ipc::reader::{FileReader, StreamReader};
use arrow_schema::SchemaRef;
use candlewick_market::{DataError, DataErrorKind};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::reader::ChunkReader;

use crate::ipc_frames;
use crate::schema::Layout;
use crate::Format;

/// Rows per decoded Parquet batch: large enough to amortise decoding, small
/// enough (8192 x 7 columns x 8 bytes ≈ 450 KiB) to keep memory flat.
pub(crate) const PARQUET_BATCH: usize = 8192;

/// The IPC file format starts with these six bytes; a stream does not.
const ARROW_MAGIC: &[u8; 6] = b"ARROW1";

/// A columnar file's batches, in order.
pub(crate) struct Batches {
    decoder: Decoder,
    schema: SchemaRef,
    /// Rows in the file, when its footer says.
    total_rows: Option<u64>,
    /// A decoder panicked: its state is unknown, nothing more is read.
    failed: bool,
}

enum Decoder {
    IpcFile(FileReader<BufReader<File>>),
    IpcStream(StreamReader<BufReader<File>>),
    Parquet(ParquetRecordBatchReader),
}

impl Batches {
    /// Opens `path` as `format` (Arrow or Parquet). With `symbols_only`,
    /// decodes just the `symbol` column (for listing a file's symbols);
    /// such a file must have one.
    ///
    /// arrow-rs and parquet have known panics on malformed input: a panic
    /// while opening or decoding becomes the same "cannot read" error as a
    /// decoder's own, and the stream ends there.
    pub(crate) fn open(
        path: &Path,
        format: Format,
        symbols_only: bool,
    ) -> Result<Batches, DataError> {
        std::panic::catch_unwind(|| Batches::open_unguarded(path, format, symbols_only))
            .unwrap_or_else(|_| Err(DataError::new(path, 0, decoder_panicked())))
    }

    fn open_unguarded(
        path: &Path,
        format: Format,
        symbols_only: bool,
    ) -> Result<Batches, DataError> {
        let err = |kind: DataErrorKind| DataError::new(path, 0, kind);
        let io = |e: std::io::Error| err(DataErrorKind::Io(e));
        let mut file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(err(DataErrorKind::Empty));
        }
        match format {
            Format::Parquet => {
                // Mapped where the file allows it, for decoding: pages are
                // then sliced out of the page cache instead of read into
                // fresh buffers. Listing symbols reads only the footer and
                // one column, so it reads them from the file instead of
                // mapping (and populating) all of it.
                let mapped = (!symbols_only).then(|| crate::map_file(path)).flatten();
                let opened = match mapped {
                    Some(bytes) => parquet_batches(bytes, symbols_only),
                    None => parquet_batches(file, symbols_only),
                };
                opened.map_err(err)
            }
            Format::Arrow | Format::Csv => {
                let mut magic = [0u8; 6];
                let is_file = file.read_exact(&mut magic).is_ok() && &magic == ARROW_MAGIC;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                // Every declared length must fit in the file before
                // arrow-ipc allocates for it (see `ipc_frames`).
                let len = file.metadata().map_err(io)?.len();
                let framed = if is_file {
                    ipc_frames::check_file(&mut file, len)
                } else {
                    ipc_frames::check_stream(&mut file, len)
                };
                framed.map_err(|reason| err(invalid(reason)))?;
                let input = BufReader::with_capacity(1 << 16, file);
                if is_file {
                    // IPC decoding is a copy at most, so listing symbols
                    // reads whole batches rather than projecting.
                    let reader = FileReader::try_new(input, None).map_err(|e| err(invalid(e)))?;
                    let schema = reader.schema();
                    Layout::of(&schema).map_err(err)?;
                    Ok(Batches {
                        schema,
                        decoder: Decoder::IpcFile(reader),
                        total_rows: None,
                        failed: false,
                    })
                } else {
                    let reader = StreamReader::try_new(input, None).map_err(|e| err(invalid(e)))?;
                    let schema = reader.schema();
                    Layout::of(&schema).map_err(err)?;
                    Ok(Batches {
                        decoder: Decoder::IpcStream(reader),
                        schema,
                        total_rows: None,
                        failed: false,
                    })
                }
            }
        }
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub(crate) fn total_rows(&self) -> Option<u64> {
        self.total_rows
    }

    /// The next batch; `None` at the end of the file.
    pub(crate) fn next_batch(&mut self) -> Option<Result<RecordBatch, DataErrorKind>> {
        if self.failed {
            return None;
        }
        let decoder = &mut self.decoder;
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match decoder {
            Decoder::IpcFile(r) => r.next().map(|b| b.map_err(invalid)),
            Decoder::IpcStream(r) => r.next().map(|b| b.map_err(invalid)),
            Decoder::Parquet(r) => r.next().map(|b| b.map_err(invalid)),
        }));
        next.unwrap_or_else(|_| {
            self.failed = true;
            Some(Err(decoder_panicked()))
        })
    }
}

/// A Parquet file's batches from `input` (the file, or its mapped bytes).
fn parquet_batches<R: ChunkReader + 'static>(
    input: R,
    symbols_only: bool,
) -> Result<Batches, DataErrorKind> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(invalid)?
        .with_batch_size(PARQUET_BATCH);
    let schema = builder.schema().clone();
    let layout = Layout::of(&schema)?;
    let total = u64::try_from(builder.metadata().file_metadata().num_rows()).ok();
    let builder = match (symbols_only, layout.symbol_index()) {
        (true, Some(i)) => {
            let mask = ProjectionMask::roots(builder.parquet_schema(), [i]);
            builder.with_projection(mask)
        }
        _ => builder,
    };
    let reader = builder.build().map_err(invalid)?;
    // The projected reader's schema holds only what it decodes.
    let schema = if symbols_only {
        reader_schema(&reader)
    } else {
        schema
    };
    Ok(Batches {
        decoder: Decoder::Parquet(reader),
        schema,
        total_rows: total,
        failed: false,
    })
}

fn reader_schema(reader: &ParquetRecordBatchReader) -> SchemaRef {
    use arrow_array::RecordBatchReader;
    reader.schema()
}

/// A panic inside arrow-rs or parquet, as a "cannot read" fault.
fn decoder_panicked() -> DataErrorKind {
    invalid("the decoder failed on malformed data (it panicked; the file is corrupt)")
}

/// A decoder's error as a "cannot read" fault: the file is corrupt,
/// truncated or not what its name says.
fn invalid(e: impl std::fmt::Display) -> DataErrorKind {
    DataErrorKind::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    ))
}
