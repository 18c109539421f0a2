use orch::prelude::*;

#[asset]
fn orders() -> Vec<u32> {
    vec![1]
}

// A typo in `asset` is an error at that token.
#[asset_check(asset = ordrs)]
fn not_empty(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

fn main() {}
