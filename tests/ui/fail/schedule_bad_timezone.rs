use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

asset_job!(refresh, "orders");

schedule!(nightly, job = refresh, cron = "0 2 * * *", timezone = "Europe/Pariss");

fn main() {}
