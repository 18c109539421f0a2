//! Workers sharing outputs on object storage (`[storage] url`): a zombie's late write is never
//! referenced and is swept, and a step whose output cannot be stored while S3 is down is given
//! up and delivered again. On the PostgreSQL server `ORCH_TEST_POSTGRES_URL` names and the S3
//! server `ORCH_TEST_S3_URL` names (`.ci/run` starts both and requires them).

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, LEASE, Proxy, deliveries, run_in_background, wait_for_started};
use orch::io::{IoManager, LOCATION, SweepOptions};
use orch::polars::prelude::*;
use orch::prelude::*;
use orch::storage::{EventKind, RunStatus, Storage};

/// Takes `ORCH_TEST_SLOW_MS` in a worker started with that, and returns at once in any other.
#[asset(group = "stored")]
fn ws_slow() -> u64 {
    if let Some(ms) = std::env::var("ORCH_TEST_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    7
}

#[asset(group = "stored")]
fn ws_after(ws_slow: &u64) -> u64 {
    ws_slow + 1
}

/// Days, each split out of one frame by its `day` column when a run covers a range.
#[asset(
    group = "ws_range",
    partitions = daily("2024-01-01").end("2024-01-06"),
    partition_by = "day"
)]
fn ws_days(ctx: &AssetContext) -> DataFrame {
    let days: Vec<String> = ctx.partition_keys().to_vec();
    let n: Vec<i64> = (1..=days.len() as i64).collect();
    df!("day" => days, "n" => n).unwrap()
}

/// The same days, doubled.
#[asset(
    group = "ws_range",
    partitions = daily("2024-01-01").end("2024-01-06"),
    partition_by = "day"
)]
fn ws_days_doubled(ws_days: &DataFrame) -> DataFrame {
    let n = ws_days.column("n").unwrap().i64().unwrap() * 2;
    df!("day" => ws_days.column("day").unwrap().as_materialized_series().clone(), "n" => n.into_series()).unwrap()
}

/// Not a test of its own: the worker processes the tests start run orch's command line here.
#[test]
fn child_process() {
    let _ = common::ran_cli_child();
}

/// A cluster whose outputs are under a fresh prefix of the test bucket.
fn cluster(name: &str) -> Option<Cluster> {
    let url = common::postgres_url()?;
    let bucket = common::s3_url()?;
    let mut cluster = Cluster::new(&url, name);
    cluster.storage = Some(format!("{bucket}/{}", common::unique(name)));
    Some(cluster)
}

