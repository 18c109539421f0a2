//! Worker clusters for the tests of `orch worker`: a schema of one test's own on the
//! PostgreSQL test server, a state directory shared by its workers, worker processes (this test
//! binary's command line, started again), and a TCP proxy that can take a server away.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use orch::storage::{Delivery, EventKind, PgStorage, RunFilter, RunStatus, Storage};
use orch::{Executor, Instance, StoreConfig};

/// The lease of the tests that lose a worker: ten heartbeats of 200 ms, so a busy CI machine
/// does not lose a step that a live worker holds.
pub const LEASE: Duration = Duration::from_secs(2);

/// One test's schema on the server and directory of outputs (shared by its workers, as a
/// shared file system would be), dropped at the end; and its workers, killed at the end.
pub struct Cluster {
    pub url: String,
    pub schema: String,
    pub home: tempfile::TempDir,
    /// Where the workers run: an `orch.toml` with a short heartbeat, and their logs.
    pub cwd: tempfile::TempDir,
    pub workers: Vec<Child>,
    /// Where outputs are (`[storage] url`), for the coordinator and the workers; `None`: files
    /// under `home`, shared as a shared file system would be.
    pub storage: Option<String>,
    /// Environment variables for the next workers started.
    pub worker_env: Vec<(String, String)>,
}

impl Cluster {
    pub fn new(url: &str, name: &str) -> Cluster {
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
            storage: None,
            worker_env: Vec::new(),
        }
    }

    pub fn store(&self) -> PgStorage {
        PgStorage::connect_in_schema(&self.url, &self.schema).unwrap()
    }

    /// The coordinator: runs go to workers, whose leases last `lease`.
    pub fn instance(&self, lease: Duration) -> Instance {
        let mut config = orch::Config::default();
        config.set_home(self.home.path());
        config.set_store(StoreConfig {
            url: Some(self.url.clone()),
            schema: Some(self.schema.clone()),
        });
        config.set_executor(Executor::Workers);
        config.set_storage_url(self.storage.clone());
        config.set_delivery(
            Delivery {
                lease,
                max_deliveries: 3,
            },
            lease / 5,
        );
        Instance::builder().config(config).build().unwrap()
    }

    pub fn log(&self, n: usize) -> PathBuf {
        self.cwd.path().join(format!("worker{n}.log"))
    }

    /// Starts `orch worker` (this test binary's command line) in a child process.
    pub fn start_worker(&mut self, hang: bool) -> usize {
        self.start_worker_with(hang, None)
    }

    pub fn start_worker_with(&mut self, hang: bool, slow_ms: Option<u64>) -> usize {
        let url = self.url.clone();
        self.start_worker_on(&url, hang, slow_ms)
    }

    /// Starts a worker that reaches the store at `url`.
    pub fn start_worker_on(&mut self, url: &str, hang: bool, slow_ms: Option<u64>) -> usize {
        self.spawn_worker(url, "worker --concurrency 2", hang, slow_ms)
    }

    /// Starts `orch ARGS` (a worker) in a child process.
    pub fn spawn_worker(
        &mut self,
        url: &str,
        args: &str,
        hang: bool,
        slow_ms: Option<u64>,
    ) -> usize {
        self.spawn_program(super::this_binary_as_child(), url, args, hang, slow_ms)
    }

    /// Starts `orch ARGS` (a worker) in a child process running `program`'s `child_process`.
    pub fn spawn_program(
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
            .envs(self.storage.iter().map(|url| ("ORCH_STORAGE_URL", url)))
            .envs(self.worker_env.iter().map(|(k, v)| (k, v)))
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

    pub fn signal(&self, n: usize, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.workers[n].id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn worker_log(&self, n: usize) -> String {
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

/// Waits until `store` records a run; returns its id.
pub fn wait_for_run(store: &PgStorage) -> String {
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
pub fn wait_until_ended(store: &PgStorage, run_id: &str, why: &str) {
    let t0 = Instant::now();
    while store.run(run_id).unwrap().status == RunStatus::Running {
        assert!(t0.elapsed() < Duration::from_secs(60), "{why}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `store` shows step `asset` of some run started `count` times; returns the run.
pub fn wait_for_started(store: &PgStorage, asset: &str, count: usize) -> String {
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

/// A TCP proxy to the test server that can go down (dropping every connection through it and
/// refusing new ones) and come back: an outage of the store, as a worker sees it.
pub struct Proxy {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub fn start(url: &str) -> Proxy {
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
    pub fn url(&self, url: &str) -> String {
        let mut parsed = url::Url::parse(url).unwrap();
        parsed.set_host(Some("127.0.0.1")).unwrap();
        parsed.set_port(Some(self.port)).unwrap();
        parsed.to_string()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            for stream in self.open.lock().unwrap().drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Runs `selection` on `instance` (its coordinator) in a thread of its own, to wait for later.
pub fn run_in_background(
    instance: &Instance,
    selection: &str,
) -> std::thread::JoinHandle<orch::RunResult> {
    let (instance, selection) = (instance.clone(), selection.to_owned());
    std::thread::spawn(move || {
        orch::Materialize::select(&selection)
            .instance(&instance)
            .run()
            .unwrap()
    })
}

/// The deliveries of step `asset` in run `run_id` that started, in order.
pub fn deliveries(store: &dyn Storage, run_id: &str, asset: &str) -> Vec<u32> {
    store
        .events(run_id)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Started && e.is_of(asset))
        .map(|e| e.attempt.unwrap())
        .collect()
}
