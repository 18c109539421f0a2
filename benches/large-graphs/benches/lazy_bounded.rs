//! A LazyFrame pipeline over more data than the memory it may use: the orders ETL of
//! `etl.rs` on `LAZY_COPIES` (default 8) copies of Dagster's 10M-row orders file, written
//! as LazyFrames. orch runs each on polars' streaming engine straight into its Parquet file,
//! and each consumer gets a scan of that file, so no asset ever holds the data.
//!
//! ```text
//! orders_raw (scan of the copies) -> orders_cleaned -> daily_revenue
//! ```
//!
//! There is no `customer_summary` here: polars' streaming group-by keeps partial groups per
//! morsel, so grouping 71M rows by 100,000 customers held 2.7 GB whatever the input's form.
//!
//! `LAZY_DATA` is the Parquet file. An ordinary orch program: no command materializes
//! everything. `benches/bounded.sh` runs it under `ulimit -v` and checks the results.
#![allow(missing_docs)]

use orch::polars::prelude::*;
use orch::prelude::*;

fn copies() -> usize {
    std::env::var("LAZY_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// Every copy of the file, scanned (nothing is read until the plan runs).
#[asset]
fn orders_raw() -> Result<LazyFrame, BoxError> {
    let path = std::env::var("LAZY_DATA").map_err(|_| "set LAZY_DATA")?;
    let scans = (0..copies())
        .map(|_| LazyFrame::scan_parquet(PlRefPath::new(&path), ScanArgsParquet::default()))
        .collect::<PolarsResult<Vec<_>>>()?;
    Ok(concat(scans, UnionArgs::default())?)
}

/// Without NULL amounts and cancelled orders (streamed into its file).
#[asset]
fn orders_cleaned(orders_raw: &LazyFrame) -> LazyFrame {
    orders_raw
        .clone()
        .drop_nulls(None)
        .filter(col("status").neq(lit("cancelled")))
}

/// Revenue per day, aggregated by the streaming engine.
#[asset]
fn daily_revenue(orders_cleaned: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(orders_cleaned
        .clone()
        .group_by([col("date")])
        .agg([len().alias("orders"), col("amount").sum().alias("revenue")])
        .sort(["date"], Default::default())
        .collect_with_engine(Engine::Streaming)?
        .unwrap_single())
}

fn main() -> std::process::ExitCode {
    orch::main()
}
