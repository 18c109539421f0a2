//! Dagster's ETL benchmark as `etl.rs` runs it, with every asset on `io_manager = "memory"`:
//! nothing is stored, the run is still recorded. What orchestrating the five assets costs
//! against the plain script, without persistence (see `benches/etl.sh`).
#![allow(missing_docs)]

#[macro_use]
#[path = "etl/assets.rs"]
mod assets;

etl_assets!(eager, io_manager = "memory");

fn main() -> std::process::ExitCode {
    orch::main()
}
