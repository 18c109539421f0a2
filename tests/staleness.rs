//! Staleness of partitioned assets, partition by partition: after a full backfill nothing is
//! stale; after one partition of a source changes, exactly the partitions downstream of it
//! and the asset that reads every partition are, and `--stale` runs just those.

use std::sync::atomic::{AtomicI64, Ordering};

use orch::polars::prelude::*;
use orch::prelude::*;
use orch::{AssetStatus, StaleInputs, StaleReason};

/// Added to the value of 2024-03-02, to change that one partition's data.
static BUMP: AtomicI64 = AtomicI64::new(0);

#[asset(group = "st", partitions = daily("2024-03-01").end("2024-03-04"))]
fn st_source(ctx: &AssetContext) -> PolarsResult<DataFrame> {
    let day = ctx.partition_key().unwrap_or("?");
    let bump = if day == "2024-03-02" {
        BUMP.load(Ordering::SeqCst)
    } else {
        0
    };
    df!("day" => [day], "v" => [1i64 + bump])
}

#[asset(group = "st", partitions = daily("2024-03-01").end("2024-03-04"))]
fn st_daily(st_source: &DataFrame) -> PolarsResult<DataFrame> {
    Ok(st_source.clone())
}

/// Reads every partition of `st_daily`, concatenated.
#[asset(group = "st")]
fn st_total(st_daily: &DataFrame) -> PolarsResult<i64> {
    st_daily.column("v")?.as_materialized_series().sum::<i64>()
}

const DAYS: [&str; 3] = ["2024-03-01", "2024-03-02", "2024-03-03"];

fn stale_now(instance: &Instance) -> orch::Staleness {
    let graph = orch::definitions().unwrap();
    orch::staleness(
        graph,
        &StaleInputs::load(graph, &**instance.storage()).unwrap(),
    )
}

fn id(key: &str) -> usize {
    let graph = orch::definitions().unwrap();
    graph.id_of(&key.parse().unwrap()).unwrap()
}

#[test]
fn partitions_are_stale_one_by_one_and_a_consumer_of_all_becomes_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    BUMP.store(0, Ordering::SeqCst);
    for day in DAYS {
        let run = instance
            .materialize(
                RunRequest::select("st_source or st_daily")
                    .unwrap()
                    .partition(day),
            )
            .run()
            .unwrap();
        assert!(run.success(), "{run:?}");
    }
    let total = instance
        .materialize(RunRequest::select("st_total").unwrap())
        .run()
        .unwrap();
    assert_eq!(*total.output::<st_total>(), 3);

    // Everything is up to date, the consumer of every partition included.
    let stale = stale_now(&instance);
    for key in ["st_source", "st_daily", "st_total"] {
        assert_eq!(stale.of(id(key)), None, "{key}");
    }
    let nothing = instance
        .materialize(RunRequest::select("group:st").unwrap().only_stale())
        .run()
        .unwrap();
    assert!(nothing.outcomes().is_empty(), "{nothing:?}");

    // One partition of the source changes.
    BUMP.store(10, Ordering::SeqCst);
    let run = instance
        .materialize(
            RunRequest::select("st_source")
                .unwrap()
                .partition("2024-03-02"),
        )
        .run()
        .unwrap();
    assert!(run.success());
    let stale = stale_now(&instance);
    assert_eq!(stale.of(id("st_source")), None);
    assert_eq!(stale.stale_partitions(id("st_daily")), ["2024-03-02"]);
    assert_eq!(
        stale.partition(id("st_daily"), "2024-03-02"),
        Some(&StaleReason::UpstreamChanged("st_source".parse().unwrap()))
    );
    assert_eq!(stale.partition(id("st_daily"), "2024-03-01"), None);
    assert_eq!(
        stale.of(id("st_daily")).map(ToString::to_string).as_deref(),
        Some("1 of 3 partitions (2024-03-02: upstream `st_source` changed)")
    );
    assert_eq!(
        stale.of(id("st_total")),
        Some(&StaleReason::UpstreamStale("st_daily".parse().unwrap()))
    );

    // `--stale` for a partition runs what is stale in it, and only that.
    let fixed = instance
        .materialize(
            RunRequest::select("st_source or st_daily")
                .unwrap()
                .partition("2024-03-02")
                .only_stale(),
        )
        .run()
        .unwrap();
    assert_eq!(
        fixed.outcome("st_daily").unwrap().status,
        AssetStatus::Succeeded
    );
    assert!(
        fixed
            .outcome("st_source")
            .is_none_or(|o| o.status == AssetStatus::Loaded),
        "{fixed:?}"
    );
    let untouched = instance
        .materialize(
            RunRequest::select("st_source or st_daily")
                .unwrap()
                .partition("2024-03-01")
                .only_stale(),
        )
        .run()
        .unwrap();
    assert!(untouched.outcomes().is_empty(), "{untouched:?}");
    // The consumer of every partition is now merely changed-upstream, and then up to date.
    assert_eq!(
        stale_now(&instance).of(id("st_total")),
        Some(&StaleReason::UpstreamChanged("st_daily".parse().unwrap()))
    );
    let total = instance
        .materialize(RunRequest::select("st_total").unwrap())
        .run()
        .unwrap();
    assert_eq!(*total.output::<st_total>(), 13);
    let stale = stale_now(&instance);
    for key in ["st_source", "st_daily", "st_total"] {
        assert_eq!(stale.of(id(key)), None, "{key}");
    }
}

