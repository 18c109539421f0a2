//! The smallest useful orch program: a → b → c, with a fan-out.
//!
//! ```text
//! cargo run --example quickstart                 # materialize everything
//! cargo run --example quickstart -- list         # what is there
//! cargo run --example quickstart -- lineage --format mermaid
//! cargo run --example quickstart -- materialize --select "+summary"
//! ```

use orch::prelude::*;

/// Raw readings from a sensor (a source: no upstream).
#[asset(group = "sources")]
pub fn readings(ctx: &AssetContext) -> Vec<f64> {
    let values: Vec<f64> = (1..=10).map(f64::from).collect();
    ctx.log().info(format_args!("read {} values", values.len()));
    ctx.add_output_metadata("rows", values.len());
    values
}

/// Readings converted to another unit: depends on `readings` by naming it.
#[asset(group = "transforms")]
pub fn scaled(readings: &Vec<f64>) -> Vec<f64> {
    readings.iter().map(|v| v * 1.8 + 32.0).collect()
}

/// Fan-out: `readings` is computed once and shared with `scaled` and `count`.
#[asset(group = "transforms")]
pub fn count(readings: &Vec<f64>) -> usize {
    readings.len()
}

/// The end of the chain a → b → c, also using the fan-out branch.
#[asset(group = "reports")]
pub async fn summary(scaled: &Vec<f64>, count: usize) -> String {
    let mean = scaled.iter().sum::<f64>() / count as f64;
    format!("{count} readings, mean {mean:.1}")
}

fn main() -> std::process::ExitCode {
    orch::main()
}
