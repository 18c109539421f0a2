//! `Backfill` as a library type: it plans run requests in stages (unpartitioned inputs, one
//! run per partition, consumers of every partition), runs them with a report per partition,
//! tags every run with its id, and stops cleanly when canceled.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orch::polars::prelude::{DataFrame, PolarsResult, df};
use orch::prelude::*;
use orch::storage::RunFilter;
use orch::{
    AssetKey, BACKFILL_TAG, Backfill, BackfillError, BackfillStep, CancellationToken,
    PartitionScope, PartitionStatus, Trigger,
};

/// An unpartitioned input every region reads.
#[asset(group = "sales")]
fn exchange_rate() -> u32 {
    2
}

/// One partition per region; static keys whose order is not text order.
#[asset(group = "sales", partitions = static_partitions(["eu", "us", "apac"]))]
fn regional_sales(ctx: &AssetContext, exchange_rate: &u32) -> PolarsResult<DataFrame> {
    let region = ctx.partition_key().unwrap_or_default();
    let base: u32 = match region {
        "eu" => 10,
        "us" => 20,
        _ => 30,
    };
    df!("region" => [region], "amount" => [base * exchange_rate])
}

/// Reads every region (their frames, concatenated).
#[asset(group = "sales")]
fn global_sales(regional_sales: &DataFrame) -> u32 {
    u32::try_from(regional_sales.height()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn selection(text: &str) -> AssetSelection {
    text.parse().unwrap()
}

#[test]
fn a_backfill_plans_its_runs_in_stages_and_in_the_definitions_order() {
    let instance = Instance::ephemeral();
    let plan = Backfill::all(selection("group:sales"))
        .plan(&instance)
        .unwrap();
    assert_eq!(plan.keys(), ["eu", "us", "apac"]);
    let requests = plan.requests();
    let scopes: Vec<(String, PartitionScope)> = requests
        .iter()
        .map(|r| (r.target().to_string(), r.partition_scope().clone()))
        .collect();
    let key = |k: &str| PartitionScope::Key(k.to_owned());
    assert_eq!(
        scopes,
        [
            ("exchange_rate".to_owned(), PartitionScope::None),
            ("regional_sales".to_owned(), key("eu")),
            ("regional_sales".to_owned(), key("us")),
            ("regional_sales".to_owned(), key("apac")),
            ("global_sales".to_owned(), PartitionScope::None),
        ]
    );
    for request in &requests {
        assert_eq!(
            request.trigger(),
            &Trigger::Backfill {
                backfill_id: plan.id().to_owned()
            }
        );
        assert_eq!(
            request.tags().get(BACKFILL_TAG).map(String::as_str),
            Some(plan.id())
        );
    }

    // Keys given out of order run in the definition's order; an unknown key is refused.
    let some = Backfill::keys(selection("regional_sales"), ["apac", "eu"])
        .plan(&instance)
        .unwrap();
    assert_eq!(some.keys(), ["eu", "apac"]);
    let err = Backfill::keys(selection("regional_sales"), ["mars"])
        .plan(&instance)
        .unwrap_err();
    assert!(matches!(err, BackfillError::Range { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("`mars` is not one of its partitions"),
        "{err}"
    );
    let err = Backfill::all(selection("exchange_rate"))
        .plan(&instance)
        .unwrap_err();
    assert!(matches!(err, BackfillError::NotPartitioned), "{err}");
}

#[test]
fn a_backfill_runs_every_partition_and_records_each_run_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let plan = Backfill::all(selection("group:sales"))
        .parallel(2)
        .tag("team", "data")
        .plan(&instance)
        .unwrap();
    let mut steps = Vec::new();
    let report = runtime()
        .block_on(plan.run(&instance, &CancellationToken::new(), &mut |step| {
            if let BackfillStep::After { assets } = step {
                steps.push(assets.to_vec());
            }
        }))
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(report.succeeded(), 3);
    assert_eq!(steps, [vec!["global_sales".parse::<AssetKey>().unwrap()]]);
    let keys: Vec<&str> = report.partitions().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["eu", "us", "apac"]);

    // Every run is in the store, tagged with the backfill and the caller's tags.
    let store = instance.storage();
    let runs = store
        .runs(&RunFilter::default().tag(BACKFILL_TAG, plan.id()))
        .unwrap();
    assert_eq!(runs.len(), 5);
    assert!(
        runs.iter()
            .all(|r| r.tags.get("team").map(String::as_str) == Some("data"))
    );
    for p in report.partitions() {
        let run_id = p.run_id.as_ref().expect("each partition ran");
        let record = store.run(run_id.as_str()).unwrap();
        assert_eq!(record.partitions, PartitionScope::Key(p.key.clone()));
    }
}

/// The token the `slow_regions` backfill is canceled through, from inside an asset.
static CANCEL: Mutex<Option<CancellationToken>> = Mutex::new(None);
/// How many partitions of `slow_regions` were called.
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Cancels its own backfill while materializing `us`, then waits to see the cancellation.
#[asset(group = "slow", partitions = static_partitions(["eu", "us", "apac"]))]
fn slow_regions(ctx: &AssetContext) -> PolarsResult<DataFrame> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if ctx.partition_key() == Some("us") {
        if let Some(token) = CANCEL.lock().unwrap().as_ref() {
            token.cancel();
        }
        while !ctx.is_cancelled() {
            std::thread::yield_now();
        }
    }
    df!("region" => [ctx.partition_key().unwrap_or_default()])
}

/// Reads every region: skipped when the backfill is canceled.
#[asset(group = "slow")]
fn slow_total(slow_regions: &DataFrame) -> u32 {
    u32::try_from(slow_regions.height()).unwrap()
}

#[test]
fn canceling_a_backfill_starts_no_new_run_and_says_which_partitions_did_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let cancel = CancellationToken::new();
    *CANCEL.lock().unwrap() = Some(cancel.clone());
    let plan = Backfill::all(selection("group:slow"))
        .parallel(1)
        .plan(&instance)
        .unwrap();
    let skipped = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&skipped);
    let report = runtime()
        .block_on(plan.run(&instance, &cancel, &mut move |step| {
            if let BackfillStep::Skipped { assets, .. } = step {
                seen.lock().unwrap().extend(assets.iter().cloned());
            }
        }))
        .unwrap();

    assert!(report.canceled());
    assert!(!report.success());
    // One run at a time: `eu` ran, `us` canceled the backfill, `apac` never started.
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    let status = |key: &str| {
        let p = report.partitions().iter().find(|p| p.key == key).unwrap();
        (p.status.clone(), p.run_id.is_some())
    };
    assert_eq!(status("eu"), (PartitionStatus::Succeeded, true));
    assert_eq!(status("apac"), (PartitionStatus::Canceled, false));
    let total: AssetKey = "slow_total".parse().unwrap();
    assert_eq!(report.skipped(), std::slice::from_ref(&total));
    assert_eq!(*skipped.lock().unwrap(), [total]);
    // Only the two runs that started are recorded.
    let runs = instance
        .storage()
        .runs(&RunFilter::default().tag(BACKFILL_TAG, plan.id()))
        .unwrap();
    assert_eq!(runs.len(), 2);
}

