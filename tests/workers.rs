//! Runs executed by `orch worker` processes (`[run] executor = "workers"`) through the
//! PostgreSQL store's step queue: every step materialized once with the inputs its upstreams
//! committed, a killed worker's step delivered again, a zombie's late heartbeat and
//! completion refused. On the server `ORCH_TEST_POSTGRES_URL` names (`.ci/run` starts one).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::{
    Cluster, LEASE, Proxy, deliveries, run_in_background, wait_for_run, wait_for_started,
    wait_until_ended,
};
use orch::prelude::*;
use orch::storage::{EventKind, RunFilter, RunStatus, Storage};
use orch::{Executor, Instance};

#[asset(group = "workers")]
fn w_root() -> u64 {
    1
}

macro_rules! middle {
    ($($name:ident = $i:expr),* $(,)?) => {
        $(
            #[asset(group = "workers")]
            fn $name(w_root: &u64) -> u64 {
                w_root * 100 + $i
            }
        )*
        #[asset(group = "workers")]
        #[allow(clippy::too_many_arguments)]
        fn w_sink($($name: &u64),*) -> u64 {
            0 $(+ *$name)*
        }
    };
}

middle!(
    w_m0 = 0,
    w_m1 = 1,
    w_m2 = 2,
    w_m3 = 3,
    w_m4 = 4,
    w_m5 = 5,
    w_m6 = 6,
    w_m7 = 7,
    w_m8 = 8,
    w_m9 = 9,
    w_m10 = 10,
    w_m11 = 11,
    w_m12 = 12,
    w_m13 = 13,
    w_m14 = 14,
    w_m15 = 15,
);

/// Hangs in a worker started with `ORCH_TEST_HANG` (one to kill), takes `ORCH_TEST_SLOW_MS`
/// in one started with that (one to stop and resume), and returns at once in any other.
#[asset(group = "hang")]
fn w_hang() -> u64 {
    if std::env::var_os("ORCH_TEST_HANG").is_some() {
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    if let Some(ms) = std::env::var("ORCH_TEST_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    7
}

/// `tests/workers_other_build.rs` has it with version "b": another build of the program.
#[asset(group = "build", code_version = "a")]
fn w_build() -> u64 {
    1
}

/// Runs only on workers serving the `gpu` queue.
#[asset(group = "gpu", tags("orch/queue" = "gpu"))]
fn w_gpu() -> u64 {
    42
}

#[asset(group = "hang")]
fn w_after_hang(w_hang: &u64) -> u64 {
    w_hang + 1
}

fn server() -> Option<String> {
    common::postgres_url()
}

/// Not a test of its own: the worker processes the tests start run orch's command line here.
#[test]
fn child_process() {
    let _ = common::ran_cli_child();
}

#[test]
fn a_diamond_over_four_workers_materializes_every_step_once_with_its_upstreams_outputs() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "diamond");
    for _ in 0..4 {
        cluster.start_worker(false);
    }
    let instance = cluster.instance(Duration::from_secs(30));
    let result = Materialize::select("group:workers")
        .instance(&instance)
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    let store = cluster.store();
    let run = store.run(result.run_id().as_str()).unwrap();
    assert_eq!(
        (run.status, run.planned, run.counts.0),
        (RunStatus::Succeeded, 18, 18)
    );
    let events = store.events(run.id.as_str()).unwrap();
    let latest = store.latest_materializations().unwrap();
    let mut workers = std::collections::BTreeSet::new();
    for e in &events {
        match e.kind {
            EventKind::Started => {
                // Recorded by the worker that claimed it, not by this process.
                let on = e.message.as_deref().unwrap();
                assert!(on.starts_with("on worker "), "{on}");
                assert!(
                    !on.starts_with(&format!("on worker {}@", std::process::id())),
                    "{on}"
                );
                workers.insert(on.to_owned());
            }
            EventKind::Materialized => {
                // What it consumed is what its upstreams committed.
                for (up, version) in &e.inputs {
                    assert_eq!(version, &latest[up].data_version, "{up}");
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::Materialized)
            .count(),
        18,
        "every step once"
    );
    assert_eq!(latest["w_sink"].inputs.len(), 16);
    // The outputs are where any process reads them: the sink computed again here, in
    // process, from the sixteen outputs the workers stored.
    let here = Instance::builder()
        .home(cluster.home.path())
        .build()
        .unwrap();
    let again = Materialize::select("w_sink")
        .instance(&here)
        .keep_outputs(true)
        .run()
        .unwrap();
    let sum: u64 = (0..16).map(|i| 100 + i).sum();
    assert_eq!(*again.output::<w_sink>(), sum);
    assert!(!workers.is_empty());
}

#[test]
fn a_killed_workers_step_runs_again_on_another_after_its_lease() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "killed");
    let doomed = cluster.start_worker(true);
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "group:hang");
    let store = cluster.store();
    let run_id = wait_for_started(&store, "w_hang", 1);
    cluster.signal(doomed, "-KILL");
    cluster.start_worker(false);
    let result = coordinator.join().unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(deliveries(&store, &run_id, "w_hang"), [1, 2]);
    assert_eq!(store.materializations("w_hang", 10).unwrap().len(), 1);
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Succeeded);
}

