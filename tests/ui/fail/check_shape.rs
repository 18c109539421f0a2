use orch::prelude::*;

#[asset]
fn orders() -> Vec<u32> {
    vec![1]
}

#[asset_check(asset = orders)]
async fn is_async(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

#[asset_check(asset = orders)]
fn two_parameters(orders: &Vec<u32>, limit: usize) -> CheckResult {
    CheckResult::new(orders.len() < limit)
}

#[asset_check(asset = orders)]
fn by_value(orders: Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

#[asset_check(asset = orders, blocking = true, severity = fatal)]
fn bad_severity(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

#[asset_check(asset = orders, blocks = true)]
fn unknown_key(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

#[asset_check(blocking = true)]
fn no_asset(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(!orders.is_empty())
}

fn main() {}
