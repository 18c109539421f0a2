use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

asset_job!(refresh, "orders");

schedule!(nightly, job = refresh, cron = "0 2 * * *", tz = "UTC");

schedule!(hourly, cron = "0 * * * *");

fn main() {}
