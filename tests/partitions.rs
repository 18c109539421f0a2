//! Partitioned assets: keys and windows reach the asset, each partition is stored and recorded
//! on its own, an unselected partitioned upstream loads the same partition, and bad keys or a
//! missing partition are errors that say what is valid.

use orch::prelude::*;
use orch::storage::{EventKind, SqliteStorage, Storage};
use orch::{AssetStatus, Instance, MaterializeError, PlanError};

#[asset(group = "days", partitions = daily("2024-01-01").end("2024-02-01"))]
fn day_source(ctx: &AssetContext) -> Result<String, String> {
    let key = ctx.partition_key().ok_or("no partition key")?;
    let window = ctx.partition_time_window().ok_or("no window")?;
    if key == "2024-01-13" {
        return Err("no data for the 13th".to_owned());
    }
    // The window agrees with the key: it starts on that day and lasts 24 hours.
    assert_eq!(window.start.date().to_string(), key);
    assert_eq!((&window.end - &window.start).get_hours(), 24);
    Ok(format!("events of {key}"))
}

#[asset(group = "days", partitions = daily("2024-01-01").end("2024-02-01"))]
fn day_summary(ctx: &AssetContext, day_source: &String) -> String {
    format!(
        "{} -> summary ({})",
        day_source,
        ctx.partition_key().unwrap_or("?")
    )
}

#[asset(group = "regions", partitions = static_partitions(["eu", "us", "apac"]))]
fn region_report(ctx: &AssetContext) -> String {
    format!("report for {}", ctx.partition_key().unwrap_or("?"))
}

fn recording(dir: &std::path::Path) -> Instance {
    Instance::open(dir).unwrap()
}

#[test]
fn each_partition_runs_with_its_key_and_is_stored_apart() {
    let dir = tempfile::tempdir().unwrap();
    for day in ["2024-01-05", "2024-01-06"] {
        let result = Materialize::select("group:days")
            .partition(day)
            .instance(&recording(dir.path()))
            .run()
            .unwrap();
        assert!(result.success(), "{result:?}");
        assert_eq!(
            result.output::<day_summary>(),
            &format!("events of {day} -> summary ({day})")
        );
    }
    let storage = dir.path().join("storage");
    assert!(storage.join("day_source/2024-01-05.bin").exists());
    assert!(storage.join("day_summary/2024-01-06.bin").exists());
    assert!(!storage.join("day_source.bin").exists());

    // Only the downstream: its upstream's *same* partition loads from storage.
    let result = Materialize::select("day_summary")
        .partition("2024-01-06")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(result.success());
    assert!(matches!(
        result.outcome("day_source").unwrap().status,
        AssetStatus::Loaded
    ));
    assert_eq!(
        result.output::<day_summary>(),
        "events of 2024-01-06 -> summary (2024-01-06)"
    );
    // A partition the upstream never had is named in the error.
    let err = Materialize::select("day_summary")
        .partition("2024-01-07")
        .instance(&recording(dir.path()))
        .run()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "asset `day_summary` needs the output of `day_source` for partition `2024-01-07`, which has never been materialized: select `+day_summary` to materialize it too"
    );

    // The store knows each partition's last outcome, including a failure.
    let failed = Materialize::select("group:days")
        .partition("2024-01-13")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(!failed.success());
    let store = SqliteStorage::open(dir.path()).unwrap();
    let mut statuses: Vec<(String, EventKind)> = store
        .partition_statuses("day_source")
        .unwrap()
        .into_iter()
        .map(|s| (s.partition, s.kind))
        .collect();
    statuses.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        statuses,
        [
            ("2024-01-05".to_owned(), EventKind::Materialized),
            ("2024-01-06".to_owned(), EventKind::Materialized),
            ("2024-01-13".to_owned(), EventKind::Failed),
        ]
    );
    // Events carry the partition.
    let events = store.events(failed.run_id().as_str()).unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.is_of("day_source"))
            .all(|e| e.partition.as_deref() == Some("2024-01-13"))
    );
}

