//! The run store: runs, events and logs are recorded; crashed runs are found; two runs never
//! materialize the same asset at once; retention keeps the latest materialization.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use orch::prelude::*;
use orch::storage::{
    EventKind, Retention, RunFilter, RunRecord, RunStatus, SqliteStorage, Storage, StorageError,
};
use orch::{Instance, MaterializeError};

#[asset(group = "store")]
fn measured(ctx: &AssetContext) -> u32 {
    ctx.log().info("measuring");
    ctx.add_output_metadata("rows", 42usize);
    42
}

#[asset(group = "store")]
fn broken(measured: &u32) -> Result<u32, std::io::Error> {
    Err(std::io::Error::other(format!("cannot use {measured}")))
}

#[asset(group = "store")]
fn after_broken(broken: &u32) -> u32 {
    *broken
}

#[asset(group = "slow")]
fn slow() -> u32 {
    // A barrier across processes: with `ORCH_TEST_RELEASE` set, wait for that file.
    if let Ok(release) = std::env::var("ORCH_TEST_RELEASE") {
        while !std::path::Path::new(&release).exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        return 1;
    }
    let until = std::env::var("ORCH_TEST_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    std::thread::sleep(Duration::from_millis(until));
    1
}

fn recording(dir: &std::path::Path) -> (Arc<SqliteStorage>, Instance) {
    let store = Arc::new(SqliteStorage::open(dir).unwrap());
    let instance = Instance::builder()
        .home(dir)
        .storage(store.clone())
        .build()
        .unwrap();
    (store, instance)
}

#[test]
fn runs_events_logs_and_metadata_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, rec) = recording(dir.path());
    let result = Materialize::select("group:store")
        .instance(&rec)
        .run()
        .unwrap();
    assert!(result.storage_error().is_none());
    let id = result.run_id().as_str();

    let runs = store.runs(&RunFilter::recent(10)).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.id, id);
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.trigger, orch::Trigger::Manual);
    assert_eq!(run.target, "group:store");
    assert_eq!(run.planned, 3);
    assert_eq!(run.counts, (1, 1, 1));
    assert!(run.ended.is_some());
    assert_eq!(store.run(&id[..6]).unwrap().id, id);

    let events: Vec<(String, EventKind)> = store
        .events(id)
        .unwrap()
        .into_iter()
        .map(|e| (e.asset.map(|a| a.to_string()).unwrap_or_default(), e.kind))
        .collect();
    assert_eq!(
        events,
        [
            (String::new(), EventKind::RunStarted),
            ("measured".to_owned(), EventKind::Started),
            ("measured".to_owned(), EventKind::Materialized),
            ("broken".to_owned(), EventKind::Started),
            ("broken".to_owned(), EventKind::Failed),
            ("after_broken".to_owned(), EventKind::Skipped),
            (String::new(), EventKind::RunEnded(RunStatus::Failed)),
        ]
    );
    let failed = &store.events(id).unwrap()[4];
    assert_eq!(failed.message.as_deref(), Some("cannot use 42"));

    let history = store.materializations("measured", 5).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0].metadata,
        [("rows".to_owned(), orch::MetadataValue::Int(42))]
    );
    let code_version = orch::definitions()
        .unwrap()
        .nodes()
        .iter()
        .find(|n| n.key == "measured")
        .unwrap()
        .def
        .code_version();
    assert_eq!(history[0].code_version.as_deref(), Some(code_version));

    let logs = store.logs(id).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(
        (logs[0].asset.as_str(), logs[0].message.as_str()),
        ("measured", "measuring")
    );

    let states = store.asset_states().unwrap();
    assert_eq!(
        states["measured"].last_status,
        Some(EventKind::Materialized)
    );
    assert!(states["measured"].last_materialized.is_some());
    assert_eq!(states["broken"].last_status, Some(EventKind::Failed));
    assert_eq!(states["after_broken"].last_materialized, None);

    // A second run appends; `runs` lists newest first.
    let (_, rec) = recording(dir.path());
    let second = Materialize::select("measured")
        .instance(&rec)
        .run()
        .unwrap();
    let runs = store.runs(&RunFilter::recent(10)).unwrap();
    assert_eq!(runs[0].id, second.run_id().as_str());
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(store.materializations("measured", 5).unwrap().len(), 2);
}

