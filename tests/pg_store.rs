//! The run store on PostgreSQL (`[store] url`): the command line end to end, and what several
//! processes sharing one store rely on (claims, no lost events, a killed run found crashed),
//! on the server `ORCH_TEST_POSTGRES_URL` names (`.ci/run` starts one and requires it). Each
//! test keeps its tables in a schema of its own, dropped after.

mod common;

use std::time::{Duration, Instant};

use orch::prelude::*;
use orch::storage::{EventKind, PgStorage, RunFilter, RunStatus, Storage, StorageError};
use orch::{Instance, MaterializeError, StoreConfig};

#[asset(group = "pg")]
fn pg_source(ctx: &AssetContext) -> u32 {
    ctx.log().info("counting");
    ctx.add_output_metadata("rows", 3usize);
    3
}

#[asset(group = "pg")]
fn pg_doubled(pg_source: &u32) -> u32 {
    pg_source * 2
}

#[asset(group = "pg_slow")]
fn pg_slow() -> u32 {
    let ms = std::env::var("ORCH_TEST_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    std::thread::sleep(Duration::from_millis(ms));
    1
}

fn server() -> Option<String> {
    common::postgres_url()
}

/// A schema of one test's own on the test server, dropped with its tables at the end.
struct Scratch {
    url: String,
    schema: String,
}

impl Scratch {
    fn new(url: &str, name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Scratch {
            url: url.to_owned(),
            schema: format!("orch_it_{name}_{}_{nanos}", std::process::id()),
        }
    }

    fn store(&self) -> PgStorage {
        PgStorage::connect_in_schema(&self.url, &self.schema).unwrap()
    }

    fn config(&self) -> StoreConfig {
        StoreConfig {
            url: Some(self.url.clone()),
            schema: Some(self.schema.clone()),
        }
    }

    /// An instance whose outputs are under `home` and whose runs are recorded here.
    fn instance(&self, home: &std::path::Path) -> Instance {
        let mut config = orch::Config::default();
        config.set_home(home);
        config.set_store(self.config());
        Instance::builder().config(config).build().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(db) = orch::sql::Database::connect(&self.url) {
            let _ = db.execute_batch(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

#[test]
fn the_command_line_records_and_reads_runs_on_postgres() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "cli");
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("ORCH_STORE_URL", url.as_str()),
        ("ORCH_STORE_SCHEMA", scratch.schema.as_str()),
    ];
    let out = common::example_with(home.path(), "quickstart", &["materialize"], &env);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Recorded on the server, not in the state directory.
    assert!(!home.path().join("orch.db").exists());
    let store = scratch.store();
    let runs = store.runs(&RunFilter::recent(10)).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert!(runs[0].counts.0 > 0);
    // Every reading command answers from it.
    let listed = common::stdout(&common::example_with(
        home.path(),
        "quickstart",
        &["runs"],
        &env,
    ));
    assert!(listed.contains(&runs[0].id.as_str()[..8]), "{listed}");
    assert!(listed.contains("succeeded"), "{listed}");
    let shown = common::example_with(
        home.path(),
        "quickstart",
        &["run", "show", runs[0].id.as_str()],
        &env,
    );
    assert!(shown.status.success(), "{}", common::stderr(&shown));
    assert!(
        common::stdout(&shown).contains("materialized"),
        "{}",
        common::stdout(&shown)
    );
    // Nothing changed since: nothing is stale, and a `--stale` run materializes nothing.
    let materialized = || {
        store
            .events_since(0, 0)
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::Materialized)
            .count()
    };
    let before = materialized();
    let stale = common::example_with(home.path(), "quickstart", &["materialize", "--stale"], &env);
    assert!(stale.status.success(), "{}", common::stderr(&stale));
    assert_eq!(materialized(), before);
    // `config` says where the store is, without a password.
    let config = common::stdout(&common::example_with(
        home.path(),
        "quickstart",
        &["config"],
        &env,
    ));
    assert!(config.contains("store.url"), "{config}");
    assert!(config.contains("$ORCH_STORE_URL"), "{config}");
}

#[test]
fn a_bad_store_url_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let out = common::example_with(
        home.path(),
        "quickstart",
        &["list"],
        &[("ORCH_STORE_URL", "mysql://me:secret@db/orch")],
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("$ORCH_STORE_URL: invalid store.url"), "{err}");
    assert!(err.contains("a PostgreSQL URL"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    // A server that is not there says which, and what failed.
    let out = common::example_with(
        home.path(),
        "quickstart",
        &["runs"],
        &[("ORCH_STORE_URL", "postgres://me:secret@127.0.0.1:1/orch")],
    );
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("the run store at postgres 127.0.0.1:1/orch failed"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn runs_events_logs_and_metadata_are_recorded() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "record");
    let home = tempfile::tempdir().unwrap();
    let instance = scratch.instance(home.path());
    let result = Materialize::select("group:pg")
        .instance(&instance)
        .run()
        .unwrap();
    assert!(result.success());
    let store = scratch.store();
    let run = store.run(result.run_id().as_str()).unwrap();
    assert_eq!(
        (run.status, run.planned, run.counts.0),
        (RunStatus::Succeeded, 2, 2)
    );
    let latest = store.latest_materializations().unwrap();
    assert_eq!(latest["pg_doubled"].inputs.len(), 1);
    assert_eq!(
        latest["pg_doubled"].inputs[0].1,
        latest["pg_source"].data_version
    );
    let logs = store.logs(run.id.as_str()).unwrap();
    assert!(logs.iter().any(|l| l.message == "counting"), "{logs:?}");
    let source = store.materializations("pg_source", 1).unwrap();
    assert!(
        source[0]
            .metadata
            .iter()
            .any(|(label, value)| label == "rows" && value.to_string() == "3")
    );
    // A second run of the same instance is stale for nothing.
    let again = Materialize::select("group:pg")
        .only_stale()
        .instance(&instance)
        .run()
        .unwrap();
    assert!(again.success());
    assert_eq!(store.materializations("pg_source", 10).unwrap().len(), 1);
}

// ---- several processes sharing the store ----------------------------------------------------

/// Not a test of its own: the body of the child processes the tests below start. It
/// materializes `ORCH_TEST_CHILD_SELECT` into the schema `ORCH_TEST_CHILD_SCHEMA`,
/// `ORCH_TEST_CHILD_REPEAT` times.
#[test]
fn child_process() {
    let (Ok(schema), Some(url)) = (std::env::var("ORCH_TEST_CHILD_SCHEMA"), server()) else {
        return;
    };
    let home = std::env::var("ORCH_TEST_CHILD_HOME").unwrap();
    let select = std::env::var("ORCH_TEST_CHILD_SELECT").unwrap();
    let repeat: usize = std::env::var("ORCH_TEST_CHILD_REPEAT")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let scratch = Scratch { url, schema };
    let instance = scratch.instance(std::path::Path::new(&home));
    for _ in 0..repeat {
        Materialize::select(&select)
            .instance(&instance)
            .run()
            .unwrap();
    }
    // The parent drops the schema.
    std::mem::forget(scratch);
}

fn spawn_child(
    scratch: &Scratch,
    home: &std::path::Path,
    select: &str,
    repeat: usize,
    slow_ms: u64,
) -> std::process::Child {
    common::this_binary_as_child()
        .env("ORCH_TEST_CHILD_SCHEMA", &scratch.schema)
        .env("ORCH_TEST_CHILD_HOME", home)
        .env("ORCH_TEST_CHILD_SELECT", select)
        .env("ORCH_TEST_CHILD_REPEAT", repeat.to_string())
        .env("ORCH_TEST_SLOW_MS", slow_ms.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the store shows a run that started `asset`; returns the run id.
fn wait_for_started(store: &PgStorage, asset: &str) -> String {
    let t0 = Instant::now();
    loop {
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
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the child never started `{asset}`"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_process_is_refused_an_asset_the_first_is_materializing() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "busy");
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn_child(&scratch, home.path(), "pg_slow", 1, 3_000);
    let holder_id = wait_for_started(&scratch.store(), "pg_slow");
    let instance = scratch.instance(home.path());
    let err = Materialize::select("pg_slow")
        .instance(&instance)
        .run()
        .unwrap_err();
    match &err {
        MaterializeError::Storage(StorageError::AssetBusy { asset, holder }) => {
            assert_eq!(asset, "pg_slow");
            assert_eq!(holder, &holder_id);
        }
        other => panic!("{other}"),
    }
    // Assets the first run does not hold are free meanwhile.
    assert!(
        Materialize::select("pg_source")
            .instance(&instance)
            .run()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn two_processes_recording_at_once_lose_no_events_and_number_them_in_order() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "two");
    let (home_a, home_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = spawn_child(&scratch, home_a.path(), "pg_source", 15, 0);
    let mut b = spawn_child(&scratch, home_b.path(), "pg_slow", 15, 0);
    // A follower reading everything after the last sequence number it saw, while both
    // write, sees every event exactly once, in order.
    let store = scratch.store();
    let mut seen = Vec::new();
    let mut last = 0;
    let mut done = (false, false);
    while !(done.0 && done.1) {
        for e in store.events_since(last, 0).unwrap() {
            last = e.seq.unwrap();
            seen.push(last);
        }
        done.0 = done.0 || a.try_wait().unwrap().is_some();
        done.1 = done.1 || b.try_wait().unwrap().is_some();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    for e in store.events_since(last, 0).unwrap() {
        seen.push(e.seq.unwrap());
    }
    let all: Vec<u64> = store
        .events_since(0, 0)
        .unwrap()
        .iter()
        .map(|e| e.seq.unwrap())
        .collect();
    assert_eq!(seen, all, "the follower missed or repeated events");
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
        assert_eq!(
            events.len() as u32,
            2 * run.planned,
            "run {} lost events: started + materialized per asset",
            run.id
        );
    }
}

#[test]
fn a_killed_run_is_marked_crashed_by_another_process() {
    let Some(url) = server() else { return };
    let scratch = Scratch::new(&url, "killed");
    let home = tempfile::tempdir().unwrap();
    let mut child = spawn_child(&scratch, home.path(), "pg_slow", 1, 60_000);
    let store = scratch.store();
    let run_id = wait_for_started(&store, "pg_slow");
    // Alive while its process runs.
    assert!(store.recover_crashed().unwrap().is_empty());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server notices the closed connection and lets go of the run's lock; no lease to
    // wait out.
    let t0 = Instant::now();
    let crashed = loop {
        let crashed = store.recover_crashed().unwrap();
        if !crashed.is_empty() || t0.elapsed() > Duration::from_secs(10) {
            break crashed;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(crashed, std::slice::from_ref(&run_id));
    let run = store.run(&run_id).unwrap();
    assert_eq!(run.status, RunStatus::Crashed);
    let failed = store
        .events(&run_id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Failed)
        .expect("the running asset is marked failed");
    assert!(failed.is_of("pg_slow"));
    assert!(failed.message.unwrap().contains("crashed"));
    // Its claim is free: another run takes the asset.
    let instance = scratch.instance(home.path());
    assert!(
        Materialize::select("pg_slow")
            .instance(&instance)
            .run()
            .unwrap()
            .success()
    );
}
