//! Schedules, a sensor and declarative automation: the seed's `daily_refresh` job (sources
//! and transforms) with the five common schedules, in their time zones; a sensor that runs it
//! for each new file in a landing directory; an eager asset that follows whatever updates its
//! upstream; a freshness policy; and a blocking and a warning asset check.
//!
//! ```sh
//! cargo run --example scheduled -- jobs            # the job, its selection and schedules
//! cargo run --example scheduled -- schedules       # each schedule and its next tick
//! cargo run --example scheduled -- schedule next business_hours --count 5
//! cargo run --example scheduled -- schedule preview business_hours --at 2026-12-24T23:00:00Z
//! cargo run --example scheduled -- materialize --job daily_refresh
//! cargo run --example scheduled -- sensor tick new_files   # a run per new file in landing/
//! cargo run --example scheduled -- daemon          # ticks queue runs; the queue starts them
//! cargo run --example scheduled -- daemon --once --at 2026-03-29T12:00:00Z
//! cargo run --example scheduled -- automation explain order_summary   # why it ran, or not
//! cargo run --example scheduled -- health          # freshness: warns and fails (exit 1)
//! cargo run --example scheduled -- checks          # the asset checks and their latest results
//! cargo run --example scheduled -- check run orders_cleaned
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

/// Orders over 50: stale after an hour (`health` fails), worth a warning after half of it.
#[asset(
    group = "transforms",
    freshness = freshness::window("1h").warn("30m")
)]
fn orders_cleaned(orders_raw: &Vec<u32>) -> Vec<u32> {
    orders_raw.iter().copied().filter(|&o| o > 50).collect()
}

/// Revenue per customer, for the morning report (not in the nightly job).
#[asset(group = "reports")]
fn revenue_report(orders_cleaned: &Vec<u32>, customers_raw: &Vec<String>) -> String {
    let total: u32 = orders_cleaned.iter().sum();
    format!("{} customers, revenue {total}", customers_raw.len())
}

/// Every cleaned order is over 50: a wrong filter must not reach the summary and the report
/// (a blocking check: if it fails, the run skips `orders_cleaned`'s downstream).
#[asset_check(asset = orders_cleaned, blocking = true)]
fn orders_over_50(orders_cleaned: &Vec<u32>) -> CheckResult {
    let bad = orders_cleaned.iter().filter(|&&o| o <= 50).count();
    CheckResult::new(bad == 0)
        .description(format!("{bad} order(s) of 50 or less"))
        .metadata("orders", orders_cleaned.len())
}

/// A day with fewer than three orders is worth a look, not a stop.
#[asset_check(asset = orders_cleaned, severity = warn)]
fn enough_orders(orders_cleaned: &Vec<u32>) -> CheckResult {
    match orders_cleaned.len() {
        n if n < 3 => CheckResult::failed(format!("only {n} order(s)")),
        _ => CheckResult::passed(),
    }
}

/// Order counts by size, kept up to date by declarative automation: requested whenever
/// `orders_cleaned` is updated (by the nightly job, a sensor's run or by hand) and not in
/// progress.
#[asset(group = "reports", automation = eager())]
fn order_summary(orders_cleaned: &Vec<u32>) -> (usize, u32) {
    (orders_cleaned.len(), orders_cleaned.iter().sum())
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
    description = "Every hour of the New York business day, but on market holidays",
    decide = business_hours_runs
);

/// A schedule with logic: each tick of `business_hours` decides what runs. Market holidays
/// (a fixed list here; a real one would read a calendar) run nothing, with the reason
/// recorded; other ticks run the job once, tagged with the hour they serve.
fn business_hours_runs(ctx: &ScheduleContext) -> ScheduleDecision {
    const HOLIDAYS: [(i8, i8); 3] = [(1, 1), (7, 4), (12, 25)];
    let day = ctx.scheduled().date();
    if HOLIDAYS.contains(&(day.month(), day.day())) {
        return ScheduleDecision::skip(format!("{day} is a market holiday"));
    }
    ScheduleDecision::runs([SensorRun::new().tag("hour", ctx.scheduled().hour().to_string())])
}
schedule!(
    quarter_hourly,
    select = "revenue_report",
    cron = "*/15 * * * *",
    default_status = running,
    skip_if_running = true
);

/// New order files in the landing directory (`$LANDING_DIR`, default `landing/`): each file
/// runs the job once (its name is the run key); the cursor is the last file name seen, so
/// files are read in name order (e.g. `orders-2026-03-28.csv`).
#[sensor(job = daily_refresh, interval = "30s", timeout = "10s")]
fn new_files(ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    let dir = std::env::var("LANDING_DIR").unwrap_or_else(|_| "landing".to_owned());
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| ctx.cursor().is_none_or(|seen| name.as_str() > seen))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(SensorResult::skip(format!(
                "no landing directory `{dir}` yet"
            )));
        }
        Err(e) => return Err(format!("cannot list `{dir}`: {e}").into()),
    };
    names.sort();
    let Some(last) = names.last().cloned() else {
        return Ok(SensorResult::skip("no new file"));
    };
    Ok(SensorResult::new()
        .runs(names.iter().map(|n| SensorRun::keyed(n).tag("file", n)))
        .cursor(last))
}

fn main() -> std::process::ExitCode {
    orch::main()
}