#[asset(
    group = "st_range",
    partitions = static_partitions(["eu", "us", "apac"]),
    partition_by = "region"
)]
fn sr_source(ctx: &AssetContext) -> PolarsResult<DataFrame> {
    let keys = ctx.partition_keys().to_vec();
    let ones = vec![1i64; keys.len()];
    df!("region" => keys, "v" => ones)
}

#[asset(
    group = "st_range",
    partitions = static_partitions(["eu", "us", "apac"]),
    partition_by = "region"
)]
fn sr_copy(sr_source: &DataFrame) -> PolarsResult<DataFrame> {
    Ok(sr_source.clone())
}

#[test]
fn a_run_over_a_range_of_static_partitions_is_up_to_date_and_reexecutes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let regions = ["eu", "us", "apac"];
    let first = instance
        .materialize(
            RunRequest::select("group:st_range")
                .unwrap()
                .partition_range(regions),
        )
        .run()
        .unwrap();
    assert!(first.success(), "{first:?}");
    // Each partition of the copy recorded the version of the partition it read.
    let stale = stale_now(&instance);
    assert_eq!(stale.of(id("sr_source")), None);
    assert_eq!(stale.of(id("sr_copy")), None);

    // Re-executing keeps the definition's order (not text order, which would be refused as
    // not consecutive).
    let graph = orch::definitions().unwrap();
    let again = orch::Reexecution::of(&**instance.storage(), first.run_id().as_str())
        .unwrap()
        .request(graph)
        .unwrap()
        .unwrap();
    assert_eq!(
        again.partition_scope(),
        &orch::PartitionScope::Range(regions.map(String::from).to_vec())
    );
    let second = instance.materialize(again).run().unwrap();
    assert!(second.success(), "{second:?}");
    let record = instance.storage().run(second.run_id().as_str()).unwrap();
    assert_eq!(record.parent.as_ref(), Some(first.run_id()));
    assert_eq!(record.trigger, orch::Trigger::Reexecution);
}

/// Reads the day before (a mapping), from the same source.
#[asset(group = "st_map", partitions = daily("2024-03-01").end("2024-03-04"))]
fn st_prev(#[partitions(offset = -1)] st_source: &DataFrame) -> PolarsResult<DataFrame> {
    Ok(st_source.clone())
}

#[test]
fn a_mapped_input_computed_in_the_same_run_records_the_partition_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let day_one = instance
        .materialize(
            RunRequest::select("st_source")
                .unwrap()
                .partition("2024-03-01"),
        )
        .run()
        .unwrap();
    assert!(day_one.success());
    // One run computes the source's 2nd and the mapped asset, which reads the 1st.
    let run = instance
        .materialize(
            RunRequest::select("st_source or st_prev")
                .unwrap()
                .partition("2024-03-02"),
        )
        .run()
        .unwrap();
    assert!(run.success(), "{run:?}");
    let stale = stale_now(&instance);
    assert_eq!(stale.partition(id("st_prev"), "2024-03-02"), None);
}
