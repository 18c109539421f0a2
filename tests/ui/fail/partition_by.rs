use orch::polars::prelude::*;
use orch::prelude::*;

// A range is split into partitions: there must be partitions.
#[asset(partition_by = "date")]
fn unpartitioned() -> Result<DataFrame, BoxError> {
    Ok(DataFrame::empty())
}

// Only frames have columns to split by.
#[asset(partitions = daily("2024-01-01"), partition_by = "date")]
fn counts() -> u64 {
    1
}

// A frame kept by another I/O manager is not split by orch.
#[asset(partitions = daily("2024-01-01"), partition_by = "date", io_manager = "memory")]
fn in_memory() -> DataFrame {
    DataFrame::empty()
}

#[asset(partitions = daily("2024-01-01"), partition_by = 3)]
fn numbered() -> Result<DataFrame, BoxError> {
    Ok(DataFrame::empty())
}

fn main() {}