#[asset(group = "parallel_free")]
fn free_a() -> u32 {
    1
}

#[asset(group = "parallel_free")]
fn free_b(free_a: &u32) -> u32 {
    free_a + 1
}

/// Not a test of its own: the body of the child processes the tests below start. It
/// materializes `ORCH_TEST_CHILD_SELECT` (recorded in `ORCH_TEST_CHILD_HOME`)
/// `ORCH_TEST_CHILD_REPEAT` times.
#[test]
fn child_process() {
    // A child that is the command line itself.
    if common::ran_cli_child() {
        return;
    }
    let Ok(dir) = std::env::var("ORCH_TEST_CHILD_HOME") else {
        return;
    };
    let select = std::env::var("ORCH_TEST_CHILD_SELECT").unwrap();
    let repeat: usize = std::env::var("ORCH_TEST_CHILD_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    for _ in 0..repeat {
        let (_, rec) = recording(std::path::Path::new(&dir));
        Materialize::select(&select).instance(&rec).run().unwrap();
    }
}

fn spawn_child(
    home: &std::path::Path,
    select: &str,
    repeat: usize,
    slow_ms: u64,
) -> std::process::Child {
    common::this_binary_as_child()
        .env("ORCH_TEST_CHILD_HOME", home)
        .env("ORCH_TEST_CHILD_SELECT", select)
        .env("ORCH_TEST_CHILD_REPEAT", repeat.to_string())
        .env("ORCH_TEST_SLOW_MS", slow_ms.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the store in `home` shows a run that started `asset`; returns the run id.
fn wait_for_started(home: &std::path::Path, asset: &str) -> String {
    let t0 = Instant::now();
    loop {
        if home.join("orch.db").exists() {
            let store = SqliteStorage::open(home).unwrap();
            if let Some(run) = store
                .runs(&RunFilter::recent(1))
                .unwrap()
                .into_iter()
                .next()
                && store
                    .events(run.id.as_str())
                    .unwrap()
                    .iter()
                    .any(|e| e.kind == EventKind::Started && e.is_of(asset))
            {
                return run.id.to_string();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the child never started `{asset}`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_process_is_refused_an_asset_the_first_is_materializing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(dir.path(), "slow", 1, 3_000);
    let holder_id = wait_for_started(dir.path(), "slow");
    let (_, rec) = recording(dir.path());
    let err = Materialize::select("slow")
        .instance(&rec)
        .run()
        .unwrap_err();
    match &err {
        MaterializeError::Storage(StorageError::AssetBusy { asset, holder }) => {
            assert_eq!(asset, "slow");
            assert_eq!(holder, &holder_id);
        }
        other => panic!("{other}"),
    }
    // Assets the first run does not hold are free meanwhile.
    let (_, rec) = recording(dir.path());
    assert!(
        Materialize::select("measured")
            .instance(&rec)
            .run()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn two_processes_recording_at_once_lose_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = spawn_child(dir.path(), "measured", 15, 0);
    let mut b = spawn_child(dir.path(), "group:parallel_free", 15, 0);
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    let store = SqliteStorage::open(dir.path()).unwrap();
    let runs = store.runs(&RunFilter::recent(100)).unwrap();
    assert_eq!(runs.len(), 30);
    for run in runs {
        assert_eq!(run.status, RunStatus::Succeeded);
        let events: Vec<_> = store
            .events(run.id.as_str())
            .unwrap()
            .into_iter()
            .filter(|e| !e.kind.is_run_event())
            .collect();
        let materialized = events
            .iter()
            .filter(|e| e.kind == EventKind::Materialized)
            .count();
        assert_eq!(
            materialized as u32, run.planned,
            "run {} lost events",
            run.id
        );
        assert_eq!(
            events.len() as u32,
            2 * run.planned,
            "started + materialized per asset"
        );
    }
}

#[test]
fn a_killed_run_is_marked_crashed() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(dir.path(), "+slow", 1, 60_000);
    // Wait until the child is inside `slow`, then SIGKILL it.
    let run_id = wait_for_started(dir.path(), "slow");
    child.kill().unwrap();
    child.wait().unwrap();

    let store = SqliteStorage::open(dir.path()).unwrap();
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Running);
    assert_eq!(
        store.recover_crashed().unwrap(),
        std::slice::from_ref(&run_id)
    );
    let run = store.run(&run_id).unwrap();
    assert_eq!(run.status, RunStatus::Crashed);
    assert!(run.ended.is_some());
    let failed = store
        .events(&run_id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Failed)
        .expect("the running asset is marked failed");
    assert!(failed.is_of("slow"));
    assert!(failed.message.unwrap().contains("crashed"));
    // Found once: a second look changes nothing.
    assert!(store.recover_crashed().unwrap().is_empty());
}

#[test]
fn run_show_follow_tails_a_run_of_another_process_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("release");
    let mut runner = common::this_binary_as_child()
        .env("ORCH_TEST_CHILD_HOME", dir.path())
        .env("ORCH_TEST_CHILD_SELECT", "slow")
        .env("ORCH_TEST_RELEASE", &release)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let run_id = wait_for_started(dir.path(), "slow");
    // Another process follows the run from the store while `slow` waits for the release.
    let mut follower = common::this_binary_as_child()
        .env("ORCH_HOME", dir.path())
        .env(
            "ORCH_TEST_CHILD_CLI",
            format!("run show {} --follow", &run_id[..8]),
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(follower.stdout.take().unwrap()));
    let mut text = String::new();
    // The follower has printed the run so far (its table header, then `slow started`)...
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.contains("slow") && line.contains("started") {
            break;
        }
    }
    // ...and only now may the run go on: what follows, it learns by polling the store.
    std::fs::write(&release, b"").unwrap();
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    assert!(follower.wait().unwrap().success(), "{text}");
    assert!(runner.wait().unwrap().success());
    // The run was not over when the follower printed its table; the rest came by polling.
    let followed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(&run_id[..8]) && !l.starts_with("run "))
        .collect();
    assert!(
        followed.iter().any(|l| l.contains("slow  materialized")),
        "{text}"
    );
    assert!(
        followed
            .last()
            .is_some_and(|l| l.contains("(run)  run_succeeded")),
        "{text}"
    );
}

#[test]
fn retention_drops_old_runs_but_keeps_the_latest_materialization() {
    let dir = tempfile::tempdir().unwrap();
    let (store, rec) = recording(dir.path());
    let kept = Materialize::select("measured")
        .instance(&rec)
        .run()
        .unwrap();
    // An old run of another asset, and an old run superseded by a newer one.
    let old = SystemTime::now() - Duration::from_secs(400 * 86_400);
    for id in ["old-only", "old-superseded"] {
        store
            .begin_run(
                &{
                    let mut run = RunRecord::new(id.into(), &orch::RunRequest::all(), 1);
                    run.status = RunStatus::Succeeded;
                    run.started = old;
                    run.ended = Some(old);
                    run
                },
                &[],
            )
            .unwrap();
        let asset = if id == "old-only" {
            "ancient"
        } else {
            "measured"
        };
        store
            .append(
                &[{
                    let mut event = orch::storage::EventRecord::new(
                        id.into(),
                        Some(asset.parse().unwrap()),
                        EventKind::Materialized,
                    );
                    event.time = old;
                    event.attempt = Some(1);
                    event
                }],
                &[],
            )
            .unwrap();
    }
    // `old-superseded` has a larger event id than the recent run's, so make the recent run
    // the latest again.
    let (_, rec) = recording(dir.path());
    let newest = Materialize::select("measured")
        .instance(&rec)
        .run()
        .unwrap();
    let deleted = store
        .apply_retention(Retention {
            logs: Duration::from_secs(86_400),
            runs: Duration::from_secs(86_400),
        })
        .unwrap();
    assert_eq!(deleted, 1);
    let ids: Vec<String> = store
        .runs(&RunFilter::recent(10))
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect();
    assert!(
        ids.contains(&"old-only".to_owned()),
        "the latest `ancient` is kept"
    );
    assert!(!ids.contains(&"old-superseded".to_owned()));
    assert!(ids.contains(&kept.run_id().to_string()));
    assert!(ids.contains(&newest.run_id().to_string()));
}

// ---- kill -9 while outputs are being written: no torn file --------------------------------

static BULK_ROUND: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn bulk_output(len: usize) -> Vec<u8> {
    // Bytes that change with every call, so every run writes every file.
    let round = BULK_ROUND.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    vec![round; len]
}

macro_rules! bulk_assets {
    ($group:literal, $len:expr; $($name:ident)*) => {$(
        #[asset(group = $group)]
        fn $name() -> Vec<u8> {
            bulk_output($len)
        }
    )*};
}
// Large outputs are written to a new file and renamed over the old one.
const BULK: usize = 2 << 20;
bulk_assets!("bulk", BULK; bulk0 bulk1 bulk2 bulk3 bulk4 bulk5 bulk6 bulk7 bulk8 bulk9);
// Small outputs overwrite the spare file in place and swap it with the current one.
const SMALL: usize = 48 << 10;
bulk_assets!("small", SMALL; small0 small1 small2 small3 small4 small5 small6 small7 small8 small9);

#[test]
fn a_process_killed_while_writing_outputs_leaves_no_torn_file() {
    killed_while_writing("bulk", BULK);
}

#[test]
fn a_process_killed_while_swapping_small_outputs_leaves_no_torn_file() {
    killed_while_writing("small", SMALL);
}

fn killed_while_writing(group: &str, len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let select = format!("group:{group}");
    let mut child = spawn_child(dir.path(), &select, 100_000, 0);
    // Let it write for a while (several complete runs), then kill it mid-run.
    let storage = dir.path().join("storage");
    let stored = || {
        std::fs::read_dir(&storage).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(group))
            })
            .count()
        })
    };
    let t0 = Instant::now();
    while stored() < 10 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the child never wrote its outputs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    child.wait().unwrap();

    // Every output file is whole: its checksum matches and it decodes.
    let io = orch::io::FsIoManager::new(storage.clone());
    let graph = orch::definitions().unwrap();
    let mut checked = 0;
    for node in graph.nodes().iter().filter(|n| n.group() == group) {
        let ctx = orch::io::InputContext {
            key: &node.key,
            partition: None,
            output_type: node.def.output_type(),
            codec: node.def.storage_codec(),
        };
        let value = orch::io::IoManager::load_input(&io, &ctx).unwrap();
        let value = value.downcast_ref::<Vec<u8>>().unwrap();
        assert_eq!(value.len(), len);
        assert!(value.iter().all(|b| *b == value[0]), "a mixed file");
        checked += 1;
    }
    assert_eq!(checked, 10);

    // The store is consistent: the dead run is found, and the next run repairs everything.
    let store = SqliteStorage::open(dir.path()).unwrap();
    let crashed = store.recover_crashed().unwrap();
    assert!(crashed.len() <= 1, "{crashed:?}");
    let (_, rec) = recording(dir.path());
    assert!(
        Materialize::select(select.as_str())
            .instance(&rec)
            .run()
            .unwrap()
            .success()
    );
}
