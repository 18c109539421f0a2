//! Outputs between runs: stored by the default I/O manager, loaded for unselected upstreams,
//! corrupt files reported, staleness decided from data and code versions, custom managers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use orch::io::{InputContext, IoManager, LoadError, MemoryIoManager, OutputContext, Stored, Value};
use orch::prelude::*;
use orch::storage::{EventKind, EventRecord, SqliteStorage, Storage};
use orch::{AssetStatus, Instance, MaterializeError, PlanError, StaleReason};

static SOURCE_VALUE: AtomicU32 = AtomicU32::new(1);
/// Tests that run the `chain` group take turns: they set `SOURCE_VALUE`.
static CHAIN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn chain_turn() -> std::sync::MutexGuard<'static, ()> {
    CHAIN.lock().unwrap_or_else(|p| p.into_inner())
}

#[asset(group = "chain")]
fn source() -> u32 {
    SOURCE_VALUE.load(Ordering::SeqCst)
}

#[asset(group = "chain")]
fn doubled(source: &u32) -> u32 {
    source * 2
}

#[asset(group = "chain")]
fn described(doubled: &u32) -> String {
    format!("doubled is {doubled}")
}

/// Not serde-storable, so it lives in memory only.
#[derive(Debug)]
pub struct Handle(#[allow(dead_code)] std::sync::Mutex<u32>);

#[asset(group = "mem", io_manager = "memory")]
fn handle() -> Handle {
    Handle(std::sync::Mutex::new(3))
}

#[asset(group = "volatile", always_run = true)]
fn clock() -> u64 {
    7
}

fn recording(dir: &std::path::Path) -> Instance {
    Instance::open(dir).unwrap()
}

fn status<'a>(result: &'a orch::RunResult, key: &str) -> &'a AssetStatus {
    &result.outcome(key).unwrap().status
}

fn stale(dir: &std::path::Path) -> Vec<(String, StaleReason)> {
    let store = SqliteStorage::open(dir).unwrap();
    let graph = orch::definitions().unwrap();
    let inputs = orch::StaleInputs::load(graph, &store).unwrap();
    orch::stale_assets(graph, &inputs)
        .into_iter()
        .enumerate()
        .filter_map(|(id, reason)| Some((graph.node(id).key.to_string(), reason?)))
        .filter(|(k, _)| ["source", "doubled", "described"].contains(&k.as_str()))
        .collect()
}

#[test]
fn outputs_are_stored_loaded_and_versioned() {
    let _turn = chain_turn();
    let dir = tempfile::tempdir().unwrap();
    SOURCE_VALUE.store(1, Ordering::SeqCst);
    // Never materialized: a clear error that suggests the `+` form.
    let err = Materialize::select("doubled")
        .instance(&recording(dir.path()))
        .run()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "asset `doubled` needs the output of `source`, which has never been materialized: select `+doubled` to materialize it too"
    );
    assert!(matches!(
        err,
        MaterializeError::Plan(PlanError::NeverMaterialized { .. })
    ));

    let first = Materialize::select("group:chain")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(first.success());
    assert!(dir.path().join("storage/source.bin").exists());
    assert!(dir.path().join("storage/described.bin").exists());
    let version = first
        .outcome("source")
        .unwrap()
        .data_version
        .clone()
        .unwrap();
    assert_eq!(version.len(), 32);
    assert_eq!(
        first.outcome("doubled").unwrap().input_versions,
        [("source".parse().unwrap(), Some(version.clone()))]
    );

    // `described` alone: `doubled` comes from storage, not from running it again.
    let second = Materialize::select("described")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(status(&second, "doubled"), &AssetStatus::Loaded);
    assert_eq!(second.output::<described>(), "doubled is 2");
    assert!(second.outcome("source").is_none());

    // The store has the versions: history shows them, and nothing is stale.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let latest = store.latest_materializations().unwrap();
    assert_eq!(
        latest["source"].data_version.as_deref(),
        Some(version.as_str())
    );
    assert_eq!(
        latest["doubled"].inputs,
        [("source".to_owned(), Some(version))]
    );
    assert_eq!(stale(dir.path()), []);
}

