//! Runs executed by `orch worker` processes (`[run] executor = "workers"`) through the
//! PostgreSQL store's step queue: every step materialized once with the inputs its upstreams
//! committed, a killed worker's step delivered again, a zombie's late heartbeat and
//! completion refused. On the server `ORCH_TEST_POSTGRES_URL` names (`.ci/run` starts one).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use orch::prelude::*;
use orch::storage::{Delivery, EventKind, PgStorage, RunFilter, RunStatus, Storage};
use orch::{Executor, Instance, StoreConfig};

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

/// The lease of the tests that lose a worker: ten heartbeats of 200 ms, so a busy CI machine
/// does not lose a step that a live worker holds.
const LEASE: Duration = Duration::from_secs(2);

/// One test's schema on the server and directory of outputs (shared by its workers, as a
/// shared file system would be), dropped at the end; and its workers, killed at the end.
struct Cluster {
    url: String,
    schema: String,
    home: tempfile::TempDir,
    /// Where the workers run: an `orch.toml` with a short heartbeat, and their logs.
    cwd: tempfile::TempDir,
    workers: Vec<Child>,
}

impl Cluster {
    fn new(url: &str, name: &str) -> Cluster {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(
            cwd.path().join("orch.toml"),
            "[workers]\nheartbeat = \"200ms\"\nlease = \"2s\"\n",
        )
        .unwrap();
        Cluster {
            url: url.to_owned(),
            schema: format!("orch_w_{name}_{}_{nanos}", std::process::id()),
            home: tempfile::tempdir().unwrap(),
            cwd,
            workers: Vec::new(),
        }
    }

    fn store(&self) -> PgStorage {
        PgStorage::connect_in_schema(&self.url, &self.schema).unwrap()
    }

    /// The coordinator: runs go to workers, whose leases last `lease`.
    fn instance(&self, lease: Duration) -> Instance {
        let mut config = orch::Config::default();
        config.set_home(self.home.path());
        config.set_store(StoreConfig {
            url: Some(self.url.clone()),
            schema: Some(self.schema.clone()),
        });
        config.set_executor(Executor::Workers);
        config.set_delivery(
            Delivery {
                lease,
                max_deliveries: 3,
            },
            lease / 5,
        );
        Instance::builder().config(config).build().unwrap()
    }

    fn log(&self, n: usize) -> PathBuf {
        self.cwd.path().join(format!("worker{n}.log"))
    }

    /// Starts `orch worker` (this test binary's command line) in a child process.
    fn start_worker(&mut self, hang: bool) -> usize {
        self.start_worker_with(hang, None)
    }

    fn start_worker_with(&mut self, hang: bool, slow_ms: Option<u64>) -> usize {
        let url = self.url.clone();
        self.start_worker_on(&url, hang, slow_ms)
    }

    /// Starts a worker that reaches the store at `url`.
    fn start_worker_on(&mut self, url: &str, hang: bool, slow_ms: Option<u64>) -> usize {
        self.spawn_worker(url, "worker --concurrency 2", hang, slow_ms)
    }

    /// Starts `orch ARGS` (a worker) in a child process.
    fn spawn_worker(&mut self, url: &str, args: &str, hang: bool, slow_ms: Option<u64>) -> usize {
        self.spawn_program(common::this_binary_as_child(), url, args, hang, slow_ms)
    }

    /// Starts `orch ARGS` (a worker) in a child process running `program`'s `child_process`.
    fn spawn_program(
        &mut self,
        mut command: Command,
        url: &str,
        args: &str,
        hang: bool,
        slow_ms: Option<u64>,
    ) -> usize {
        let n = self.workers.len();
        let log = std::fs::File::create(self.log(n)).unwrap();
        command
            .current_dir(self.cwd.path())
            .env("ORCH_TEST_CHILD_CLI", args)
            .env("ORCH_HOME", self.home.path())
            .env("ORCH_STORE_URL", url)
            .env("ORCH_STORE_SCHEMA", &self.schema)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if hang {
            command.env("ORCH_TEST_HANG", "1");
        }
        if let Some(ms) = slow_ms {
            command.env("ORCH_TEST_SLOW_MS", ms.to_string());
        }
        self.workers.push(command.spawn().unwrap());
        n
    }

