//! What storing a frame as Parquet costs, setting by setting: compression, statistics, row
//! groups, page size, parallel encoding, and what orch adds (hashing the written file for its
//! data version). Each variant writes the ETL benchmark's 10M orders (`ETL_DATA`, the file
//! `gen_orders.py` makes; `benches/etl.sh` generates it), then scans the file back; medians of
//! `PARQUET_RUNS` (default 5). One JSON line per variant.
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
    compression: ParquetCompression,
    statistics: bool,
    row_group_size: Option<usize>,
    data_page_size: Option<usize>,
    parallel: bool,
}

impl Variant {
    /// orch's default today: LZ4, polars' default statistics, row groups and pages, parallel.
    const fn orch() -> Variant {
        Variant {
            name: "orch default (lz4, statistics)",
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn write(df: &DataFrame, path: &Path, v: &Variant) -> PolarsResult<()> {
    let mut df = df.clone();
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
        Variant::orch(),
        Variant {
            name: "no compression",
            compression: ParquetCompression::Uncompressed,
            ..Variant::orch()
        },
        Variant {
            name: "snappy",
            compression: ParquetCompression::Snappy,
            ..Variant::orch()
        },
        Variant {
            name: "zstd (its default level)",
            compression: ParquetCompression::Zstd(None),
            ..Variant::orch()
        },
        Variant {
            name: "lz4, no statistics",
            statistics: false,
            ..Variant::orch()
        },
        Variant {
            name: "no compression, no statistics",
            compression: ParquetCompression::Uncompressed,
            statistics: false,
            ..Variant::orch()
        },
        Variant {
            name: "lz4, row groups of 1M rows",
            row_group_size: Some(1 << 20),
            ..Variant::orch()
        },
        Variant {
            name: "lz4, 8 MiB pages",
            data_page_size: Some(8 << 20),
            ..Variant::orch()
        },
        Variant {
            name: "lz4, one thread",
            parallel: false,
            ..Variant::orch()
        },
    ];
    println!(
        "# {} rows, {} columns, {:.0} MiB in memory; medians of {runs}",
        df.height(),
        df.width(),
        df.estimated_size() as f64 / (1 << 20) as f64
    );
    for v in &variants {
        let (mut writes, mut hashes, mut scans) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            write(&df, &path, v)?;
            writes.push(t.elapsed());
            // What orch adds after writing: the data version, a hash of the file.
            let t = Instant::now();
            let bytes = std::fs::read(&path)?;
            std::hint::black_box(xxhash_rust::xxh3::xxh3_128(&bytes));
            hashes.push(t.elapsed());
            // What a consumer pays to read it back.
            let t = Instant::now();
            let back = LazyFrame::scan_parquet(
                PlRefPath::new(path.to_str().ok_or("path")?),
                ScanArgsParquet::default(),
            )?
            .collect()?;
            scans.push(t.elapsed());
            assert_eq!(back.height(), df.height());
        }
        let size = std::fs::metadata(&path)?.len();
        println!(
            "{{\"bench\":\"parquet_write\",\"variant\":\"{}\",\"write_ms\":{:.1},\"hash_ms\":{:.1},\"scan_ms\":{:.1},\"mib\":{:.1}}}",
            v.name,
            ms(median(writes)),
            ms(median(hashes)),
            ms(median(scans)),
            size as f64 / (1 << 20) as f64
        );
    }
    Ok(())
}
