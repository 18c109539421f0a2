//! Daily partitions: `events_raw` reads one day, `daily_counts` aggregates that day (a
//! DataFrame), `regions` is read whole by every partition, `rolling_week` reads the last 7
//! days of `daily_counts` (a partition mapping), and `quarter_counts` reads every partition of
//! `daily_counts` at once (backfill runs each after the partitions it reads).
//!
//! ```text
//! cargo run --example partitioned -- materialize --partition 2024-01-05
//! cargo run --example partitioned -- backfill --select '*' --from 2024-01-01 --to 2024-03-31
//! cargo run --example partitioned -- partitions daily_counts
//! ```
//!
//! `FAIL_DAY=2024-01-13` makes that day fail, to see a backfill report and re-run it.

use orch::polars::prelude::*;
use orch::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    day: String,
    hour: u32,
    region: String,
}

/// Region codes, shared by every day (unpartitioned).
#[asset]
fn regions() -> Vec<String> {
    vec!["eu".to_owned(), "us".to_owned()]
}

/// One day of events. A real asset would filter its source on the time window.
#[asset(partitions = daily("2024-01-01").end("2024-04-01"))]
fn events_raw(ctx: &AssetContext, regions: &Vec<String>) -> Result<Vec<Event>, String> {
    let day = ctx.partition_key().unwrap_or_default().to_owned();
    if std::env::var("FAIL_DAY").is_ok_and(|d| d == day) {
        return Err(format!("the source has no data for {day}"));
    }
    let window = ctx
        .partition_time_window()
        .ok_or("a daily asset has a window")?;
    ctx.log().info(format!("reading events in {window}"));
    // A deterministic number of events per day: the day of the month times the regions.
    let n = window.start.day() as u32;
    Ok((0..n)
        .flat_map(|hour| {
            regions.iter().map(move |r| Event {
                day: String::new(),
                hour: hour % 24,
                region: r.clone(),
            })
        })
        .map(|mut e| {
            e.day = day.clone();
            e
        })
        .collect())
}

/// Events per region for the same day.
#[asset(partitions = daily("2024-01-01").end("2024-04-01"))]
fn daily_counts(ctx: &AssetContext, events_raw: &Vec<Event>) -> Result<DataFrame, BoxError> {
    let mut counts: std::collections::BTreeMap<String, i64> = Default::default();
    for e in events_raw {
        *counts.entry(e.region.clone()).or_default() += 1;
    }
    let day = ctx.partition_key().unwrap_or_default();
    Ok(df!(
        "day" => vec![day; counts.len()],
        "region" => counts.keys().cloned().collect::<Vec<_>>(),
        "events" => counts.values().copied().collect::<Vec<_>>(),
    )?)
}

/// Events per region over the 7 days ending with this one: the last 7 partitions of
/// `daily_counts` (fewer in the first week), concatenated.
#[asset(partitions = daily("2024-01-01").end("2024-04-01"))]
fn rolling_week(#[partitions(last = 7)] daily_counts: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(daily_counts
        .clone()
        .group_by([col("region")])
        .agg([col("events").sum(), col("day").n_unique().alias("days")])
        .sort(["region"], Default::default())
        .collect()?)
}

/// Events per region over the whole quarter: reads every daily partition, concatenated.
#[asset]
fn quarter_counts(daily_counts: &LazyFrame) -> Result<DataFrame, BoxError> {
    Ok(daily_counts
        .clone()
        .group_by([col("region")])
        .agg([col("events").sum()])
        .sort(["region"], Default::default())
        .collect()?)
}

fn main() -> std::process::ExitCode {
    orch::main()
}
