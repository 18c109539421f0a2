//! The measuring side of the large-graph benchmarks: discovery and validation time, and the
//! executor's per-asset overhead on no-op assets, printed as a table row and a JSON line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orch::{AssetGraph, Instance, Materialize};

/// How many times each figure is measured; the median is reported.
const RUNS: usize = 7;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

static SEED: AtomicU64 = AtomicU64::new(0);

/// What the generated source assets add to their output: the harness changes it so that every
/// output of the next run differs from the stored one.
pub fn seed() -> u64 {
    SEED.load(Ordering::Relaxed)
}

/// Measures the graph registered in this binary and prints the figures; with a command
/// (`materialize`, `list`, `lineage`) it is an ordinary orch program instead, so whole-process
/// runs can be timed next to Dagster's.
pub fn main(shape: &str) -> std::process::ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        Some(c) if !c.starts_with("--") => orch::main(),
        _ => {
            run(shape);
            std::process::ExitCode::SUCCESS
        }
    }
}

fn run(shape: &str) {
    let t0 = Instant::now();
    let graph = AssetGraph::discover().expect("the generated graph is valid");
    let first_discovery = t0.elapsed();
    let n = graph.len();
    let discovery = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let g = AssetGraph::discover().expect("valid");
                let d = t.elapsed();
                assert_eq!(g.len(), n);
                d
            })
            .collect(),
    );

    let jobs = orch::default_jobs();
    let runtime = runtime(jobs);
    let mut results = Vec::new();
    // One warm-up run (the discovery cache, the blocking pool's threads), then measured runs.
    for round in 0..=RUNS {
        let result = runtime
            .block_on(
                Materialize::all()
                    .keep_outputs(false)
                    .jobs(jobs)
                    .run_async(),
            )
            .expect("the run starts");
        assert!(result.success());
        assert_eq!(result.outcomes().len(), n);
        if round > 0 {
            results.push(result.duration());
        }
    }
    let run = median(results);

    // The same with persistence on: the run store (SQLite events and logs, batched on a
    // writer thread) and every output stored by the default I/O manager (a durable file each).
    let dir = std::env::temp_dir().join(format!("orch-bench-{}-{shape}", std::process::id()));
    #[derive(Clone, Copy, PartialEq)]
    enum Outputs {
        /// A new state directory: every output is a new file (a first materialization).
        New,
        /// Every output differs from the stored one (the sources' seed changed).
        Changed,
        /// Every output equals the stored one, so no file is rewritten.
        Unchanged,
    }
    let mut fresh_dirs = 0;
    let mut persisted_run = |outputs: Outputs| {
        let mut state_dir = dir.clone();
        match outputs {
            Outputs::New => {
                // A new directory rather than deleting the old files: on ext4 mounted with
                // `discard`, freeing 10,000 files keeps the disk busy well into the next run.
                fresh_dirs += 1;
                state_dir = dir.join(format!("fresh-{fresh_dirs}"));
            }
            Outputs::Changed => {
                SEED.fetch_add(1, Ordering::Relaxed);
            }
            Outputs::Unchanged => {}
        }
        let recording = Instance::open(&state_dir).expect("the store opens");
        let t = Instant::now();
        let result = runtime
            .block_on(
                Materialize::all()
                    .keep_outputs(false)
                    .jobs(jobs)
                    .instance(&recording)
                    .run_async(),
            )
            .expect("the run starts");
        // `run_async` returns once every event is written, outputs are synced (one `syncfs`),
        // and the run is closed.
        let elapsed = t.elapsed();
        assert!(result.success() && result.storage_error().is_none());
        elapsed
    };
    // Warm-up: stores every output in `dir`, which the changed and unchanged runs rewrite.
    persisted_run(Outputs::Unchanged);
    let new_files = median((0..3).map(|_| persisted_run(Outputs::New)).collect());
    let changed = median((0..RUNS).map(|_| persisted_run(Outputs::Changed)).collect());
    let unchanged = median(
        (0..RUNS)
            .map(|_| persisted_run(Outputs::Unchanged))
            .collect(),
    );
    // Deciding what is stale when nothing changed (what `materialize --stale` does first).
    let store = orch::storage::SqliteStorage::open(&dir).expect("the store opens");
    let graph = orch::definitions().expect("valid");
    let stale_decision = median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                let inputs = orch::StaleInputs::load(graph, &store).expect("the store reads");
                let stale = orch::stale_assets(graph, &inputs);
                let d = t.elapsed();
                assert!(stale.iter().all(Option::is_none));
                d
            })
            .collect(),
    );
    // How long after the executor emits an event a subscriber of the instance's live feed
    // has it: one more run with outputs changed, a subscriber on another thread.
    let (feed_median, feed_p99, feed_max, feed_events) = {
        SEED.fetch_add(1, Ordering::Relaxed);
        let instance = Instance::open(&dir).expect("the store opens");
        let mut feed = instance.subscribe();
        let subscriber = std::thread::spawn(move || {
            use tokio::sync::broadcast::error::RecvError;
            let mut latencies = Vec::new();
            loop {
                match feed.blocking_recv() {
                    Ok(event) => {
                        let lag = std::time::SystemTime::now()
                            .duration_since(event.time)
                            .unwrap_or_default();
                        latencies.push(lag);
                        if matches!(event.kind, orch::storage::EventKind::RunEnded(_)) {
                            break;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => panic!("the subscriber lagged by {missed}"),
                    Err(RecvError::Closed) => break,
                }
            }
            latencies
        });
        let result = runtime
            .block_on(
                Materialize::all()
                    .keep_outputs(false)
                    .jobs(jobs)
                    .instance(&instance)
                    .run_async(),
            )
            .expect("the run starts");
        assert!(result.success());
        let mut latencies = subscriber.join().expect("the subscriber ends");
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        (at(0.5), at(0.99), at(1.0), latencies.len())
    };
    let _ = std::fs::remove_dir_all(&dir);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let per_asset_us = run.as_secs_f64() * 1e6 / n as f64;
    println!(
        "{shape:<8} n={n:<6} discovery+validation {:>6.2} ms (first {:>6.2} ms) | in memory {:>6.2} ms = {per_asset_us:>5.2} µs/asset | persisted: new files {:>7.1} ms = {:>6.1} µs/asset, outputs changed {:>7.1} ms = {:>6.1} µs/asset, unchanged {:>6.1} ms = {:>5.1} µs/asset | stale decision {:>5.1} ms | feed latency median {:>5.1} µs, p99 {:>6.1} µs, max {:>7.1} µs over {feed_events} events | jobs={jobs}",
        discovery.as_secs_f64() * 1e3,
        first_discovery.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        new_files.as_secs_f64() * 1e3,
        per(new_files),
        changed.as_secs_f64() * 1e3,
        per(changed),
        unchanged.as_secs_f64() * 1e3,
        per(unchanged),
        stale_decision.as_secs_f64() * 1e3,
        feed_median.as_secs_f64() * 1e6,
        feed_p99.as_secs_f64() * 1e6,
        feed_max.as_secs_f64() * 1e6,
    );
    println!(
        "{{\"bench\":\"orch_large_graph\",\"shape\":\"{shape}\",\"n\":{n},\"discovery_ms\":{:.3},\"run_ms\":{:.3},\"per_asset_us\":{per_asset_us:.3},\"persisted_new_files_us\":{:.3},\"persisted_changed_us\":{:.3},\"persisted_unchanged_us\":{:.3},\"stale_decision_ms\":{:.3},\"feed_median_us\":{:.1},\"feed_p99_us\":{:.1},\"jobs\":{jobs}}}",
        discovery.as_secs_f64() * 1e3,
        run.as_secs_f64() * 1e3,
        per(new_files),
        per(changed),
        per(unchanged),
        stale_decision.as_secs_f64() * 1e3,
        feed_median.as_secs_f64() * 1e6,
        feed_p99.as_secs_f64() * 1e6,
    );
}

/// The ops bench: each op job against the assets of the same shape (`chain` with `op_chain`,
/// `fanout` with `op_fanout`), in memory and persisted, the two sides measured alternately
/// (asset run, op run, asset run, ...) so both see the same machine; medians of 7 after a
/// warm-up. A persisted op run always writes new files (a step's output belongs to its run),
/// so it is set beside the assets' first materialization (new files) and their re-run with
/// every output changed.
pub fn ops_main() -> std::process::ExitCode {
    if std::env::args()
        .nth(1)
        .is_some_and(|c| !c.starts_with("--"))
    {
        return orch::main();
    }
    let jobs = orch::default_jobs();
    let runtime = runtime(jobs);
    let base = std::env::temp_dir().join(format!("orch-bench-ops-{}", std::process::id()));
    let mut fresh = 0;
    let mut timed = |request: orch::RunRequest, persisted: bool, new_dir: bool| -> Duration {
        let dir = match new_dir {
            true => {
                fresh += 1;
                base.join(format!("fresh-{fresh}"))
            }
            false => base.join("kept"),
        };
        let instance = persisted.then(|| Instance::open(&dir).expect("the store opens"));
        let mut run = Materialize::request(request).keep_outputs(false).jobs(jobs);
        if let Some(instance) = &instance {
            run = run.instance(instance);
        }
        let t = Instant::now();
        let result = runtime.block_on(run.run_async()).expect("the run starts");
        let elapsed = t.elapsed();
        assert!(result.success() && result.storage_error().is_none());
        elapsed
    };
    let n = orch::jobs::op_job("op_chain")
        .expect("generated")
        .graph()
        .len();
    let last = format!("+a{:05}", n - 1);
    for (shape, selection, job) in [
        ("chain", last.as_str(), "op_chain"),
        ("fanout", "src+", "op_fanout"),
    ] {
        let select = |_: &str| orch::RunRequest::select(selection).expect("valid");
        let op = || orch::RunRequest::job(job);
        // Warm-up both sides, then alternate.
        timed(select(shape), false, false);
        timed(op(), false, false);
        let (mut a_mem, mut o_mem) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            a_mem.push(timed(select(shape), false, false));
            o_mem.push(timed(op(), false, false));
        }
        timed(select(shape), true, false);
        let (mut a_new, mut a_changed) = (Vec::new(), Vec::new());
        let (mut o_new, mut o_run) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            a_new.push(timed(select(shape), true, true));
            o_new.push(timed(op(), true, true));
            SEED.fetch_add(1, Ordering::Relaxed);
            a_changed.push(timed(select(shape), true, false));
            o_run.push(timed(op(), true, false));
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        let (a_mem, o_mem) = (median(a_mem), median(o_mem));
        let (a_new, a_changed) = (median(a_new), median(a_changed));
        let (o_new, o_run) = (median(o_new), median(o_run));
        let pct = |o: Duration, a: Duration| (o.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0;
        println!(
            "{shape:<7} n={n} | in memory: assets {:>5.2} µs/step, ops {:>5.2} µs/step ({:+.1}%) | persisted, new store: assets {:>6.1}, ops {:>6.1} µs/step ({:+.1}%) | persisted, store of earlier runs: assets (outputs changed) {:>6.1}, ops {:>6.1} µs/step ({:+.1}%) | jobs={jobs}",
            per(a_mem),
            per(o_mem),
            pct(o_mem, a_mem),
            per(a_new),
            per(o_new),
            pct(o_new, a_new),
            per(a_changed),
            per(o_run),
            pct(o_run, a_changed),
        );
    }
    // The fan-out again, as `n - 1` elements of one mapped op: per element against per step.
    let fan = || orch::RunRequest::job("op_fanout");
    let mapped = || orch::RunRequest::job("op_mapped");
    timed(fan(), false, false);
    timed(mapped(), false, false);
    let (mut f_mem, mut m_mem, mut f_new, mut m_new) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        f_mem.push(timed(fan(), false, false));
        m_mem.push(timed(mapped(), false, false));
        f_new.push(timed(fan(), true, true));
        m_new.push(timed(mapped(), true, true));
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (n - 1) as f64;
    let (f_mem, m_mem) = (median(f_mem), median(m_mem));
    let (f_new, m_new) = (median(f_new), median(m_new));
    println!(
        "mapped  n={n} | in memory: fan-out of ops {:>5.2} µs/step, mapped op {:>5.2} µs/element ({:.1}×) | persisted, new store: fan-out {:>6.1} µs/step, mapped {:>6.2} µs/element ({:.0}×) | jobs={jobs}",
        per(f_mem),
        per(m_mem),
        f_mem.as_secs_f64() / m_mem.as_secs_f64(),
        per(f_new),
        per(m_new),
        f_new.as_secs_f64() / m_new.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&base);
    std::process::ExitCode::SUCCESS
}

/// The runtime the benches run on: one worker per job.
fn runtime(jobs: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(jobs)
        .enable_all()
        .build()
        .expect("tokio starts")
}
