use orch::prelude::*;

#[asset]
fn orders() -> Vec<u32> {
    vec![1]
}

// The parameter is the asset's output: `&Vec<u32>`, not `&String`.
#[asset_check(asset = orders)]
fn not_empty(orders: &String) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

fn main() {}
