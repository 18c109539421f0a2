//! Dagster's ETL benchmark (`../shared/bench/dagster/etl_dagster.py`) in orch: the same five
//! assets running the same polars transforms (`etl_common.py`) on the same Parquet file
//! (`gen_orders.py`, 10M rows, seed 42), every intermediate persisted by the default I/O
//! manager (Parquet under `$ORCH_HOME/storage`) and every run recorded.
//!
//! ```text
//! orders_raw -> orders_cleaned -> daily_revenue ----\
//!                              -> customer_summary --> export_csv
//! ```
//!
//! `ETL_DATA` is the Parquet file, `ETL_OUT` the directory for the two CSVs. It is an ordinary
//! orch program: no command materializes everything. `benches/etl.sh` times it beside
//! Dagster and the plain script.
#![allow(missing_docs)]

#[macro_use]
#[path = "etl/assets.rs"]
mod assets;

etl_assets!(eager, io_manager = "fs");

fn main() -> std::process::ExitCode {
    orch::main()
}
