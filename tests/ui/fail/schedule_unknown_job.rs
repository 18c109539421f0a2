use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

asset_job!(refresh, "orders");

schedule!(nightly, job = refrsh, cron = "0 2 * * *");

fn main() {}
