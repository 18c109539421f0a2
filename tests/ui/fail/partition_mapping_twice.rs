use orch::polars::prelude::*;
use orch::prelude::*;

#[asset(partitions = daily("2024-01-01"))]
fn frames(ctx: &AssetContext) -> Result<DataFrame, BoxError> {
    let _ = ctx;
    Ok(DataFrame::empty())
}

#[asset(partitions = daily("2024-01-01"))]
fn rolling(#[partitions(last = 7)] #[partitions(offset = -1)] frames: &DataFrame) -> usize {
    frames.height()
}

fn main() {}
