//! Frames (polars `DataFrame` and `LazyFrame`) as asset outputs: how they are stored (Parquet)
//! and handed to consumers.
//!
//! The `#[asset]` macro recognises an output type named `DataFrame` or `LazyFrame` and gives it
//! a frame codec instead of serde's. The default I/O manager then writes Parquet: a DataFrame
//! as it is, a LazyFrame executed by polars' streaming engine straight into the file, so an
//! asset can produce more data than fits in memory. A consumer that takes a `LazyFrame` gets a
//! scan of that file (predicate and projection pushdown reach it); one that takes a
//! `DataFrame` gets the frame itself, or the file read back.

use std::path::Path;

use crate::asset::{BoxError, Value};

/// How Parquet data pages are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// LZ4 (Parquet's `LZ4_RAW`), the default: writing is cheap, so persisting intermediates
    /// costs little. On 10M orders the files are about 1.6x the size of zstd's, written in
    /// about a third of the time. Read by polars, pyarrow 8+, DuckDB and Spark 3.3+.
    #[default]
    Lz4,
    /// Snappy: what pyarrow writes by default; the most widely read.
    Snappy,
    /// Zstandard at a level from 1 to 22 (polars' own default is 3): the smallest files, for
    /// outputs kept long or shipped elsewhere.
    Zstd(i32),
    /// No compression.
    Uncompressed,
}

/// How frames are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameOptions {
    /// The Parquet compression.
    pub compression: ParquetCompression,
}

impl FrameOptions {
    /// These options with another compression.
    pub fn compression(mut self, compression: ParquetCompression) -> Self {
        self.compression = compression;
        self
    }
}

/// What writing a frame produced, for the materialization's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameWritten {
    /// Rows written.
    pub rows: u64,
    /// The schema, `name: type` per column.
    pub schema: String,
    /// The first rows, printed.
    pub preview: String,
    /// Whether the output was a `LazyFrame` (its consumers then read the written file, not the
    /// plan, which would run the query again).
    pub lazy: bool,
}

/// How a frame output is written to and read from a Parquet file.
#[derive(Clone, Copy)]
pub struct FrameCodec {
    /// Writes the frame at `path` (a new file; the caller renames it into place).
    pub write: fn(&Value, &Path, &FrameOptions) -> Result<FrameWritten, BoxError>,
    /// A lazy scan of the file at `path` (its footer is checked now, so a damaged file is an
    /// error at load time, not in the middle of a consumer).
    pub scan: fn(&Path) -> Result<Value, BoxError>,
    /// One lazy frame over several files, concatenated in order (every partition of a
    /// partitioned asset, for an unpartitioned consumer).
    pub scan_many: fn(&[std::path::PathBuf]) -> Result<Value, BoxError>,
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameCodec")
    }
}

/// The polars side, compiled with the `polars` feature.
#[cfg(feature = "polars")]
pub(crate) mod polars_frames {
    use std::io::Cursor;
    use std::path::Path;
    use std::sync::Arc;

    use polars::prelude::*;

    use super::{FrameCodec, FrameOptions, FrameWritten};
    use crate::asset::{BoxError, Codec, Value};

    /// Rows shown in a materialization's preview.
    const PREVIEW_ROWS: usize = 5;

    pub(crate) const CODEC: Codec = Codec {
        encode,
        decode,
        frame: Some(FrameCodec {
            write,
            scan,
            scan_many,
        }),
    };

    /// A `LazyFrame` codec decodes bytes into a `LazyFrame`; a `DataFrame` one, into a frame.
    pub(crate) const LAZY_CODEC: Codec = Codec {
        encode,
        decode: decode_lazy,
        frame: Some(FrameCodec {
            write,
            scan,
            scan_many,
        }),
    };

    fn not_a_frame() -> BoxError {
        "internal error: a frame codec was handed a value that is not a DataFrame or LazyFrame"
            .into()
    }

