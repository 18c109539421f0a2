//! Frames (polars `DataFrame` and `LazyFrame`) as asset outputs: how they are stored (Arrow IPC
//! or Parquet files) and handed to consumers.
//!
//! The `#[asset]` macro recognises an output type named `DataFrame` or `LazyFrame` and gives it
//! a frame codec instead of serde's. The default I/O manager then writes a file in the
//! [`FrameFormat`] it is set to. A DataFrame is written as it is. A LazyFrame whose plan scans
//! files is executed by polars' streaming engine straight into the file, so an asset can
//! produce more data than fits in memory, and a consumer that takes a `LazyFrame` gets a scan
//! of that file (predicate and projection pushdown reach it). A LazyFrame whose plan reads only
//! frames in memory is collected when the asset returns ([`FrameCodec::settle`]): its inputs
//! fit in memory, and its consumers start from the result. One that takes a `DataFrame` gets
//! the frame itself, or the file read back. Reading looks at the file's magic bytes, not at its name, so a store
//! written in one format still loads after the setting changes.

use std::path::Path;

use crate::asset::{BoxError, Value};

/// The file format of stored frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameFormat {
    /// Arrow IPC files (Feather v2, `.arrow`), uncompressed: the default. Writing one is
    /// little more than copying the frame's buffers out, so intermediates cost what the disk
    /// costs. On 10M orders: 190 ms of CPU to write, against uncompressed Parquet's 770 ms, for
    /// files twice the size (421 MiB against 213). Read by polars (`pl.scan_ipc`), and by
    /// pyarrow (`pyarrow.feather`), DuckDB and R's `arrow` in versions that know Arrow's
    /// string-view types, which polars writes strings as; for older readers use Parquet.
    #[default]
    ArrowIpc,
    /// Parquet (`.parquet`), with [`FrameOptions::compression`]: smaller files that every data
    /// tool reads, for outputs kept long or opened elsewhere.
    Parquet,
}

impl FrameFormat {
    /// Both formats.
    pub const ALL: [FrameFormat; 2] = [FrameFormat::ArrowIpc, FrameFormat::Parquet];

    /// The file extension of the format (`arrow` or `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            FrameFormat::ArrowIpc => "arrow",
            FrameFormat::Parquet => "parquet",
        }
    }
}

/// How Parquet data pages are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParquetCompression {
    /// LZ4 (Parquet's `LZ4_RAW`): the cheapest compression to write. On 10M orders the files
    /// are 0.6 times the size of uncompressed ones, written in 1.4 times the time and scanned
    /// in 1.7 times. Read by polars, pyarrow 8+, DuckDB and Spark 3.3+.
    Lz4,
    /// Snappy: what pyarrow writes by default; the most widely read.
    Snappy,
    /// Zstandard at a level from 1 to 22 (polars' own default is 3): the smallest files, for
    /// outputs kept long or shipped elsewhere.
    Zstd(i32),
    /// No compression, the default: written and scanned back fastest (on 10M orders, 657 ms
    /// to write and 88 ms to scan, against LZ4's 940 and 154), for files 1.6 times LZ4's size.
    #[default]
    Uncompressed,
}

/// How frames are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FrameOptions {
    /// The file format.
    pub format: FrameFormat,
    /// The Parquet compression (for [`FrameFormat::Parquet`]).
    pub compression: ParquetCompression,
}

impl FrameOptions {
    /// These options with another file format.
    pub fn format(mut self, format: FrameFormat) -> Self {
        self.format = format;
        self
    }

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
    /// Whether the output was a `LazyFrame` plan run into the file (its consumers then read the
    /// written file, not the plan, which would run the query again); `false` for a frame in
    /// memory, including a settled plan.
    pub lazy: bool,
    /// The xxh3-128 of the written file, taken as the bytes went out (`None`: the writer could
    /// not see them, and whoever needs the hash reads the file back).
    pub hash: Option<u128>,
}

