use orch::polars::prelude::*;
use orch::prelude::*;

#[asset(partitions = daily("2024-01-01"))]
fn counts(ctx: &AssetContext) -> u64 {
    ctx.partition_key().map_or(0, |k| k.len() as u64)
}

#[asset(partitions = daily("2024-01-01"))]
fn frames(ctx: &AssetContext) -> Result<DataFrame, BoxError> {
    let _ = ctx;
    Ok(DataFrame::empty())
}

// Several partitions are concatenated: only frames can be.
#[asset(partitions = daily("2024-01-01"))]
fn weekly(#[partitions(last = 7)] counts: &u64) -> u64 {
    *counts
}

// Not a mapping orch knows.
#[asset(partitions = daily("2024-01-01"))]
fn rolling(#[partitions(window = 7)] frames: &DataFrame) -> usize {
    frames.height()
}

// An offset of zero is the identity: say nothing instead.
#[asset(partitions = daily("2024-01-01"))]
fn same(#[partitions(offset = 0)] counts: &u64) -> u64 {
    *counts
}

// A resource is not an upstream asset.
#[asset(partitions = daily("2024-01-01"))]
fn with_db(#[resource] #[partitions(last = 2)] db: &String) -> usize {
    db.len()
}

fn main() {}
