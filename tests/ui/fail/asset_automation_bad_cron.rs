use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

// Each bad cron string or time zone is an error at its string, however deeply nested.
#[asset(automation = eager() | (on_cron("0 25 * * *") & !on_cron_in("0 * * * *", "Mars/Olympus")))]
fn report(orders: &u32) -> u32 {
    *orders
}

fn main() {}