/// How a frame output is written to and read from a file.
#[derive(Clone, Copy)]
pub struct FrameCodec {
    /// Writes the frame at `path` (a new file; the caller renames it into place).
    pub write: fn(&Value, &Path, &FrameOptions) -> Result<FrameWritten, BoxError>,
    /// A lazy scan of the file at `path`, in whichever format it is (its footer is checked
    /// now, so a damaged file is an error at load time, not in the middle of a consumer).
    pub scan: fn(&Path) -> Result<Value, BoxError>,
    /// One lazy frame over several files, concatenated in order (every partition of a
    /// partitioned asset, for an unpartitioned consumer).
    pub scan_many: fn(&[std::path::PathBuf]) -> Result<Value, BoxError>,
    /// The output of a run over the partitions `keys` (consecutive keys of `partitions`),
    /// split into one frame per key by the values of `column` (`partition_by`): a text column
    /// holding the keys, or a date or datetime column falling in their time windows. Every
    /// key gets a frame, empty if no row falls in it. Also returns the whole frame, collected.
    #[allow(clippy::type_complexity)]
    pub split: fn(
        &Value,
        &str,
        &crate::partitions::Partitions,
        &[String],
    ) -> Result<(Value, Vec<(String, Value)>), BoxError>,
    /// The memory an in-memory frame holds (polars' estimate), or `None` for a lazy frame
    /// that scans files, whose plan is collected while it is written and whose consumers then
    /// scan the file.
    pub in_memory_size: fn(&Value) -> Option<usize>,
    /// The output as it is handed on and stored. A `LazyFrame` whose plan reads no file (every
    /// source is a frame in memory: its upstreams' outputs) is collected now, into a plan over
    /// the collected frame, so that its consumers start from the result instead of running the
    /// plan again or reading its file back, and it is written in the background like a
    /// `DataFrame`. `None`: as it is (a `DataFrame`, or a plan that scans files, which streams
    /// into its file in bounded memory).
    pub settle: fn(&Value) -> Result<Option<Value>, BoxError>,
}

impl std::fmt::Debug for FrameCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameCodec")
    }
}

#[cfg(feature = "polars")]
mod split;

/// The polars side, compiled with the `polars` feature.
#[cfg(feature = "polars")]
pub(crate) mod polars_frames {
    use std::io::Cursor;
    use std::path::Path;
    use std::sync::Arc;

    use polars::prelude::*;