    fn signal(&self, n: usize, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.workers[n].id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn worker_log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log(n)).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.kill();
            let _ = worker.wait();
        }
        if let Ok(db) = orch::sql::Database::connect(&self.url) {
            let _ = db.execute_batch(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}

/// Not a test of its own: the worker processes the tests start run orch's command line here.
#[test]
fn child_process() {
    let _ = common::ran_cli_child();
}

/// Waits until `store` records a run; returns its id.
fn wait_for_run(store: &PgStorage) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(run) = store.runs(&RunFilter::recent(1)).unwrap().pop() {
            return run.id.to_string();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until run `run_id` is no longer running; `why` says what did not happen otherwise.
fn wait_until_ended(store: &PgStorage, run_id: &str, why: &str) {
    let t0 = Instant::now();
    while store.run(run_id).unwrap().status == RunStatus::Running {
        assert!(t0.elapsed() < Duration::from_secs(60), "{why}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `store` shows step `asset` of some run started `count` times; returns the run.
fn wait_for_started(store: &PgStorage, asset: &str, count: usize) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(run) = store
            .runs(&RunFilter::recent(1))
            .unwrap()
            .into_iter()
            .next()
        {
            let started = store
                .events(run.id.as_str())
                .unwrap()
                .iter()
                .filter(|e| e.kind == EventKind::Started && e.is_of(asset))
                .count();
            if started >= count {
                return run.id.to_string();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "`{asset}` never started {count} time(s)"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
    let coordinator = std::thread::spawn(move || {
        Materialize::select("group:hang")
            .instance(&instance)
            .run()
            .unwrap()
    });
    let store = cluster.store();
    let run_id = wait_for_started(&store, "w_hang", 1);
    cluster.signal(doomed, "-KILL");
    cluster.start_worker(false);
    let result = coordinator.join().unwrap();
    assert!(result.success(), "{result:?}");
    let events = store.events(&run_id).unwrap();
    let deliveries: Vec<u32> = events
        .iter()
        .filter(|e| e.kind == EventKind::Started && e.is_of("w_hang"))
        .map(|e| e.attempt.unwrap())
        .collect();
    assert_eq!(deliveries, [1, 2]);
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
    let coordinator = std::thread::spawn(move || {
        Materialize::select("w_hang")
            .instance(&instance)
            .run()
            .unwrap()
    });
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

/// A TCP proxy to the test server that can go down (dropping every connection through it and
/// refusing new ones) and come back: an outage of the store, as a worker sees it.
struct Proxy {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    fn start(url: &str) -> Proxy {
        use std::net::{TcpListener, TcpStream, ToSocketAddrs};
        use std::sync::atomic::Ordering;
        let parsed = url::Url::parse(url).unwrap();
        let target = (
            parsed.host_str().unwrap().to_owned(),
            parsed.port().unwrap_or(5432),
        )
            .to_socket_addrs()
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            down: Default::default(),
            open: Default::default(),
        };
        let (down, open) = (proxy.down.clone(), proxy.open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if down.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut open = open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        proxy
    }

    /// The server's URL through the proxy.
    fn url(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).unwrap();
        parsed.set_host(Some("127.0.0.1")).unwrap();
        parsed.set_port(Some(self.port)).unwrap();
        parsed.to_string()
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            for stream in self.open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

#[test]
fn a_store_outage_abandons_the_step_unpublished_and_the_run_finishes_when_it_is_back() {
    let Some(url) = server() else { return };
    let mut cluster = Cluster::new(&url, "outage");
    let proxy = Proxy::start(&url);
    // The worker reaches the store through the proxy; `w_hang` takes it longer than a lease.
    let worker = cluster.start_worker_on(&proxy.url(&url), false, Some(3_000));
    let instance = cluster.instance(LEASE);
    let coordinator = std::thread::spawn(move || {
        Materialize::select("group:hang")
            .instance(&instance)
            .run()
            .unwrap()
    });
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
    let started: Vec<u32> = store
        .events(&run_id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Started && e.is_of("w_hang"))
        .map(|e| e.attempt.unwrap())
        .collect();
    assert_eq!(started, [1, 2]);
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
    let coordinator = std::thread::spawn(move || {
        Materialize::select("group:hang")
            .instance(&instance)
            .run()
            .unwrap()
    });
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
    let coordinator = std::thread::spawn(move || {
        Materialize::select("w_build")
            .instance(&instance)
            .run()
            .unwrap()
    });
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
