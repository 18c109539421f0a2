//! Schedules: the seed's `daily_refresh` job (sources and transforms) with the five common
//! schedules, in their time zones.
//!
//! ```sh
//! cargo run --example scheduled -- jobs            # the job, its selection and schedules
//! cargo run --example scheduled -- schedules       # each schedule and its next tick
//! cargo run --example scheduled -- schedule next business_hours --count 5
//! cargo run --example scheduled -- materialize --job daily_refresh
//! cargo run --example scheduled -- daemon          # ticks queue runs; the queue starts them
//! cargo run --example scheduled -- daemon --once --at 2026-03-29T12:00:00Z
//! ```

use orch::prelude::*;

/// Orders as the shop's API returns them.
#[asset(group = "sources")]
fn orders_raw() -> Vec<u32> {
    vec![120, 80, 45, 300]
}

/// Customers from the CRM.
#[asset(group = "sources")]
fn customers_raw() -> Vec<String> {
    vec!["acme".into(), "globex".into()]
}

/// Orders over 50.
#[asset(group = "transforms")]
fn orders_cleaned(orders_raw: &Vec<u32>) -> Vec<u32> {
    orders_raw.iter().copied().filter(|&o| o > 50).collect()
}

/// Revenue per customer, for the morning report (not in the nightly job).
#[asset(group = "reports")]
fn revenue_report(orders_cleaned: &Vec<u32>, customers_raw: &Vec<String>) -> String {
    let total: u32 = orders_cleaned.iter().sum();
    format!("{} customers, revenue {total}", customers_raw.len())
}

asset_job!(
    /// Sources and their transforms: what has to be fresh every morning.
    daily_refresh,
    "group:sources | group:transforms"
);

// The five common schedules.
schedule!(
    nightly,
    job = daily_refresh,
    cron = "0 2 * * *",
    timezone = "Europe/Paris"
);
schedule!(hourly, job = daily_refresh, cron = "0 * * * *");
schedule!(every_six_hours, job = daily_refresh, cron = "0 */6 * * *");
schedule!(
    business_hours,
    job = daily_refresh,
    cron = "0 9-17 * * 1-5",
    timezone = "America/New_York",
    description = "Every hour of the New York business day"
);
schedule!(
    quarter_hourly,
    select = "revenue_report",
    cron = "*/15 * * * *",
    default_status = running,
    skip_if_running = true
);

fn main() -> std::process::ExitCode {
    orch::main()
}
