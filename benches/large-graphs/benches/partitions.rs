//! A backfill of N daily partitions of one trivial asset, the workload of
//! `../shared/bench/dagster/partitions.py` (`daily_metric`: `sum(range(1000))` plus the day's
//! ordinal, stored once per partition). `ORCH_BENCH_DAYS` (default 365) sets the range.
//!
//! Without a command it times `backfill` in process (one recorded run per partition, as
//! Dagster's loop mode) with persistence on, and prints a table row and a JSON line; with a
//! command it is an ordinary orch program (`backfill --select daily_metric --from .. --to ..`).
#![allow(missing_docs)]

use std::time::Instant;

use orch::prelude::*;

#[asset(partitions = daily("2024-01-01").end("2030-01-01"))]
fn daily_metric(ctx: &AssetContext) -> Result<i64, String> {
    let window = ctx.partition_time_window().ok_or("daily_metric is daily")?;
    let day = window.start.date();
    // Days since 0001-01-01 plus one: Python's `date.toordinal()`.
    let ordinal = day
        .since(jiff::civil::date(1, 1, 1))
        .map_err(|e| e.to_string())?
        .get_days() as i64
        + 1;
    Ok((0..1000).sum::<i64>() + ordinal)
}

fn main() -> std::process::ExitCode {
    if std::env::args()
        .nth(1)
        .is_some_and(|c| !c.starts_with("--"))
    {
        return orch::main();
    }
    let days: u32 = std::env::var("ORCH_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(365);
    let last = jiff::civil::date(2024, 1, 1)
        .checked_add(jiff::Span::new().days(i64::from(days) - 1))
        .expect("a date in range")
        .to_string();
    let exe = std::env::current_exe().expect("own path");
    let home = std::env::temp_dir().join(format!("orch-bench-partitions-{}", std::process::id()));
    let t = Instant::now();
    let status = std::process::Command::new(&exe)
        .args([
            "backfill",
            "--select",
            "daily_metric",
            "--from",
            "2024-01-01",
            "--to",
            &last,
        ])
        .env("ORCH_HOME", &home)
        .status()
        .expect("the backfill starts");
    let wall = t.elapsed();
    assert!(status.success());
    let stored = std::fs::read_dir(home.join("storage/daily_metric")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .count()
    });
    assert_eq!(stored, days as usize, "one stored file per partition");
    let _ = std::fs::remove_dir_all(&home);
    let per_ms = wall.as_secs_f64() * 1e3 / f64::from(days);
    println!(
        "partitions days={days} backfill process {:.3} s = {per_ms:.2} ms/partition (one recorded run per partition, {} at a time)",
        wall.as_secs_f64(),
        orch::default_jobs()
    );
    println!(
        "{{\"bench\":\"orch_backfill\",\"days\":{days},\"wall_s\":{:.4},\"per_partition_ms\":{per_ms:.3}}}",
        wall.as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
