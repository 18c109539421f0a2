//! Asset checks: both return forms, the options, a doc comment as description, and a check
//! called directly like any function (as a unit test would).
use orch::prelude::*;

#[asset]
fn orders() -> Vec<u32> {
    vec![120, 80]
}

/// Every order is positive.
#[asset_check(asset = orders, blocking = true)]
fn positive(orders: &Vec<u32>) -> CheckResult {
    CheckResult::new(orders.iter().all(|&o| o > 0)).metadata("orders", orders.len())
}

#[asset_check(asset = orders, severity = warn, description = "Fewer than a million orders")]
fn not_too_many(orders: &Vec<u32>) -> Result<CheckResult, BoxError> {
    Ok(CheckResult::new(orders.len() < 1_000_000))
}

fn main() {
    assert!(positive(&vec![1, 2]).is_passed());
    let checks = orch::checks::checks_of(&"orders".parse().unwrap());
    let described: Vec<(&str, bool, Option<&str>)> = checks
        .iter()
        .map(|c| (c.name(), c.blocking(), c.description()))
        .collect();
    assert_eq!(
        described,
        [
            ("not_too_many", false, Some("Fewer than a million orders")),
            ("positive", true, Some("Every order is positive.")),
        ]
    );
    let result = orch::Materialize::select("orders").run().unwrap();
    let outcome = result.outcome("orders").unwrap();
    assert_eq!(outcome.checks.len(), 2);
    assert!(outcome.checks.iter().all(|c| c.passed));
}