    /// The value as an in-memory frame (collecting a lazy one).
    fn collected(value: &Value) -> Result<DataFrame, BoxError> {
        if let Some(df) = value.downcast_ref::<DataFrame>() {
            Ok(df.clone())
        } else if let Some(lf) = value.downcast_ref::<LazyFrame>() {
            Ok(lf.clone().collect()?)
        } else {
            Err(not_a_frame())
        }
    }

    /// polars' setting for an orch compression.
    fn compression(options: &FrameOptions) -> Result<ParquetCompression, BoxError> {
        Ok(match options.compression {
            super::ParquetCompression::Lz4 => ParquetCompression::Lz4Raw,
            super::ParquetCompression::Snappy => ParquetCompression::Snappy,
            super::ParquetCompression::Zstd(level) => ParquetCompression::Zstd(Some(
                polars_utils::compression::ZstdLevel::try_new(level).map_err(|_| -> BoxError {
                    format!("zstd level {level} is out of range (1 to 22)").into()
                })?,
            )),
            super::ParquetCompression::Uncompressed => ParquetCompression::Uncompressed,
        })
    }

    /// Parquet bytes (default options), for I/O managers that store bytes.
    fn encode(value: &Value) -> Result<Vec<u8>, BoxError> {
        let mut df = collected(value)?;
        let mut out = Vec::new();
        ParquetWriter::new(&mut out)
            .with_compression(compression(&FrameOptions::default())?)
            .finish(&mut df)?;
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Value, BoxError> {
        let df = ParquetReader::new(Cursor::new(bytes)).finish()?;
        Ok(Arc::new(df))
    }

    fn decode_lazy(bytes: &[u8]) -> Result<Value, BoxError> {
        let df = ParquetReader::new(Cursor::new(bytes)).finish()?;
        Ok(Arc::new(df.lazy()))
    }

    fn schema_text(schema: &Schema) -> String {
        schema
            .iter()
            .map(|(name, dtype)| format!("{name}: {dtype}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn path_text(path: &Path) -> Result<PlRefPath, BoxError> {
        let text = path
            .to_str()
            .ok_or_else(|| -> BoxError { format!("{} is not UTF-8", path.display()).into() })?;
        Ok(PlRefPath::new(text))
    }

    fn write(value: &Value, path: &Path, options: &FrameOptions) -> Result<FrameWritten, BoxError> {
        let compression = compression(options)?;
        if let Some(df) = value.downcast_ref::<DataFrame>() {
            let mut df = df.clone();
            let file = std::fs::File::create(path)?;
            ParquetWriter::new(file)
                .with_compression(compression)
                .finish(&mut df)?;
            return Ok(FrameWritten {
                rows: df.height() as u64,
                schema: schema_text(df.schema()),
                preview: format!("{}", df.head(Some(PREVIEW_ROWS))),
                lazy: false,
            });
        }
        let Some(lf) = value.downcast_ref::<LazyFrame>() else {
            return Err(not_a_frame());
        };
        // The streaming engine runs the query into the file batch by batch.
        lf.clone()
            .sink(
                SinkDestination::File {
                    target: SinkTarget::Path(path_text(path)?),
                },
                FileWriteFormat::Parquet(Arc::new(ParquetWriteOptions {
                    compression,
                    ..Default::default()
                })),
                UnifiedSinkArgs::default(),
            )?
            .collect_with_engine(Engine::Streaming)?;
        // Statistics from the file: its footer has the row count and the schema.
        let rows = ParquetReader::new(std::fs::File::open(path)?).num_rows()? as u64;
        let schema = LazyFrame::scan_parquet(path_text(path)?, ScanArgsParquet::default())?
            .collect_schema()?;
        let head = ParquetReader::new(std::fs::File::open(path)?)
            .with_slice(Some((0, PREVIEW_ROWS)))
            .finish()?;
        Ok(FrameWritten {
            rows,
            schema: schema_text(&schema),
            preview: format!("{head}"),
            lazy: true,
        })
    }

    fn scan(path: &Path) -> Result<Value, BoxError> {
        // Read the footer now: a truncated or foreign file fails here, naming the file.
        let file = std::fs::File::open(path)?;
        ParquetReader::new(file).num_rows()?;
        let lf = LazyFrame::scan_parquet(path_text(path)?, ScanArgsParquet::default())?;
        Ok(Arc::new(lf))
    }

    fn scan_many(paths: &[std::path::PathBuf]) -> Result<Value, BoxError> {
        let mut frames = Vec::with_capacity(paths.len());
        for path in paths {
            // Each footer is checked, as for one file; the error names the file.
            let one = scan(path)
                .map_err(|e| -> BoxError { format!("{}: {e}", path.display()).into() })?;
            let lf = one
                .downcast_ref::<LazyFrame>()
                .ok_or_else(not_a_frame)?
                .clone();
            frames.push(lf);
        }
        let all = concat(frames, UnionArgs::default())?;
        Ok(Arc::new(all))
    }

    /// A consumer asked for `T` and the run holds another frame type: `DataFrame` ->
    /// `LazyFrame` is free (`.lazy()`); `LazyFrame` -> `DataFrame` runs the plan (a scan of the
    /// stored file, for a persisted upstream).
    pub(crate) fn convert(
        value: &Value,
        want: std::any::TypeId,
    ) -> Option<Result<Box<dyn std::any::Any>, BoxError>> {
        use std::any::TypeId;
        if want == TypeId::of::<LazyFrame>() {
            let df = value.downcast_ref::<DataFrame>()?;
            return Some(Ok(Box::new(df.clone().lazy())));
        }
        if want == TypeId::of::<DataFrame>() {
            let lf = value.downcast_ref::<LazyFrame>()?;
            return Some(
                lf.clone()
                    .collect()
                    .map(|df| Box::new(df) as Box<dyn std::any::Any>)
                    .map_err(Into::into),
            );
        }
        None
    }
}

#[cfg(all(test, feature = "polars"))]
mod tests {
    use std::sync::Arc;

    use polars::prelude::*;

    use super::{FrameOptions, ParquetCompression};
    use crate::asset::Value;

    fn codec_of(path: &std::path::Path) -> String {
        let mut reader = ParquetReader::new(std::fs::File::open(path).unwrap());
        let meta = reader.get_metadata().unwrap();
        format!(
            "{:?}",
            meta.row_groups[0].parquet_columns()[0].compression()
        )
    }

    #[test]
    fn frames_are_written_with_the_chosen_compression_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let df = df!("id" => [1i64, 2, 3], "name" => ["a", "b", "c"]).unwrap();
        let write = super::polars_frames::CODEC.frame.unwrap().write;
        for (compression, expect) in [
            (ParquetCompression::default(), "Lz4Raw"),
            (ParquetCompression::Snappy, "Snappy"),
            (ParquetCompression::Zstd(3), "Zstd"),
            (ParquetCompression::Uncompressed, "Uncompressed"),
        ] {
            for value in [
                Arc::new(df.clone()) as Value,
                Arc::new(df.clone().lazy()) as Value,
            ] {
                let path = dir.path().join(format!("{expect}.parquet"));
                let options = FrameOptions::default().compression(compression);
                let written = write(&value, &path, &options).unwrap();
                assert_eq!(written.rows, 3);
                assert_eq!(codec_of(&path), expect);
                let back = ParquetReader::new(std::fs::File::open(&path).unwrap())
                    .finish()
                    .unwrap();
                assert!(back.equals(&df));
            }
        }
        let bad = FrameOptions::default().compression(ParquetCompression::Zstd(23));
        let err = write(&(Arc::new(df) as Value), &dir.path().join("x"), &bad).unwrap_err();
        assert_eq!(err.to_string(), "zstd level 23 is out of range (1 to 22)");
    }
}