#[test]
fn a_zombie_worker_is_refused_its_heartbeat_and_its_completion() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "zombie");
    // The zombie takes 6 s over `w_hang`: stopped as soon as it claims it, it outlives its
    // lease, which passes to a second worker; that one completes the step.
    let zombie = cluster.start_worker_with(false, Some(6_000));
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "w_hang");
    let store = cluster.store();
    let run_id = wait_for_started(&store, "w_hang", 1);
    cluster.signal(zombie, "-STOP");
    assert!(
        !store
            .events(&run_id)
            .unwrap()
            .iter()
            .any(|e| e.kind == EventKind::Materialized),
        "the zombie finished before it was stopped"
    );
    cluster.start_worker(false);
    let result = coordinator.join().unwrap();
    assert!(result.success());
    cluster.signal(zombie, "-CONT");
    // Its heartbeat finds the step given away; it publishes nothing.
    let t0 = Instant::now();
    while !cluster.worker_log(zombie).contains("lost step `w_hang`")
        && !cluster.worker_log(zombie).contains("was refused")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the zombie never noticed: {}",
            cluster.worker_log(zombie)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.materializations("w_hang", 10).unwrap().len(), 1);
    let started: Vec<u32> = store
        .events(&run_id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Started)
        .map(|e| e.attempt.unwrap())
        .collect();
    assert_eq!(started, [1, 2]);
}

#[test]
fn workers_need_a_store_with_a_queue() {
    let home = tempfile::tempdir().unwrap();
    let mut config = orch::Config::default();
    config.set_home(home.path());
    config.set_executor(Executor::Workers);
    let instance = Instance::builder().config(config).build().unwrap();
    let err = Materialize::select("w_root")
        .instance(&instance)
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot run on workers: the run store has no step queue"),
        "{err}"
    );
    // Nothing was recorded.
    assert!(
        orch::storage::SqliteStorage::open(home.path())
            .unwrap()
            .runs(&RunFilter::recent(5))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_command_line_runs_on_workers_and_prints_the_same_summary() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "cli");
    cluster.start_worker(false);
    let out = common::this_binary_as_child()
        .current_dir(cluster.cwd.path())
        .env("ORCH_TEST_CHILD_CLI", "materialize --select group:hang")
        .env("ORCH_HOME", cluster.home.path())
        .env("ORCH_STORE_URL", &cluster.url)
        .env("ORCH_STORE_SCHEMA", &cluster.schema)
        .env("ORCH_EXECUTOR", "workers")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("w_after_hang"), "{text}");
    let store = cluster.store();
    let runs = store.runs(&RunFilter::recent(5)).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].status, runs[0].counts.0),
        (RunStatus::Succeeded, 2)
    );
    // The worker did the work.
    assert!(
        cluster.worker_log(0).contains("w_after_hang succeeded"),
        "{}",
        cluster.worker_log(0)
    );
    // `--detach` returns with the run id at once.
    let out = common::this_binary_as_child()
        .current_dir(cluster.cwd.path())
        .env(
            "ORCH_TEST_CHILD_CLI",
            "materialize --select w_root --detach",
        )
        .env("ORCH_HOME", cluster.home.path())
        .env("ORCH_STORE_URL", &cluster.url)
        .env("ORCH_STORE_SCHEMA", &cluster.schema)
        .env("ORCH_EXECUTOR", "workers")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("is queued for workers; follow it with `run show"),
        "{text}"
    );
}

#[test]
fn a_store_outage_abandons_the_step_unpublished_and_the_run_finishes_when_it_is_back() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "outage");
    let proxy = Proxy::start(&url);
    // The worker reaches the store through the proxy; `w_hang` takes it longer than a lease.
    let worker = cluster.start_worker_on(&proxy.url(&url), false, Some(3_000));
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "group:hang");
    let store = cluster.store();
    let run_id = wait_for_started(&store, "w_hang", 1);
    // Down for longer than the lease: the worker cannot renew it, so it gives the step up
    // (the step is still running when the lease has passed).
    proxy.set_down(true);
    std::thread::sleep(LEASE + Duration::from_millis(1_500));
    proxy.set_down(false);
    let result = coordinator.join().unwrap();
    assert!(
        result.success(),
        "{result:?}\n{}",
        cluster.worker_log(worker)
    );
    // Given up unpublished: lost while running, or (the outage began while it was being
    // planned) not started.
    let log = cluster.worker_log(worker);
    assert!(
        log.contains("lost step `w_hang`") || log.contains("could not start step `w_hang`"),
        "{log}"
    );
    // Delivered again once the store was back, and materialized once.
    assert_eq!(deliveries(&store, &run_id, "w_hang"), [1, 2]);
    assert_eq!(store.materializations("w_hang", 10).unwrap().len(), 1);
    assert_eq!(store.materializations("w_after_hang", 10).unwrap().len(), 1);
}

