//! Runs executed by `orch worker` processes through the PostgreSQL step queue, on
//! `ORCH_BENCH_WORKERS` workers (default 4) of `ORCH_BENCH_CONCURRENCY` slots each (default 1):
//!
//! - throughput: 1,000 no-op steps in 10 layers of 100 (each step reads three of the layer
//!   before), checked materialized exactly once each with their upstreams' committed versions:
//!   the run's wall time and steps per second, and from the queue's own timestamps
//!   (the server's clock) how long steps waited to be claimed and took from claim to commit;
//! - dispatch latency: a chain of 200 no-op steps, where one step at a time is ready and a
//!   worker is always free: ready to claimed is the queue's own latency (the notification,
//!   the wake-up, the claim), p50 and p99;
//!
//! - with an S3 server (`ORCH_BENCH_S3_URL` or `ORCH_TEST_S3_URL`, a bucket, and the `AWS_*`
//!   variables): 500 steps in 5 layers of 100, each writing a frame of about 1 KiB as Parquet
//!   to S3 (`[storage] url`) and each after the first layer reading one from there, each
//!   worker with a download cache of its own;
//!
//! then the no-op graphs run in process on the embedded store, for reference.
//!
//! Needs a PostgreSQL server: `ORCH_BENCH_POSTGRES_URL` (or `ORCH_TEST_POSTGRES_URL`). Each
//! round uses a fresh schema, dropped after. With a command (`worker ...`, what the worker
//! processes run) it is orch's command line.
#![allow(missing_docs)]
include!(concat!(env!("OUT_DIR"), "/layered1k.rs"));
include!(concat!(env!("OUT_DIR"), "/chain200_tail.rs"));
include!(concat!(env!("OUT_DIR"), "/frames500.rs"));

use orch::polars::prelude::{DataFrame, IntoLazy, NamedFrom, Series, col, lit};

/// About 1 KiB as uncompressed Parquet: 100 rows of an integer and a float.
fn kib_frame(seed: i64) -> DataFrame {
    let ints: Vec<i64> = (0..100).map(|i| seed * 1000 + i).collect();
    let floats: Vec<f64> = ints.iter().map(|&i| i as f64 / 7.0).collect();
    DataFrame::new(
        100,
        vec![
            Series::new("i".into(), ints).into(),
            Series::new("f".into(), floats).into(),
        ],
    )
    .expect("a frame")
}

