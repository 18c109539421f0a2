//! Embedding orch: what a daemon or a web UI does, in one small program. It opens an
//! `Instance`, submits two runs at once, prints their events live as they arrive, cancels
//! the slow one, then lists the runs with their statuses.
//!
//! ```sh
//! cargo run --example embedded
//! ```

use std::time::Duration;

use orch::prelude::*;
use orch::storage::{EventKind, RunFilter};
use tokio::sync::broadcast::error::RecvError;

/// Raw orders, as a source would fetch them.
#[asset(group = "daily")]
fn orders() -> Vec<u32> {
    (1..=1_000).collect()
}

/// The day's revenue.
#[asset(group = "daily")]
fn revenue(orders: &Vec<u32>) -> u64 {
    orders.iter().map(|&o| u64::from(o)).sum()
}

/// A long report that checks for cancellation between its chunks of work.
#[asset(group = "reports")]
fn slow_report(ctx: &AssetContext) -> Result<u64, BoxError> {
    let mut done = 0;
    for chunk in 0..600 {
        if ctx.is_cancelled() {
            return Err(
                format!("stopped after {chunk} of 600 chunks: the run was canceled").into(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
        done += 1;
    }
    Ok(done)
}

/// Runs after the report: canceled with it.
#[asset(group = "reports")]
fn report_email(slow_report: &u64) -> String {
    format!("the report covered {slow_report} chunks")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The configuration the command line would use: `orch.toml` here, then `ORCH_*`
    // variables (the state directory defaults to `.orch`). `Instance::ephemeral()` would keep
    // everything in memory instead.
    let config = orch::Config::discover(&std::env::current_dir()?, std::env::vars())?;
    let instance = Instance::builder().config(config).build()?;
    let mut feed = instance.subscribe();

    let daily = instance.submit(RunRequest::select("group:daily")?.tag("source", "embedded"));
    let report = instance.submit(RunRequest::select("group:reports")?);
    println!(
        "submitted runs {} (daily) and {} (reports)",
        daily.run_id().short(),
        report.run_id().short()
    );

    // The live feed: every event of both runs, as the executor emits it.
    let mut ended = 0;
    while ended < 2 {
        let event = match feed.blocking_recv() {
            Ok(event) => event,
            Err(RecvError::Lagged(n)) => {
                println!("(missed {n} events: the store has them)");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        let asset = event
            .asset
            .as_ref()
            .map_or("run".to_owned(), ToString::to_string);
        println!(
            "  [{}] {asset:<13} {}",
            event.run_id.short(),
            event.kind.as_str()
        );
        match event.kind {
            // Once the report is under way, stop it.
            EventKind::Started if event.is_of("slow_report") => {
                println!("  canceling run {}", report.run_id().short());
                report.cancel();
            }
            EventKind::RunEnded(_) => ended += 1,
            _ => {}
        }
    }
    let daily = daily.wait()?;
    let report = report.wait()?;
    println!("daily: {}; reports: {}", daily.status(), report.status());

    println!("\nrecent runs:");
    for run in instance.storage().runs(&RunFilter::recent(5))? {
        println!(
            "  {}  {:<9}  {} ok, {} failed, {} skipped  {}",
            run.id.short(),
            run.status,
            run.counts.0,
            run.counts.1,
            run.counts.2,
            run.describe()
        );
    }
    Ok(())
}
