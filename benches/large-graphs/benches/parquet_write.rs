//! What storing a frame costs, format by format and setting by setting: Arrow IPC against
//! Parquet, compression, statistics, row groups, page size, parallel encoding, and what orch
//! adds (syncing the file, hashing it for its data version). Each variant writes the ETL
//! benchmark's 10M orders (`ETL_DATA`, the file `gen_orders.py` makes; `benches/etl.sh`
//! generates it) to a new file, syncs it, then scans it back; medians of `PARQUET_RUNS`
//! (default 5). One JSON line per variant: wall and CPU time of the write, sync, hash, scan,
//! size.
//!
//! ```text
//! ETL_DATA=/tmp/dagbench/data/orders_10000000.parquet cargo bench -p orch-bench --bench parquet_write
//! ```
#![allow(missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use orch::polars::prelude::*;

struct Variant {
    name: &'static str,
    /// Arrow IPC (Feather v2) instead of Parquet, with this buffer compression; the Parquet
    /// settings below then do not apply.
    ipc: Option<Option<IpcCompression>>,
    compression: ParquetCompression,
    statistics: bool,
    row_group_size: Option<usize>,
    data_page_size: Option<usize>,
    parallel: bool,
}

impl Variant {
    /// Parquet with LZ4, polars' default statistics, row groups and pages, parallel: the
    /// setting the others change one at a time.
    const fn lz4() -> Variant {
        Variant {
            name: "parquet, lz4",
            ipc: None,
            compression: ParquetCompression::Lz4Raw,
            statistics: true,
            row_group_size: None,
            data_page_size: None,
            parallel: true,
        }
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// CPU time this process has used so far, all threads (`/proc/self/stat`, Linux; zero
/// elsewhere), in clock ticks of 10 ms.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn write(df: &DataFrame, path: &Path, v: &Variant) -> PolarsResult<()> {
    let mut df = df.clone();
    if let Some(compression) = v.ipc {
        IpcWriter::new(std::fs::File::create(path)?)
            .with_compression(compression)
            .with_compat_level(CompatLevel::newest())
            .finish(&mut df)?;
        return Ok(());
    }
    let statistics = if v.statistics {
        StatisticsOptions::default()
    } else {
        StatisticsOptions::empty()
    };
    ParquetWriter::new(std::fs::File::create(path)?)
        .with_compression(v.compression)
        .with_statistics(statistics)
        .with_row_group_size(v.row_group_size)
        .with_data_page_size(v.data_page_size)
        .set_parallel(v.parallel)
        .finish(&mut df)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::var("ETL_DATA").map_err(|_| "set ETL_DATA to the orders Parquet file")?;
    let runs: usize = std::env::var("PARQUET_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let df = ParquetReader::new(std::fs::File::open(&data)?).finish()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("orders.parquet");
    let variants = [
        Variant {
            name: "arrow ipc (orch's default)",
            ipc: Some(None),
            ..Variant::lz4()
        },
        Variant::lz4(),
        Variant {
            name: "parquet, no compression (orch's setting for Parquet)",
            compression: ParquetCompression::Uncompressed,
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, snappy",
            compression: ParquetCompression::Snappy,
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, zstd (its default level)",
            compression: ParquetCompression::Zstd(None),
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, lz4, no statistics",
            statistics: false,
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, no compression, no statistics",
            compression: ParquetCompression::Uncompressed,
            statistics: false,
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, lz4, row groups of 1M rows",
            row_group_size: Some(1 << 20),
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, lz4, 8 MiB pages",
            data_page_size: Some(8 << 20),
            ..Variant::lz4()
        },
        Variant {
            name: "parquet, lz4, one thread",
            parallel: false,
            ..Variant::lz4()
        },
        Variant {
            name: "arrow ipc, lz4",
            ipc: Some(Some(IpcCompression::LZ4)),
            ..Variant::lz4()
        },
        Variant {
            name: "arrow ipc, zstd",
            ipc: Some(Some(IpcCompression::ZSTD(Default::default()))),
            ..Variant::lz4()
        },
    ];
    println!(
        "# {} rows, {} columns, {:.0} MiB in memory; medians of {runs}",
        df.height(),
        df.width(),
        df.estimated_size() as f64 / (1 << 20) as f64
    );
    for v in &variants {
        let (mut writes, mut cpus, mut syncs, mut hashes, mut scans) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            // A new file each time, as a run writes one beside the old and renames it over.
            let _ = std::fs::remove_file(&path);
            let (t, c) = (Instant::now(), cpu());
            write(&df, &path, v)?;
            writes.push(t.elapsed());
            cpus.push(cpu() - c);
            // What making it durable costs (a run syncs each frame before recording it).
            let t = Instant::now();
            std::fs::File::open(&path)?.sync_all()?;
            syncs.push(t.elapsed());
            // What orch adds after writing: the data version, a hash of the file.
            let t = Instant::now();
            let bytes = std::fs::read(&path)?;
            std::hint::black_box(xxhash_rust::xxh3::xxh3_128(&bytes));
            hashes.push(t.elapsed());
            // What a consumer pays to read it back.
            let t = Instant::now();
            let file = PlRefPath::new(path.to_str().ok_or("path")?);
            let back = if v.ipc.is_some() {
                LazyFrame::scan_ipc(file, Default::default(), Default::default())?
            } else {
                LazyFrame::scan_parquet(file, ScanArgsParquet::default())?
            }
            .collect()?;
            scans.push(t.elapsed());
            assert_eq!(back.height(), df.height());
        }
        let size = std::fs::metadata(&path)?.len();
        println!(
            "{{\"bench\":\"parquet_write\",\"variant\":\"{}\",\"write_ms\":{:.1},\"write_cpu_ms\":{:.0},\"sync_ms\":{:.1},\"hash_ms\":{:.1},\"scan_ms\":{:.1},\"mib\":{:.1}}}",
            v.name,
            ms(median(writes)),
            ms(median(cpus)),
            ms(median(syncs)),
            ms(median(hashes)),
            ms(median(scans)),
            size as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