#[test]
fn stale_runs_exactly_what_changed_and_then_nothing() {
    let _turn = chain_turn();
    let dir = tempfile::tempdir().unwrap();
    SOURCE_VALUE.store(10, Ordering::SeqCst);
    // Before anything: everything is stale, and --stale runs it all.
    assert_eq!(stale(dir.path()).len(), 3);
    let all = Materialize::select("group:chain")
        .only_stale()
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(all.outcomes().len(), 3);
    // Right after: nothing runs, and no run is recorded.
    let none = Materialize::select("group:chain")
        .only_stale()
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(none.outcomes().is_empty());
    let runs_before = SqliteStorage::open(dir.path())
        .unwrap()
        .runs(&orch::storage::RunFilter::recent(100))
        .unwrap()
        .len();

    // Re-materializing `source` with the same output changes nothing downstream...
    Materialize::select("source")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(stale(dir.path()), []);
    // ...a new output makes `doubled` stale, and `described` through it.
    SOURCE_VALUE.store(11, Ordering::SeqCst);
    Materialize::select("source")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(
        stale(dir.path()),
        [
            (
                "described".to_owned(),
                StaleReason::UpstreamStale("doubled".parse().unwrap())
            ),
            (
                "doubled".to_owned(),
                StaleReason::UpstreamChanged("source".parse().unwrap())
            ),
        ]
    );
    let run = Materialize::select("group:chain")
        .only_stale()
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    let ran: Vec<String> = run
        .outcomes()
        .iter()
        .filter(|o| o.status == AssetStatus::Succeeded)
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(ran, ["doubled", "described"]);
    assert_eq!(status(&run, "source"), &AssetStatus::Loaded);
    assert_eq!(run.output::<described>(), "doubled is 22");
    assert_eq!(stale(dir.path()), []);
    let runs_after = SqliteStorage::open(dir.path())
        .unwrap()
        .runs(&orch::storage::RunFilter::recent(100))
        .unwrap()
        .len();
    assert_eq!(runs_after, runs_before + 3);
}

#[test]
fn a_code_change_makes_the_asset_and_its_downstream_stale() {
    let _turn = chain_turn();
    let dir = tempfile::tempdir().unwrap();
    Materialize::select("group:chain")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(stale(dir.path()), []);
    // Pretend `doubled` was last materialized by other code.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let mut record: EventRecord = store.latest_materializations().unwrap()["doubled"].clone();
    record.code_version = Some("an-older-version".to_owned());
    store.append(&[record], &[]).unwrap();
    assert_eq!(
        stale(dir.path()),
        [
            (
                "described".to_owned(),
                StaleReason::UpstreamStale("doubled".parse().unwrap())
            ),
            ("doubled".to_owned(), StaleReason::CodeChanged),
        ]
    );
    let run = Materialize::select("group:chain")
        .only_stale()
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert_eq!(
        run.outcomes()
            .iter()
            .filter(|o| o.status == AssetStatus::Succeeded)
            .count(),
        2
    );
}

#[test]
fn always_run_assets_are_always_stale() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let run = Materialize::select("clock")
            .only_stale()
            .instance(&recording(dir.path()))
            .run()
            .unwrap();
        assert_eq!(status(&run, "clock"), &AssetStatus::Succeeded);
    }
}

#[test]
fn a_corrupt_stored_output_is_an_error_naming_the_asset_and_file_and_is_repaired_by_rerunning() {
    let _turn = chain_turn();
    let dir = tempfile::tempdir().unwrap();
    Materialize::select("group:chain")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    let file = dir.path().join("storage/doubled.bin");
    std::fs::write(&file, b"not what orch wrote").unwrap();
    let err = Materialize::select("described")
        .instance(&recording(dir.path()))
        .run()
        .unwrap_err();
    assert!(
        matches!(err, MaterializeError::Load(LoadError::Corrupt { .. })),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("asset `doubled`"), "{text}");
    assert!(text.contains("doubled.bin"), "{text}");
    assert!(text.contains("materialize `doubled` again"), "{text}");
    // Re-materializing the upstream repairs it.
    Materialize::select("doubled")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(
        Materialize::select("described")
            .instance(&recording(dir.path()))
            .run()
            .unwrap()
            .success()
    );
}

#[test]
fn memory_outputs_need_no_serde_and_write_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = Materialize::select("handle")
        .instance(&recording(dir.path()))
        .run()
        .unwrap();
    assert!(run.success());
    assert!(!dir.path().join("storage/handle.bin").exists());
}

/// A custom manager that counts what it is given.
#[derive(Default)]
struct Counting(AtomicU32, MemoryIoManager);

struct CountingHandle(Arc<Counting>);

impl IoManager for CountingHandle {
    fn handle_output(
        &self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Result<Stored, orch::BoxError> {
        let n = self.0.0.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.1.handle_output(ctx, value)?;
        Ok(Stored::version(Some(format!("v{n}"))))
    }
    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        self.0.1.load_input(ctx)
    }
}

#[asset(group = "custom", io_manager = "counting")]
fn counted() -> Vec<u8> {
    vec![1, 2, 3]
}

