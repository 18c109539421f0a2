//! Daily partitions: `events_raw` reads one day, `daily_counts` aggregates that day, and a
//! static `region` lookup is read whole by every partition.
//!
//! ```text
//! cargo run --example partitioned -- materialize --partition 2024-01-05
//! cargo run --example partitioned -- backfill --select '*' --from 2024-01-01 --to 2024-01-31
//! cargo run --example partitioned -- partitions daily_counts
//! ```
//!
//! `FAIL_DAY=2024-01-13` makes that day fail, to see a backfill report and re-run it.

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
fn daily_counts(ctx: &AssetContext, events_raw: &Vec<Event>) -> Vec<(String, usize)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for e in events_raw {
        *counts.entry(e.region.clone()).or_default() += 1;
    }
    ctx.add_output_metadata("rows", events_raw.len());
    counts.into_iter().collect()
}

fn main() -> std::process::ExitCode {
    orch::main()
}
