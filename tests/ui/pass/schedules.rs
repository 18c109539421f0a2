use orch::prelude::*;

#[asset(group = "sources")]
fn orders() -> u32 {
    1
}

asset_job!(
    /// Sources, every night.
    pub refresh,
    "group:sources"
);

schedule!(nightly, job = refresh, cron = "0 2 * * *", timezone = "Europe/Paris");
schedule!(
    /// Business hours in New York.
    business_hours,
    job = refresh,
    cron = "0 9-17 * * MON-FRI",
    timezone = "America/New_York",
    default_status = running,
    catchup = 3,
    skip_if_running = true,
);
schedule!(weekly, select = "orders", cron = "@weekly");

fn main() {}