fn wait_for_log(cluster: &Cluster, worker: usize, any_of: &[&str]) {
    let t0 = Instant::now();
    while !any_of
        .iter()
        .any(|text| cluster.worker_log(worker).contains(text))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the worker never said {any_of:?}: {}",
            cluster.worker_log(worker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_zombies_late_output_is_never_referenced_and_is_swept() {
    let Some(mut cluster) = cluster("zombie-objects") else {
        return;
    };
    // Stopped as soon as it claims `ws_slow`, the zombie outlives its lease; a second worker
    // completes the step; resumed, the zombie finishes the asset and uploads its output under
    // a key of its own, and its completion is refused.
    let zombie = cluster.start_worker_with(false, Some(4_000));
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "ws_slow");
    let store = cluster.store();
    let run_id = wait_for_started(&store, "ws_slow", 1);
    cluster.signal(zombie, "-STOP");
    cluster.start_worker(false);
    let result = coordinator.join().unwrap();
    assert!(result.success(), "{result:?}");
    cluster.signal(zombie, "-CONT");
    wait_for_log(&cluster, zombie, &["lost step `ws_slow`", "was refused"]);
    assert_eq!(deliveries(&store, &run_id, "ws_slow"), [1, 2]);
    let materialized = store.materializations("ws_slow", 10).unwrap();
    assert_eq!(materialized.len(), 1);
    let committed = location_in(&materialized[0]);
    // Two objects of the run: the committed one and the zombie's, which the sweep deletes.
    let report = instance
        .sweep_outputs(SweepOptions::older_than(Duration::ZERO))
        .unwrap()
        .unwrap();
    assert_eq!(report.listed, 2, "{report:?}");
    assert_eq!(report.referenced, 1, "{report:?}");
    assert_eq!(report.deleted.len(), 1, "{report:?}");
    assert_ne!(report.deleted[0], committed);
    assert!(
        report.deleted[0].contains(&format!("/ws_slow/{run_id}.")),
        "{report:?}"
    );
    // What was committed still loads.
    let after = Materialize::select("ws_after")
        .instance(&instance)
        .run()
        .unwrap();
    assert!(after.success(), "{after:?}");
}

#[test]
fn a_step_whose_output_cannot_be_stored_while_s3_is_down_is_delivered_again() {
    let Some(mut cluster) = cluster("s3-outage") else {
        return;
    };
    // The worker reaches S3 through a proxy, which goes down while `ws_slow` runs: storing its
    // output fails (after the client's retries), and the step is given up, not failed.
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the S3 server's endpoint");
    let proxy = Proxy::start(&endpoint);
    cluster.worker_env.push((
        "AWS_ENDPOINT_URL".to_owned(),
        proxy.url(&endpoint).trim_end_matches('/').to_owned(),
    ));
    let worker = cluster.start_worker_with(false, Some(1_000));
    let instance = cluster.instance(LEASE);
    let coordinator = run_in_background(&instance, "group:stored");
    let store = cluster.store();
    let run_id = wait_for_started(&store, "ws_slow", 1);
    proxy.set_down(true);
    wait_for_log(&cluster, worker, &["given up, to be delivered again"]);
    proxy.set_down(false);
    let result = coordinator.join().unwrap();
    assert!(
        result.success(),
        "{result:?}\n{}",
        cluster.worker_log(worker)
    );
    assert_eq!(store.run(&run_id).unwrap().status, RunStatus::Succeeded);
    assert_eq!(deliveries(&store, &run_id, "ws_slow"), [1, 2]);
    assert_eq!(store.materializations("ws_slow", 10).unwrap().len(), 1);
    assert_eq!(store.materializations("ws_after", 10).unwrap().len(), 1);
    // Given back at once, not after its lease, saying why.
    let retried: Vec<String> = store
        .events(&run_id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Retried && e.is_of("ws_slow"))
        .filter_map(|e| e.message)
        .collect();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert!(
        retried[0].contains("given back to the queue") && retried[0].contains("could not upload"),
        "{retried:?}"
    );
    assert!(
        cluster
            .worker_log(worker)
            .contains("to be delivered again after a backoff"),
        "{}",
        cluster.worker_log(worker)
    );
    assert!(
        cluster.worker_log(worker).contains("could not upload"),
        "{}",
        cluster.worker_log(worker)
    );
}

#[test]
fn a_run_over_a_range_and_a_backfill_run_on_workers() {
    let Some(mut cluster) = cluster("ranges") else {
        return;
    };
    cluster.start_worker(false);
    cluster.start_worker(false);
    let instance = cluster.instance(std::time::Duration::from_secs(30));
    let days = ["2024-01-01", "2024-01-02", "2024-01-03"];
    let result = Materialize::select("group:ws_range")
        .partition_range(days)
        .instance(&instance)
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    let store = cluster.store();
    let url = cluster.storage.clone().unwrap();
    for asset in ["ws_days", "ws_days_doubled"] {
        let committed = store.partition_materializations(asset).unwrap();
        let mut keys: Vec<&String> = committed.keys().collect();
        keys.sort();
        assert_eq!(keys, days, "{asset}");
        for (day, record) in &committed {
            let location = location_in(record);
            assert!(
                location.starts_with(&format!("{url}/{asset}/{day}/")),
                "{location}"
            );
        }
    }
    // A backfill of the other days: one run per day, each on the workers.
    let plan = orch::Backfill::keys(
        "group:ws_range".parse().unwrap(),
        ["2024-01-04", "2024-01-05"],
    )
    .plan(&instance)
    .unwrap();
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(plan.run(&instance, &orch::CancellationToken::new(), &mut |_| {}))
        .unwrap();
    assert!(report.success(), "{report:?}");
    assert_eq!(
        store
            .partition_materializations("ws_days_doubled")
            .unwrap()
            .len(),
        5
    );
    // Every step ran on a worker.
    for run in store.runs(&orch::storage::RunFilter::recent(10)).unwrap() {
        starts_on_workers(&store, run.id.as_str());
    }
}

/// The start events of run `run_id`, checked to be all on workers (each says which).
fn starts_on_workers(store: &dyn Storage, run_id: &str) -> Vec<orch::storage::EventRecord> {
    let starts: Vec<orch::storage::EventRecord> = store
        .events(run_id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::Started)
        .collect();
    assert!(
        starts.iter().all(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("on worker"))),
        "{starts:?}"
    );
    starts
}

/// The location a materialization records.
fn location_in(record: &orch::storage::EventRecord) -> String {
    record
        .metadata
        .iter()
        .find(|(label, _)| label == LOCATION)
        .map(|(_, value)| value.to_string())
        .expect("a recorded location")
}

/// Its threshold from the run config.
#[op]
fn wj_numbers(#[config] cfg: &WjConfig) -> Vec<u64> {
    (1..=cfg.up_to).collect()
}

#[derive(serde::Deserialize)]
struct WjConfig {
    up_to: u64,
}

#[op]
fn wj_named() -> Result<Dynamic<u64>, BoxError> {
    let mut each = Dynamic::new();
    for (key, value) in [("a", 1u64), ("b", 2), ("c", 3)] {
        each.push(key, value)?;
    }
    Ok(each)
}

#[op]
fn wj_square(x: &u64) -> u64 {
    x * x
}

#[op]
fn wj_total(numbers: &Vec<u64>, squares: &Vec<u64>) -> u64 {
    numbers.iter().sum::<u64>() + squares.iter().sum::<u64>()
}

/// A config, a mapped op and a fan-in: each step on a worker.
#[job]
fn wj_job() {
    wj_total(wj_numbers(), wj_named().map(wj_square).collect());
}