#[test]
fn keys_are_checked_before_anything_runs() {
    let err = |m: Materialize<'_>| m.run().unwrap_err();
    match err(Materialize::select("group:days")) {
        MaterializeError::Plan(PlanError::PartitionRequired { asset, example, .. }) => {
            assert_eq!(asset.to_string(), "day_source");
            assert_eq!(example, "2024-01-31");
        }
        other => panic!("{other}"),
    }
    let text = err(Materialize::select("group:days").partition("2024-02-01")).to_string();
    assert_eq!(
        text,
        "asset `day_source`: `2024-02-01` is not a partition yet or any more: valid keys run from `2024-01-01` to `2024-01-31` (31 daily partitions)"
    );
    // What an injection attempt would be is just a key that does not parse.
    let text =
        err(Materialize::select("group:days").partition("2024-01-01' OR '1'='1")).to_string();
    assert!(
        text.contains("is not a partition key: it does not match the format `%Y-%m-%d`"),
        "{text}"
    );
    let text = err(Materialize::select("group:regions").partition("emea")).to_string();
    assert_eq!(
        text,
        "asset `region_report`: `emea` is not one of the static partition keys: valid keys are `eu`, `us`, `apac`"
    );
    let result = Materialize::select("group:regions")
        .partition("apac")
        .run()
        .unwrap();
    assert_eq!(result.output::<region_report>(), "report for apac");
}

#[test]
fn a_partition_for_unpartitioned_assets_is_an_error() {
    let err = Materialize::select("unpartitioned_thing")
        .partition("eu")
        .run()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "partition `eu` was chosen, but no selected asset is partitioned"
    );
}

#[asset]
fn unpartitioned_thing() -> u8 {
    1
}

#[asset(group = "customers", partitions = dynamic("customers"))]
fn customer_report(ctx: &AssetContext) -> String {
    format!("report for {}", ctx.partition_key().unwrap_or("?"))
}

#[test]
fn dynamic_partitions_take_keys_added_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = |key: &str| {
        Materialize::select("customer_report")
            .partition(key)
            .instance(&recording(dir.path()))
            .run()
    };
    let err = run("acme").unwrap_err().to_string();
    assert_eq!(
        err,
        "asset `customer_report`: `acme` is not one of the dynamic \"customers\" partition keys: there are none yet"
    );
    let store = SqliteStorage::open(dir.path()).unwrap();
    let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["acme", "globex"]))
            .unwrap(),
        2
    );
    // Adding again keeps what is there (and its order).
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["initech", "acme"]))
            .unwrap(),
        1
    );
    assert_eq!(
        store.dynamic_partitions("customers").unwrap(),
        keys(&["acme", "globex", "initech"])
    );
    let result = run("globex").unwrap();
    assert_eq!(result.output::<customer_report>(), "report for globex");
    assert!(
        dir.path()
            .join("storage/customer_report/globex.bin")
            .exists()
    );
    let err = run("globx").unwrap_err().to_string();
    assert!(err.contains("(did you mean `globex`?)"), "{err}");
}

/// Discovers customers and registers them as partitions of `customer_report`, as a sensor
/// would.
#[asset(group = "discovery")]
fn customer_list(ctx: &AssetContext) -> Result<Vec<String>, BoxError> {
    let found = vec!["umbrella".to_owned(), "hooli".to_owned()];
    let new = ctx.add_dynamic_partitions("customers", found.iter().cloned())?;
    ctx.add_output_metadata("new customers", new);
    Ok(found)
}

#[test]
fn an_asset_adds_dynamic_partition_keys_for_later_runs() {
    let dir = tempfile::tempdir().unwrap();
    let first = Materialize::select("customer_list")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(first.success(), "{first:?}");
    let store = SqliteStorage::open(dir.path()).unwrap();
    assert_eq!(
        store.dynamic_partitions("customers").unwrap(),
        ["umbrella", "hooli"]
    );
    let report = Materialize::select("customer_report")
        .partition("hooli")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(report.output::<customer_report>(), "report for hooli");
    // Again: nothing new. Unrecorded: nowhere to keep them, which the asset is told.
    let again = Materialize::select("customer_list")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(again.success(), "{again:?}");
    let meta = &store.materializations("customer_list", 1).unwrap()[0].metadata;
    assert!(
        meta.contains(&("new customers".to_owned(), 0u64.into())),
        "{meta:?}"
    );
    let bad = AssetContext::for_test().add_dynamic_partitions("customers", ["ok", ""]);
    assert_eq!(
        bad.unwrap_err().to_string(),
        "\"\" is not a partition key: keys are non-empty text without control characters"
    );
    let unrecorded = Materialize::select("customer_list").run().unwrap();
    let AssetStatus::Failed(why) = &unrecorded.outcome("customer_list").unwrap().status else {
        panic!("{unrecorded:?}")
    };
    assert!(
        why.to_string().contains("this run has no run store"),
        "{why}"
    );
}
