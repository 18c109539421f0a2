//! One failing branch: its downstream is skipped, the independent branch finishes, and the
//! process exits with code 1.
//!
//! ```text
//! cargo run --example failure; echo "exit code $?"
//! ```

use orch::prelude::*;

/// A source that works.
#[asset]
pub fn orders() -> Vec<u32> {
    vec![120, 80, 45]
}

/// A branch that fails: its error is recorded with the asset's key.
#[asset]
pub fn exchange_rates(ctx: &AssetContext) -> Result<f64, std::io::Error> {
    ctx.log().warn("rate service unreachable");
    Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "rate service refused the connection",
    ))
}

/// Downstream of the failure: skipped.
#[asset]
pub fn orders_in_eur(orders: &Vec<u32>, exchange_rates: &f64) -> Vec<f64> {
    orders
        .iter()
        .map(|o| f64::from(*o) * exchange_rates)
        .collect()
}

/// Independent of the failure: still materialized.
#[asset]
pub fn order_count(orders: &Vec<u32>) -> usize {
    orders.len()
}

fn main() -> std::process::ExitCode {
    orch::main()
}
