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

/// New files in the landing bucket, each run once (its name is the run key).
#[sensor(job = nightly_job_for_sensor, interval = "45s", timeout = "10s", default_status = running, skip_if_running = true)]
fn landed_files(ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    let seen: usize = ctx.cursor().unwrap_or("0").parse()?;
    Ok(SensorResult::new()
        .run(SensorRun::keyed(format!("file-{seen}")).tag("source", "bucket"))
        .cursor((seen + 1).to_string()))
}

asset_job!(nightly_job_for_sensor, "*");

#[sensor(select = "*", description = "polled every 5 minutes")]
fn by_selection(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::skip("nothing new"))
}

/// Each new materialization of `orders` runs the nightly job once.
#[sensor(on_asset = orders, job = nightly_job_for_sensor, interval = "5s")]
fn orders_updated(
    _ctx: &SensorContext,
    materialization: &AssetMaterialization,
) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new().run(SensorRun::new().tag("partition", materialization.partition.clone().unwrap_or_default())))
}

/// An alert for each failed run.
#[sensor(on_run_failure, interval = "10s")]
fn alert(_ctx: &SensorContext, run: &RunFailure) -> Result<SensorResult, BoxError> {
    eprintln!("run {} {}: {:?}", run.run_id, run.status, run.failures);
    Ok(SensorResult::new())
}
