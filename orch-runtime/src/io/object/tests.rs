use std::sync::Arc;

use object_store::memory::InMemory;
use orch_core::__private::Storable;
use orch_core::{AssetKey, RunId};

use object_store::PutMode;

use super::keys::step_output_of;
use super::*;
use crate::storage::SqliteStorage;

/// What the macro's generated code passes as `Down` (any type works here).
struct Marker;

fn manager(url: &str, prefix: &str) -> (ObjectIoManager, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let committed: Arc<dyn Storage> = Arc::new(SqliteStorage::in_memory().unwrap());
    let mut manager = ObjectIoManager::new(
        Arc::new(InMemory::new()),
        url,
        committed,
        cache.path().to_owned(),
    )
    .unwrap();
    manager.prefix = ObjectPath::parse(prefix).unwrap();
    (manager, cache)
}

fn ctx<'a>(key: &'a AssetKey, run: &'a RunId, partition: Option<&'a str>) -> OutputContext<'a> {
    OutputContext {
        key,
        run_id: run,
        partition,
        output_type: "u64",
        codec: Some(<u64 as Storable<Marker>>::CODEC),
    }
}

#[test]
fn every_write_has_a_key_of_its_own_under_the_asset_and_partition() {
    let (manager, _cache) = manager("s3://bucket/orch/", "orch");
    let key = AssetKey::new(["raw", "users"]).unwrap();
    let run = RunId::new();
    let (a, mode) = manager.new_object(&ctx(&key, &run, None), "bin");
    let (b, _) = manager.new_object(&ctx(&key, &run, None), "bin");
    assert_eq!(mode, PutMode::Create);
    assert_ne!(a, b);
    let location = manager.location_of(&a);
    assert!(
        location.starts_with(&format!("s3://bucket/orch/raw/users/{run}.")),
        "{location}"
    );
    assert!(location.ends_with(".bin"), "{location}");
    assert_eq!(manager.object_at(&location), Some(a.clone()));
    assert_eq!(manager.run_of(&a), Some((run.to_string(), false)));
    // A partition key is one encoded path segment.
    let (p, _) = manager.new_object(&ctx(&key, &run, Some("2026-12-05/eu")), "bin");
    let parts: Vec<String> = p.parts().map(|p| p.as_ref().to_owned()).collect();
    assert_eq!(parts.len(), 5, "{parts:?}");
    assert_eq!(parts[3], "2026-12-05%2Feu");
    assert_eq!(manager.object_at(&manager.location_of(&p)), Some(p.clone()));
    // Another storage URL's location is not this manager's.
    assert_eq!(manager.object_at("s3://other/orch/raw/users/x.bin"), None);
    // Names orch does not write are no run's.
    assert_eq!(
        manager.run_of(&ObjectPath::parse("orch/raw/notes.txt").unwrap()),
        None
    );
}

#[test]
fn an_object_is_created_once_never_overwritten() {
    let (manager, _cache) = manager("s3://bucket", "");
    let object = ObjectPath::parse("a/run.0000abcd.bin").unwrap();
    manager
        .put(&object, b"first".to_vec(), PutMode::Create)
        .unwrap();
    let error = manager
        .put(&object, b"second".to_vec(), PutMode::Create)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("could not upload s3://bucket/a/run.0000abcd.bin"),
        "{error}"
    );
    let key = AssetKey::new(["a"]).unwrap();
    assert_eq!(manager.get(&key, &object).unwrap(), b"first");
}

#[test]
fn a_mapped_steps_kept_element_has_a_fixed_key_and_a_step_output_its_own() {
    let (manager, _cache) = manager("s3://bucket", "");
    let run = RunId::new();
    let input = |key| InputContext {
        key,
        partition: None,
        output_type: "u64",
        codec: Some(<u64 as Storable<Marker>>::CODEC),
    };
    let location = |stored: Stored| {
        stored
            .metadata
            .iter()
            .find(|(l, _)| l == LOCATION)
            .map(|(_, v)| v.to_string())
            .unwrap()
    };
    // An element: no materialization records it; a later delivery overwrites it.
    let element = AssetKey::new(["_runs", run.as_str(), "job", "step", "elements", "e1"]).unwrap();
    for value in [1u64, 2] {
        let stored = manager
            .handle_output(&ctx(&element, &run, None), &(Arc::new(value) as Value))
            .unwrap();
        assert_eq!(
            location(stored),
            format!("s3://bucket/_runs/{run}/job/step/elements/e1.bin")
        );
    }
    let loaded = manager.load_input(&input(&element)).unwrap();
    assert_eq!(loaded.downcast_ref::<u64>(), Some(&2));
    // A step's output: a key per write, found through the step's materialization in its run
    // (none here: missing, and the next run of a re-execution's chain is tried).
    let output = AssetKey::new(["_runs", run.as_str(), "job", "step"]).unwrap();
    let stored = manager
        .handle_output(&ctx(&output, &run, None), &(Arc::new(3u64) as Value))
        .unwrap();
    assert!(location(stored).starts_with(&format!("s3://bucket/_runs/{run}/job/step/{run}.")),);
    let error = manager.load_input(&input(&output)).unwrap_err();
    assert!(matches!(error, LoadError::Missing { .. }), "{error}");
    assert_eq!(
        step_output_of(&output),
        Some((run.to_string(), "job/step".to_owned()))
    );
    assert_eq!(step_output_of(&element), None);
}

#[test]
fn an_asset_with_no_committed_materialization_is_missing() {
    let (manager, _cache) = manager("s3://bucket", "");
    let run = RunId::new();
    let key = AssetKey::new(["a"]).unwrap();
    // Written, never committed: not visible.
    manager
        .handle_output(&ctx(&key, &run, None), &(Arc::new(5u64) as Value))
        .unwrap();
    let error = manager
        .load_input(&InputContext {
            key: &key,
            partition: None,
            output_type: "u64",
            codec: Some(<u64 as Storable<Marker>>::CODEC),
        })
        .unwrap_err();
    assert!(matches!(error, LoadError::Missing { .. }), "{error}");
}