/// The frame with every integer one more.
fn bump(frame: &DataFrame) -> DataFrame {
    frame
        .clone()
        .lazy()
        .with_column(col("i") + lit(1))
        .collect()
        .expect("a frame")
}

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use orch::storage::{PgStorage, Storage};
use orch::{Executor, Instance, StoreConfig};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn since(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<Duration> {
    b?.duration_since(a?).ok()
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn main() -> ExitCode {
    // With a command (`worker`, `materialize`, ...) it is orch's command line.
    // (`cargo bench` passes `--bench`.)
    if std::env::args().nth(1).is_some_and(|a| !a.starts_with('-')) {
        return orch::run_cli(std::env::args());
    }
    let Some(url) = std::env::var("ORCH_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("ORCH_TEST_POSTGRES_URL"))
        .ok()
    else {
        eprintln!(
            "set ORCH_BENCH_POSTGRES_URL to a PostgreSQL server (postgres://user@host:port/db)"
        );
        return ExitCode::from(2);
    };
    let workers = env_or("ORCH_BENCH_WORKERS", 4);
    let concurrency = env_or("ORCH_BENCH_CONCURRENCY", 1);
    let rounds = env_or("ORCH_BENCH_ROUNDS", 3);
    let exe = std::env::current_exe().expect("the bench knows where it is");
    println!(
        "no-op steps on {workers} worker process(es) x {concurrency} slot(s), PostgreSQL store"
    );
    println!(
        "{:<10} {:<6} {:>6} {:>10} {:>9} {:>14} {:>14} {:>14}",
        "graph",
        "round",
        "steps",
        "wall",
        "steps/s",
        "ready->claim",
        "ready->claim",
        "claim->commit"
    );
    println!(
        "{:<10} {:<6} {:>6} {:>10} {:>9} {:>14} {:>14} {:>14}",
        "", "", "", "", "", "p50", "p99", "p50"
    );
    let s3 = std::env::var("ORCH_BENCH_S3_URL")
        .or_else(|_| std::env::var("ORCH_TEST_S3_URL"))
        .ok();
    for round in 0..rounds {
        let schema = format!("orch_bench_workers_{}_{round}", std::process::id());
        let cluster = Cluster::start(&exe, &url, &schema, workers, concurrency, None);
        for (graph, selection) in [
            ("layered", "not group:tail and not group:frames"),
            ("chain", "group:tail"),
        ] {
            cluster.measure(graph, round, selection);
        }
        drop(cluster);
        if let Some(bucket) = &s3 {
            let schema = format!("{schema}_s3");
            let storage = format!(
                "{}/bench-{}-{round}",
                bucket.trim_end_matches('/'),
                std::process::id()
            );
            let cluster = Cluster::start(&exe, &url, &schema, workers, concurrency, Some(storage));
            cluster.measure("parquet-s3", round, "group:frames");
        }
    }
    if s3.is_none() {
        println!(
            "(set ORCH_BENCH_S3_URL, or ORCH_TEST_S3_URL, and AWS_ENDPOINT_URL etc. for the S3 variant)"
        );
    } else {
        let mut bytes = Vec::new();
        orch::polars::prelude::ParquetWriter::new(&mut bytes)
            .finish(&mut kib_frame(0))
            .expect("Parquet");
        println!(
            "(parquet-s3: each step writes {} bytes of Parquet)",
            bytes.len()
        );
    }
    // The same graphs in process, on the embedded store.
    let home = tempfile::tempdir().expect("a temporary directory");
    let instance = Instance::builder()
        .home(home.path())
        .build()
        .expect("the store");
    for (graph, selection, n) in [
        ("layered", "not group:tail and not group:frames", 1000),
        ("chain", "group:tail", 200),
    ] {
        let t0 = Instant::now();
        let result = Materialize::select(selection)
            .instance(&instance)
            .run()
            .expect("the run");
        let wall = t0.elapsed();
        assert!(result.success());
        println!(
            "{:<10} {:<6} {:>6} {:>10} {:>9.0}",
            graph,
            "in-proc",
            n,
            ms(wall),
            f64::from(n) / wall.as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}

/// One round's worker processes, coordinator and store; dropped: the workers killed and the
/// schema dropped (unless `ORCH_BENCH_KEEP`).
struct Cluster {
    url: String,
    schema: String,
    instance: Instance,
    store: PgStorage,
    workers: Workers,
    _homes: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts `workers` worker processes and the coordinator on schema `schema`; with
    /// `storage`, outputs go there as Parquet, and each worker has a state directory (a
    /// download cache) of its own, as on machines of their own.
    fn start(
        exe: &std::path::Path,
        url: &str,
        schema: &str,
        workers: usize,
        concurrency: usize,
        storage: Option<String>,
    ) -> Cluster {
        let homes: Vec<tempfile::TempDir> = (0..=workers)
            .map(|_| tempfile::tempdir().expect("a temporary directory"))
            .collect();
        let running = Workers(
            (0..workers)
                .map(|i| {
                    let home = match &storage {
                        Some(_) => homes[i + 1].path(),
                        None => homes[0].path(),
                    };
                    let mut command = Command::new(exe);
                    command
                        .args(["worker", "--concurrency", &concurrency.to_string()])
                        .env("ORCH_HOME", home)
                        .env("ORCH_STORE_URL", url)
                        .env("ORCH_STORE_SCHEMA", schema)
                        .stdout(Stdio::null());
                    if let Some(storage) = &storage {
                        command
                            .env("ORCH_STORAGE_URL", storage)
                            .env("ORCH_FRAME_FORMAT", "parquet");
                    }
                    command.spawn().expect("a worker process")
                })
                .collect(),
        );
        let mut config = orch::Config::default();
        config.set_home(homes[0].path());
        config.set_store(StoreConfig {
            url: Some(url.to_owned()),
            schema: Some(schema.to_owned()),
        });
        config.set_executor(Executor::Workers);
        if storage.is_some() {
            config.set_frame_format(orch::io::FrameFormat::Parquet);
        }
        config.set_storage_url(storage);
        let instance = Instance::builder()
            .config(config)
            .build()
            .expect("the store");
        let store = PgStorage::connect_in_schema(url, schema).expect("the store");
        // Let the workers connect and LISTEN before the clock starts.
        std::thread::sleep(Duration::from_millis(500));
        Cluster {
            url: url.to_owned(),
            schema: schema.to_owned(),
            instance,
            store,
            workers: running,
            _homes: homes,
        }
    }

    /// Runs `selection` and prints its row.
    fn measure(&self, graph: &str, round: usize, selection: &str) {
        let store = &self.store;
        let t0 = Instant::now();
        let result = Materialize::select(selection)
            .instance(&self.instance)
            .run()
            .expect("the run");
        let wall = t0.elapsed();
        assert!(result.success(), "the run failed: {result:?}");
        let steps = store
            .step_queue()
            .expect("a queue")
            .steps(result.run_id().as_str())
            .expect("the steps");
        // Every step materialized exactly once, and what each consumed is what its upstreams
        // committed (the first test, at full size).
        let events = store.events(result.run_id().as_str()).expect("the events");
        let mut materialized = std::collections::HashMap::new();
        for e in events
            .iter()
            .filter(|e| e.kind == orch::storage::EventKind::Materialized)
        {
            *materialized
                .entry(e.asset.as_ref().expect("an asset").to_string())
                .or_insert(0) += 1;
        }
        assert_eq!(
            materialized.len(),
            steps.len(),
            "a step was not materialized"
        );
        assert!(
            materialized.values().all(|&n| n == 1),
            "a step was materialized twice"
        );
        let latest = store.latest_materializations().expect("the latest");
        for e in events
            .iter()
            .filter(|e| e.kind == orch::storage::EventKind::Materialized)
        {
            for (up, version) in &e.inputs {
                assert_eq!(version, &latest[up].data_version, "{up}");
            }
        }
        let mut waited: Vec<Duration> = steps
            .iter()
            .filter_map(|s| since(s.ready, s.claimed))
            .collect();
        let mut ran: Vec<Duration> = steps
            .iter()
            .filter_map(|s| since(s.claimed, s.ended))
            .collect();
        waited.sort_unstable();
        ran.sort_unstable();
        println!(
            "{:<10} {:<6} {:>6} {:>10} {:>9.0} {:>14} {:>14} {:>14}",
            graph,
            round + 1,
            steps.len(),
            ms(wall),
            steps.len() as f64 / wall.as_secs_f64(),
            ms(percentile(&waited, 0.5)),
            ms(percentile(&waited, 0.99)),
            ms(percentile(&ran, 0.5)),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.workers.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("ORCH_BENCH_KEEP").is_some() {
            println!("kept schema {}", self.schema);
            return;
        }
        if let Ok(db) = orch::sql::Database::connect(&self.url) {
            let _ = db.execute_batch(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ));
        }
    }
}