/// Each call of the `weather` assets: (asset, partition).
static WEATHER_CALLS: Mutex<Vec<(&str, String)>> = Mutex::new(Vec::new());

fn weather_call(asset: &'static str, ctx: &AssetContext) -> u32 {
    let key = ctx.partition_key().unwrap_or_default().to_owned();
    WEATHER_CALLS.lock().unwrap().push((asset, key));
    1
}

#[asset(group = "weather", partitions = static_partitions(["north", "south", "east"]))]
fn rainfall(ctx: &AssetContext) -> u32 {
    weather_call("rainfall", ctx)
}

#[asset(group = "weather", partitions = static_partitions(["north", "south", "east"]))]
fn sunshine(ctx: &AssetContext) -> u32 {
    weather_call("sunshine", ctx)
}

#[test]
fn a_stale_backfill_runs_in_each_partition_only_what_is_stale_there() {
    let instance = Instance::ephemeral();
    let run = |target: &str, key: &str| {
        let request = RunRequest::selection(selection(target)).partition(key);
        instance.materialize(request).run().unwrap();
    };
    // `rainfall` is up to date in north, `sunshine` in south; both in east.
    run("rainfall", "north");
    run("sunshine", "south");
    run("group:weather", "east");
    WEATHER_CALLS.lock().unwrap().clear();

    let plan = Backfill::stale(selection("group:weather"))
        .parallel(1)
        .plan(&instance)
        .unwrap();
    assert_eq!(plan.keys(), ["north", "south"]);
    let stale: Vec<String> = plan.stale().iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(stale, ["rainfall", "sunshine"]);
    assert!(plan.requests().iter().all(RunRequest::is_only_stale));
    let report = runtime()
        .block_on(plan.run(&instance, &CancellationToken::new(), &mut |_| {}))
        .unwrap();
    assert!(report.success(), "{report:?}");
    // Each partition's run called only what was stale in it, not every stale asset.
    let mut calls = std::mem::take(&mut *WEATHER_CALLS.lock().unwrap());
    calls.sort();
    assert_eq!(
        calls,
        [
            ("rainfall", "south".to_owned()),
            ("sunshine", "north".to_owned()),
        ]
    );
    // Then nothing is stale: the plan is empty.
    let again = Backfill::stale(selection("group:weather"))
        .plan(&instance)
        .unwrap();
    assert!(again.is_empty());
    assert!(again.requests().is_empty());
}
