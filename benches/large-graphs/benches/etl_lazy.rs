//! Dagster's ETL benchmark with `orders_cleaned` a lazy plan instead of a collected frame:
//! orch runs the plan into its file with polars' streaming engine (bounded memory) and its two
//! consumers read that file back. Against `etl.rs`, where the frame is collected in memory,
//! handed to the consumers as it is and written in the background, this measures what
//! materializing a lazy edge costs (`benches/etl.sh` prints both).
#![allow(missing_docs)]

#[macro_use]
#[path = "etl/assets.rs"]
mod assets;

etl_assets!(lazy, io_manager = "fs");

fn main() -> std::process::ExitCode {
    orch::main()
}
