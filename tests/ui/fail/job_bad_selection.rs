use orch::prelude::*;

#[asset]
fn orders() -> u32 {
    1
}

asset_job!(refresh, "group:sources |");

schedule!(nightly, select = "orders and", cron = "0 2 * * *");

fn main() {}