    use super::{FrameCodec, FrameFormat, FrameOptions, FrameWritten};
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
            split: super::split::split,
            in_memory_size,
            settle,
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
            split: super::split::split,
            in_memory_size,
            settle,
        }),
    };

    fn in_memory_size(value: &Value) -> Option<usize> {
        in_memory(value).map(DataFrame::estimated_size)
    }

    /// The frame in memory that a value is: a `DataFrame`, or a `LazyFrame` that is nothing
    /// but a scan of one (a settled plan).
    fn in_memory(value: &Value) -> Option<&DataFrame> {
        if let Some(df) = value.downcast_ref::<DataFrame>() {
            return Some(df);
        }
        match &value.downcast_ref::<LazyFrame>()?.logical_plan {
            DslPlan::DataFrameScan { df, .. } => Some(df),
            _ => None,
        }
    }

    fn settle(value: &Value) -> Result<Option<Value>, BoxError> {
        let Some(lf) = value.downcast_ref::<LazyFrame>() else {
            return Ok(None);
        };
        if in_memory(value).is_some() {
            return Ok(None);
        }
        let reads_files = (&lf.logical_plan)
            .into_iter()
            .any(|node| matches!(node, DslPlan::Scan { .. }));
        if reads_files {
            return Ok(None);
        }
        let df = lf.clone().collect()?;
        Ok(Some(Arc::new(df.lazy())))
    }

    fn not_a_frame() -> BoxError {
        "internal error: a frame codec was handed a value that is not a DataFrame or LazyFrame"
            .into()
    }

    /// The value as an in-memory frame (collecting a lazy one).
    pub(super) fn collected(value: &Value) -> Result<DataFrame, BoxError> {
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
        if let Some(df) = in_memory(value) {
            let mut df = df.clone();
            // Hashed on the way out: the data version without reading the file back (80 ms
            // for 10M rows, see benches/README.md). Buffered, as the IPC writer writes each
            // message's header apart from its body.
            let mut out = std::io::BufWriter::with_capacity(
                1 << 20,
                Hashing::new(WriteBack::new(std::fs::File::create(path)?)),
            );
            match options.format {
                FrameFormat::ArrowIpc => IpcWriter::new(&mut out)
                    .with_compat_level(CompatLevel::newest())
                    .finish(&mut df)?,
                FrameFormat::Parquet => {
                    ParquetWriter::new(&mut out)
                        .with_compression(compression(options)?)
                        .finish(&mut df)?;
                }
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            return Ok(FrameWritten {
                rows: df.height() as u64,
                schema: schema_text(df.schema()),
                preview: format!("{}", df.head(Some(PREVIEW_ROWS))),
                lazy: false,
                hash: Some(file.digest()),
            });
        }
        let Some(lf) = value.downcast_ref::<LazyFrame>() else {
            return Err(not_a_frame());
        };
        let format = match options.format {
            FrameFormat::ArrowIpc => FileWriteFormat::Ipc(IpcWriterOptions::default()),
            FrameFormat::Parquet => FileWriteFormat::Parquet(Arc::new(ParquetWriteOptions {
                compression: compression(options)?,
                ..Default::default()
            })),
        };
        // The streaming engine runs the query into the file batch by batch.
        lf.clone()
            .sink(
                SinkDestination::File {
                    target: SinkTarget::Path(path_text(path)?),
                },
                format,
                UnifiedSinkArgs::default(),
            )?
            .collect_with_engine(Engine::Streaming)?;
        // Statistics from the file: row counts and the schema come from its metadata.
        let written = scan_file(path)?;
        let rows = written.clone().select([len()]).collect()?;
        let rows = rows
            .column("len")?
            .get(0)?
            .extract::<u64>()
            .ok_or_else(|| -> BoxError { "could not count the rows written".into() })?;
        let schema = written.clone().collect_schema()?;
        let head = written.limit(PREVIEW_ROWS as IdxSize).collect()?;
        Ok(FrameWritten {
            rows,
            schema: schema_text(&schema),
            preview: format!("{head}"),
            lazy: true,
            // The streaming engine writes the file itself.
            hash: None,
        })
    }

    /// A file that is handed to the disk as it is written: every 8 MiB, the kernel is told the
    /// last 8 MiB will not be needed soon (`posix_fadvise(DONTNEED)`, Linux), which starts
    /// writing them out, so the sync that makes the file durable has little left to wait for.
    /// PostgreSQL's `pg_flush_data` does this where `sync_file_range` (which needs `unsafe`
    /// here) is missing. Pages still dirty stay cached; any already written out are dropped,
    /// so a later read of those goes to disk. On 420 MiB here, writing and syncing took 210 ms
    /// this way against 300 ms, and reading back took as long (`benches/README.md`).
    /// Elsewhere a plain file.
    struct WriteBack {
        file: std::fs::File,
        /// Bytes written.
        written: u64,
        /// Bytes whose write-out has been started.
        started: u64,
    }

    impl WriteBack {
        const STEP: u64 = 8 << 20;

        fn new(file: std::fs::File) -> Self {
            WriteBack {
                file,
                written: 0,
                started: 0,
            }
        }

        fn start_write_out(&mut self) {
            #[cfg(target_os = "linux")]
            {
                let len = std::num::NonZeroU64::new(self.written - self.started);
                // Only a hint: an error leaves the data to the sync, as without it.
                let _ = rustix::fs::fadvise(
                    &self.file,
                    self.started,
                    len,
                    rustix::fs::Advice::DontNeed,
                );
            }
            self.started = self.written;
        }
    }

    impl std::io::Write for WriteBack {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.file.write(buf)?;
            self.written += n as u64;
            if self.written - self.started >= Self::STEP {
                self.start_write_out();
            }
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    /// A writer that hashes every byte it passes on (xxh3-128, equal to a hash of the whole
    /// file read back, as the writes are sequential).
    struct Hashing<W> {
        inner: W,
        hasher: xxhash_rust::xxh3::Xxh3,
    }

    impl<W: std::io::Write> Hashing<W> {
        fn new(inner: W) -> Self {
            Hashing {
                inner,
                hasher: xxhash_rust::xxh3::Xxh3::new(),
            }
        }

        fn digest(&self) -> u128 {
            self.hasher.digest128()
        }
    }

    impl<W: std::io::Write> std::io::Write for Hashing<W> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = self.inner.write(buf)?;
            self.hasher.update(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    /// The format of the file at `path`, from its first bytes.
    fn format_of(path: &Path) -> Result<FrameFormat, BoxError> {
        use std::io::Read;
        let mut magic = Vec::with_capacity(6);
        std::fs::File::open(path)?.take(6).read_to_end(&mut magic)?;
        if magic.starts_with(b"PAR1") {
            Ok(FrameFormat::Parquet)
        } else if magic == b"ARROW1" {
            Ok(FrameFormat::ArrowIpc)
        } else if magic.len() < 6 {
            Err(format!("it is empty or cut short ({} bytes)", magic.len()).into())
        } else {
            Err("it is neither a Parquet nor an Arrow IPC file (its first bytes are neither `PAR1` nor `ARROW1`)".into())
        }
    }

    /// A lazy scan of the file at `path`, whose footer is read now: a truncated or foreign file
    /// fails here.
    fn scan_file(path: &Path) -> Result<LazyFrame, BoxError> {
        let file = std::fs::File::open(path)?;
        Ok(match format_of(path)? {
            FrameFormat::Parquet => {
                ParquetReader::new(file).num_rows()?;
                LazyFrame::scan_parquet(path_text(path)?, ScanArgsParquet::default())?
            }
            FrameFormat::ArrowIpc => {
                IpcReader::new(file).schema()?;
                LazyFrame::scan_ipc(path_text(path)?, Default::default(), Default::default())?
            }
        })
    }

    fn scan(path: &Path) -> Result<Value, BoxError> {
        Ok(Arc::new(scan_file(path)?))
    }

    fn scan_many(paths: &[std::path::PathBuf]) -> Result<Value, BoxError> {
        let mut frames = Vec::with_capacity(paths.len());
        for path in paths {
            // Each footer is checked, as for one file; the error names the file.
            let lf = scan_file(path)
                .map_err(|e| -> BoxError { format!("{}: {e}", path.display()).into() })?;
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

    use super::{FrameFormat, FrameOptions, ParquetCompression};
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
            (ParquetCompression::default(), "Uncompressed"),
            (ParquetCompression::Lz4, "Lz4Raw"),
            (ParquetCompression::Snappy, "Snappy"),
            (ParquetCompression::Zstd(3), "Zstd"),
        ] {
            for value in [
                Arc::new(df.clone()) as Value,
                // A plan, which streams into the file (a bare frame in a LazyFrame is written as
                // the frame it holds).
                Arc::new(df.clone().lazy().filter(lit(true))) as Value,
            ] {
                let path = dir.path().join(format!("{expect}.parquet"));
                let options = FrameOptions::default()
                    .format(FrameFormat::Parquet)
                    .compression(compression);
                let written = write(&value, &path, &options).unwrap();
                assert_eq!(written.rows, 3);
                assert_eq!(codec_of(&path), expect);
                let back = ParquetReader::new(std::fs::File::open(&path).unwrap())
                    .finish()
                    .unwrap();
                assert!(back.equals(&df));
                // A DataFrame is hashed as it is written, to what a hash of the file gives.
                let file_hash = xxhash_rust::xxh3::xxh3_128(&std::fs::read(&path).unwrap());
                match value.is::<DataFrame>() {
                    true => assert_eq!(written.hash, Some(file_hash)),
                    false => assert_eq!(written.hash, None),
                }
            }
        }
        let bad = FrameOptions::default()
            .format(FrameFormat::Parquet)
            .compression(ParquetCompression::Zstd(23));
        let err = write(&(Arc::new(df) as Value), &dir.path().join("x"), &bad).unwrap_err();
        assert_eq!(err.to_string(), "zstd level 23 is out of range (1 to 22)");
    }

    /// The frame a scan of `path` gives, collected.
    fn scanned(path: &std::path::Path) -> Result<DataFrame, crate::BoxError> {
        let scan = super::polars_frames::CODEC.frame.unwrap().scan;
        let value = scan(path)?;
        Ok(value
            .downcast_ref::<LazyFrame>()
            .unwrap()
            .clone()
            .collect()?)
    }

    #[test]
    fn frames_are_written_as_arrow_ipc_by_default_and_scanned_by_their_magic_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let df = df!("id" => [1i64, 2, 3], "name" => ["a", "b", "c"]).unwrap();
        let write = super::polars_frames::CODEC.frame.unwrap().write;
        for (i, value) in [
            Arc::new(df.clone()) as Value,
            Arc::new(df.clone().lazy().filter(lit(true))) as Value,
        ]
        .into_iter()
        .enumerate()
        {
            // The name says nothing: the scan goes by the file's first bytes.
            let path = dir.path().join(format!("frame{i}.out"));
            let written = write(&value, &path, &FrameOptions::default()).unwrap();
            assert_eq!(written.rows, 3);
            assert_eq!(written.schema, "id: i64, name: str");
            assert!(
                written.preview.contains("shape: (3, 2)"),
                "{}",
                written.preview
            );
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&bytes[..6], b"ARROW1");
            let back = polars::prelude::IpcReader::new(std::fs::File::open(&path).unwrap())
                .finish()
                .unwrap();
            assert!(back.equals(&df));
            assert!(scanned(&path).unwrap().equals(&df));
            match value.is::<DataFrame>() {
                true => assert_eq!(written.hash, Some(xxhash_rust::xxh3::xxh3_128(&bytes))),
                false => assert_eq!(written.hash, None),
            }
        }
        // Parquet beside it scans the same.
        let parquet = dir.path().join("frame.parquet");
        let options = FrameOptions::default().format(FrameFormat::Parquet);
        write(&(Arc::new(df.clone()) as Value), &parquet, &options).unwrap();
        assert!(scanned(&parquet).unwrap().equals(&df));
    }

    #[test]
    fn a_plan_over_frames_in_memory_settles_into_its_result_and_one_over_files_does_not() {
        let frame = super::polars_frames::CODEC.frame.unwrap();
        let df = df!("id" => [1i64, 2, 3], "name" => ["a", "b", "c"]).unwrap();
        let plan = df.clone().lazy().filter(col("id").gt(lit(1)));
        let settled = (frame.settle)(&(Arc::new(plan) as Value)).unwrap().unwrap();
        // A plan over the collected frame: stored and sized as that frame.
        let lf = settled.downcast_ref::<LazyFrame>().unwrap();
        assert!(lf.describe_plan().unwrap().starts_with("DF ["));
        assert_eq!(lf.clone().collect().unwrap().height(), 2);
        assert!((frame.in_memory_size)(&settled).is_some());
        // Settled already, or a DataFrame: as it is.
        assert!((frame.settle)(&settled).unwrap().is_none());
        assert!(
            (frame.settle)(&(Arc::new(df.clone()) as Value))
                .unwrap()
                .is_none()
        );
        // A plan that scans a file streams into its own: left alone, with no size.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.arrow");
        (frame.write)(&(Arc::new(df) as Value), &path, &FrameOptions::default()).unwrap();
        let scan = (frame.scan)(&path).unwrap();
        let over_file = scan
            .downcast_ref::<LazyFrame>()
            .unwrap()
            .clone()
            .filter(col("id").gt(lit(1)));
        let over_file = Arc::new(over_file) as Value;
        assert!((frame.settle)(&over_file).unwrap().is_none());
        assert!((frame.in_memory_size)(&over_file).is_none());
        // A plan that fails fails when it settles.
        let bad = df!("id" => [1i64]).unwrap().lazy().select([col("missing")]);
        assert!((frame.settle)(&(Arc::new(bad) as Value)).is_err());
    }

    #[test]
    fn a_frame_larger_than_a_write_back_step_is_written_whole_and_hashed_as_written() {
        // 24 MiB of values: the file is handed to the disk three times as it is written.
        let df = df!("n" => (0..3_000_000i64).collect::<Vec<_>>()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = super::polars_frames::CODEC.frame.unwrap().write;
        for format in FrameFormat::ALL {
            let path = dir.path().join(format.extension());
            let options = FrameOptions::default().format(format);
            let written = write(&(Arc::new(df.clone()) as Value), &path, &options).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 16 << 20, "{format:?}");
            assert_eq!(written.hash, Some(xxhash_rust::xxh3::xxh3_128(&bytes)));
            assert!(scanned(&path).unwrap().equals(&df), "{format:?}");
        }
    }

    #[test]
    fn a_damaged_or_foreign_frame_file_fails_at_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let df = df!("id" => [1i64, 2, 3]).unwrap();
        let write = super::polars_frames::CODEC.frame.unwrap().write;
        for format in FrameFormat::ALL {
            let path = dir.path().join(format.extension());
            let options = FrameOptions::default().format(format);
            write(&(Arc::new(df.clone()) as Value), &path, &options).unwrap();
            // Cut off its footer, as a full disk or a copy stopped halfway would.
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
            assert!(scanned(&path).is_err(), "{format:?}");
        }
        let foreign = dir.path().join("notes.txt");
        std::fs::write(&foreign, "id,name\n1,a\n").unwrap();
        let err = scanned(&foreign).unwrap_err().to_string();
        assert!(
            err.contains("neither a Parquet nor an Arrow IPC file"),
            "{err}"
        );
    }
}