#[test]
fn custom_io_managers_are_chosen_by_name_and_must_be_registered() {
    let dir = tempfile::tempdir().unwrap();
    let err = Materialize::select("counted")
        .instance(&recording(dir.path()))
        .run()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "asset `counted` uses io_manager \"counting\", which is not registered; register it with `orch::App::new().io_manager(\"counting\", ...)` (built in: \"fs\", \"memory\")"
    );
    let counting = Arc::new(Counting::default());
    let rec = Instance::builder()
        .home(dir.path())
        .io_manager("counting", Arc::new(CountingHandle(Arc::clone(&counting))))
        .build()
        .unwrap();
    let run = Materialize::select("counted").instance(&rec).run().unwrap();
    assert!(run.success());
    assert_eq!(counting.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        run.outcome("counted").unwrap().data_version.as_deref(),
        Some("v1")
    );
    let store = SqliteStorage::open(dir.path()).unwrap();
    let history = store.materializations("counted", 1).unwrap();
    assert_eq!(history[0].kind, EventKind::Materialized);
    assert_eq!(history[0].data_version.as_deref(), Some("v1"));
}

/// A manager whose `flush` (the run's sync, after its assets) says it started and waits
/// until the test lets it go.
struct SlowFlush {
    inner: MemoryIoManager,
    entered: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl IoManager for SlowFlush {
    fn handle_output(
        &self,
        ctx: &OutputContext<'_>,
        value: &Value,
    ) -> Result<Stored, orch::BoxError> {
        self.inner.handle_output(ctx, value)
    }
    fn load_input(&self, ctx: &InputContext<'_>) -> Result<Value, LoadError> {
        self.inner.load_input(ctx)
    }
    fn flush(&self) -> Result<(), orch::BoxError> {
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
        Ok(())
    }
}

#[asset(group = "late_sync", io_manager = "slow_flush")]
fn synced_late() -> u8 {
    1
}

#[test]
fn a_run_is_alive_until_it_is_recorded_as_ended() {
    let dir = tempfile::tempdir().unwrap();
    let (entered, syncing) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel();
    let manager = SlowFlush {
        inner: MemoryIoManager::default(),
        entered: std::sync::Mutex::new(Some(entered)),
        release: std::sync::Mutex::new(released),
    };
    let instance = Instance::builder()
        .home(dir.path())
        .io_manager("slow_flush", Arc::new(manager))
        .build()
        .unwrap();
    let running =
        std::thread::spawn(move || Materialize::select("synced_late").instance(&instance).run());
    // The asset is done and the run syncs its outputs: another process's crash recovery
    // must see it alive.
    syncing.recv().unwrap();
    let other = SqliteStorage::open(dir.path()).unwrap();
    assert_eq!(other.recover_crashed().unwrap(), Vec::<String>::new());
    release.send(()).unwrap();
    let result = running.join().unwrap().unwrap();
    assert!(result.success());
    let record = other.run(result.run_id().as_str()).unwrap();
    assert_eq!(record.status, orch::storage::RunStatus::Succeeded);
}

static REPORT_TEXT: std::sync::Mutex<&str> = std::sync::Mutex::new("v1");

/// Writes a file outside orch's storage (the directory comes from the resource).
#[asset(group = "files")]
fn report_file(
    ctx: &AssetContext,
    #[resource] dir: &std::path::PathBuf,
) -> Result<FileAsset, BoxError> {
    let path = dir.join("report.txt");
    std::fs::write(&path, *REPORT_TEXT.lock().unwrap())?;
    Ok(ctx.track_file(path)?)
}

/// Reads it back, checking it is still the materialized file.
#[asset(group = "files")]
fn report_size(report_file: &FileAsset) -> Result<u64, BoxError> {
    report_file.verify()?;
    Ok(std::fs::read(report_file.path())?.len() as u64)
}

#[test]
fn file_assets_are_tracked_by_their_contents() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let run = |select: &str| {
        Materialize::select(select)
            .resource(out.clone())
            .instance(&recording(dir.path()))
            .run()
            .unwrap()
    };
    let first = run("group:files");
    assert!(first.success(), "{first:?}");
    assert_eq!(*first.output::<report_size>(), 2);
    let store = SqliteStorage::open(dir.path()).unwrap();
    let meta = &store.materializations("report_file", 1).unwrap()[0].metadata;
    let path = out.join("report.txt").display().to_string();
    assert!(meta.contains(&("path".to_owned(), path.into())), "{meta:?}");
    assert!(
        meta.contains(&("bytes".to_owned(), 2u64.into())),
        "{meta:?}"
    );
    let version = |r: &orch::RunResult| r.outcome("report_file").unwrap().data_version.clone();

    // The same contents again: the same data version. New contents: a new one.
    let again = run("report_file");
    assert_eq!(version(&again), version(&first));
    *REPORT_TEXT.lock().unwrap() = "version 2";
    let changed = run("report_file");
    assert_ne!(version(&changed), version(&first));

    // Changed behind orch's back: the consumer, loading the tracked file, finds out.
    std::fs::write(out.join("report.txt"), "edited by hand").unwrap();
    let stale_read = run("report_size");
    let AssetStatus::Failed(why) = status(&stale_read, "report_size") else {
        panic!("{stale_read:?}")
    };
    assert!(
        why.to_string().contains(
            "changed since it was materialized (its contents differ: 9 bytes then, 14 now)"
        ),
        "{why}"
    );
}
