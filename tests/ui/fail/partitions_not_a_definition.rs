use orch::prelude::*;

#[asset(partitions = "daily")]
fn orders_raw() -> u32 {
    1
}

#[asset(partitions = daily(2024))]
fn orders_clean() -> u32 {
    1
}

fn main() {}