#[test]
fn an_op_job_runs_on_workers_each_step_reading_its_upstreams_committed_output() {
    let Some(mut cluster) = cluster("op-job") else {
        return;
    };
    cluster.start_worker(false);
    cluster.start_worker(false);
    let instance = cluster.instance(Duration::from_secs(30));
    let config = orch::RunConfig::parse("[ops.wj_numbers]\nup_to = 4").unwrap();
    let result = instance
        .materialize(orch::RunRequest::job("wj_job").config(config))
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    let store = cluster.store();
    assert_eq!(starts_on_workers(&store, result.run_id().as_str()).len(), 4);
    let events = store.events(result.run_id().as_str()).unwrap();
    // The fan-in read what its upstreams committed: 1+2+3+4 and 1+4+9.
    let total = events
        .iter()
        .find(|e| e.kind == EventKind::Materialized && e.is_of("wj_job/wj_total"))
        .expect("the total materialized");
    let location = location_in(total);
    assert!(
        location.contains(&format!("/_runs/{}/wj_job/wj_total/", result.run_id())),
        "{location}"
    );
    let loaded = instance
        .io_managers()
        .objects()
        .unwrap()
        .load_input(&orch::io::InputContext {
            key: &format!("_runs/{}/wj_job/wj_total", result.run_id())
                .parse()
                .unwrap(),
            partition: None,
            output_type: "u64",
            codec: total_codec(),
        })
        .unwrap();
    assert_eq!(loaded.downcast_ref::<u64>(), Some(&24));
}

/// How a `u64` step output is stored.
fn total_codec() -> Option<orch::io::Codec> {
    let job = orch::jobs::op_job("wj_job").unwrap();
    let id = job.step("wj_total").unwrap();
    job.graph().node(id).def.storage_codec()
}

#[op]
fn wj_base() -> u64 {
    5
}

/// Fails while a file `fail-wj` is in the worker's directory.
#[op]
fn wj_flaky(x: &u64) -> Result<u64, BoxError> {
    match std::path::Path::new("fail-wj").exists() {
        true => Err("told to fail".into()),
        false => Ok(x + 1),
    }
}

#[op]
fn wj_after(x: &u64) -> u64 {
    x * 10
}

#[job]
fn wj_flaky_job() {
    wj_after(wj_flaky(wj_base()));
}

#[test]
fn a_failed_op_job_run_is_re_executed_on_workers_from_its_failure() {
    let Some(mut cluster) = cluster("op-reexec") else {
        return;
    };
    std::fs::write(cluster.cwd.path().join("fail-wj"), "").unwrap();
    cluster.start_worker(false);
    let instance = cluster.instance(Duration::from_secs(30));
    let failed = instance
        .materialize(orch::RunRequest::job("wj_flaky_job"))
        .run()
        .unwrap();
    assert!(!failed.success());
    std::fs::remove_file(cluster.cwd.path().join("fail-wj")).unwrap();
    let request = orch::Reexecution::of(&**instance.storage(), failed.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("something failed");
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{again:?}");
    // Only what failed ran again, reading `wj_base` as the first run committed it.
    let store = cluster.store();
    let ran: Vec<String> = store
        .events(again.run_id().as_str())
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Materialized)
        .map(|e| e.asset.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["wj_flaky_job/wj_flaky", "wj_flaky_job/wj_after"]);
    let after = format!("_runs/{}/wj_flaky_job/wj_after", again.run_id());
    let loaded = instance
        .io_managers()
        .objects()
        .unwrap()
        .load_input(&orch::io::InputContext {
            key: &after.parse().unwrap(),
            partition: None,
            output_type: "u64",
            codec: total_codec(),
        })
        .unwrap();
    assert_eq!(loaded.downcast_ref::<u64>(), Some(&60));
}

#[test]
fn a_run_the_daemon_starts_goes_to_the_workers() {
    let Some(mut cluster) = cluster("daemon") else {
        return;
    };
    cluster.start_worker(false);
    let instance = cluster.instance(Duration::from_secs(30));
    let shutdown = orch::CancellationToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let daemon = {
        let (instance, shutdown) = (instance.clone(), shutdown.clone());
        std::thread::spawn(move || {
            orch::daemon::Daemon::new(
                instance,
                orch::automation::automation().unwrap(),
                orch::daemon::DaemonOptions {
                    poll: Duration::from_millis(50),
                    ..orch::daemon::DaemonOptions::default()
                },
            )
            .run(&shutdown, &mut |event| {
                if let orch::daemon::DaemonEvent::Ended(id, status) = event {
                    let _ = tx.send((id.clone(), status));
                }
            })
        })
    };
    let id = instance
        .enqueue(orch::RunRequest::select("group:stored").unwrap())
        .unwrap();
    let (ended, status) = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((ended.clone(), status), (id, RunStatus::Succeeded));
    shutdown.cancel();
    daemon.join().unwrap().unwrap();
    let store = cluster.store();
    assert_eq!(starts_on_workers(&store, ended.as_str()).len(), 2);
}