#[test]
fn a_detached_run_returns_at_once_and_its_workers_end_it() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "detach");
    // Nothing serves the queue yet: the coordinator must not wait for anything.
    let instance = cluster.instance(Duration::from_secs(30));
    let result = Materialize::select("group:hang")
        .instance(&instance)
        .detach()
        .run()
        .unwrap();
    assert!(result.detached());
    assert!(result.outcomes().is_empty());
    let store = cluster.store();
    let run_id = result.run_id().as_str().to_owned();
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Running);
    // Its coordinator is gone (the instance holds nothing), yet the run is not crashed.
    drop(instance);
    assert!(store.recover_crashed().unwrap().is_empty());
    cluster.start_worker(false);
    wait_until_ended(&store, &run_id, "the workers never ended it");
    let run = store.run(&run_id).unwrap();
    assert_eq!((run.status, run.counts.0), (RunStatus::Succeeded, 2));
    // A run executed in process cannot be detached.
    let here = Instance::builder()
        .home(cluster.home.path())
        .build()
        .unwrap();
    let err = Materialize::select("w_root")
        .instance(&here)
        .detach()
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("only a run executed by workers can be detached"),
        "{err}"
    );
}

#[test]
fn a_step_tagged_with_a_queue_runs_only_on_workers_serving_it() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "queues");
    let cpu = cluster.start_worker(false);
    let instance = cluster.instance(Duration::from_secs(30));
    let result = Materialize::select("w_gpu")
        .instance(&instance)
        .detach()
        .run()
        .unwrap();
    let store = cluster.store();
    let run_id = result.run_id().as_str().to_owned();
    // The default worker leaves it: ready, and still there after the worker polled twice.
    let t0 = Instant::now();
    while !cluster.worker_log(cpu).contains("waiting for steps") {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2_500));
    let steps = store.step_queue().unwrap().steps(&run_id).unwrap();
    assert_eq!(steps[0].state, "ready", "{steps:?}");
    let url = cluster.url.clone();
    let gpu = cluster.spawn_worker(&url, "worker --queue gpu", false, None);
    wait_until_ended(&store, &run_id, "no gpu worker took it");
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Succeeded);
    assert!(
        cluster.worker_log(gpu).contains("w_gpu succeeded"),
        "{}",
        cluster.worker_log(gpu)
    );
    assert!(
        !cluster.worker_log(cpu).contains("w_gpu"),
        "{}",
        cluster.worker_log(cpu)
    );
}

#[test]
fn a_cancel_asked_through_the_store_ends_a_run_that_no_worker_took() {
    let Some(url) = server() else { return };
    let cluster = Cluster::new(&url, "cancel");
    let instance = cluster.instance(Duration::from_secs(30));
    // No worker: the coordinator waits for ever unless the cancel reaches it.
    let coordinator = run_in_background(&instance, "group:hang");
    let store = cluster.store();
    let run_id = wait_for_run(&store);
    // As the web UI and `run cancel` ask.
    store.request_cancel(&run_id).unwrap();
    let result = coordinator.join().unwrap();
    assert!(result.canceled(), "{result:?}");
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Canceled);
    let canceled = store
        .events(&run_id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Canceled)
        .count();
    assert_eq!(canceled, 2);
}

/// The test binary of `tests/workers_other_build.rs` (`cargo test` builds every test target
/// before it runs any): the same program with another code version of `w_build`.
fn other_build() -> Option<PathBuf> {
    let deps = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("workers_other_build-") && !n.contains('.'))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
}

#[test]
fn a_worker_of_another_build_leaves_the_step_to_a_worker_of_the_runs_build() {
    let Some(url) = server() else { return };
    let Some(other) = other_build() else {
        assert!(
            std::env::var_os("ORCH_REQUIRE_POSTGRES").is_none(),
            "the workers_other_build test binary is missing"
        );
        eprintln!("skipped: run `cargo test --no-run` first to build workers_other_build");
        return;
    };
    let mut cluster = Cluster::new(&url, "builds");
    let mut command = Command::new(other);
    command.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    let stranger = cluster.spawn_program(command, &url, "worker", false, None);
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "w_build");
    let store = cluster.store();
    let run_id = wait_for_run(&store);
    let queue = store.step_queue().unwrap();
    // The other build's worker is up and polling, and leaves the step ready.
    let t0 = Instant::now();
    while !cluster.worker_log(stranger).contains("waiting for steps") {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(2_500));
    let waiting = queue.waiting_steps(&run_id, Duration::ZERO).unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (waiting[0].step.as_str(), waiting[0].code_version.as_str()),
        ("w_build", "a")
    );
    // The run says which version waits (its coordinator writes it into the run's log).
    let t0 = Instant::now();
    while !store.logs(&run_id).unwrap().iter().any(|l| {
        l.message
            .starts_with("waiting for a worker with code version a of `w_build`")
    }) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run never said so"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A worker of the run's build takes it.
    let own = cluster.start_worker(false);
    wait_until_ended(&store, &run_id, "no worker ran it");
    assert!(coordinator.join().unwrap().success());
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Succeeded);
    assert!(cluster.worker_log(own).contains("w_build succeeded"));
    assert!(!cluster.worker_log(stranger).contains("w_build"));
}
