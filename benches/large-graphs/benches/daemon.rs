//! The daemon's latencies and memory (see benches/README.md):
//!
//! - queue → run started: a run queued in the daemon's process, until the store records it
//!   started, in process and in a child process (median and p99 of `ORCH_BENCH_QUEUED`,
//!   default 200 / 50);
//! - tick → run started: a `* * * * *` schedule run by the long-running daemon with the
//!   child-process launcher, for `ORCH_BENCH_TICKS` real minute ticks (default 3; 0 skips it);
//! - memory: resident memory over `ORCH_BENCH_RUNS` (default 10,000) runs queued and started
//!   one after another by one daemon, sampled every 100 runs;
//! - one evaluation of 1,000 running schedules with nothing due (the daemon's every wake-up),
//!   with 10,000 more assets registered (the fan-out graph);
//! - sensor → run started: a sensor (every 100 ms) that asks for a run at each evaluation, run
//!   by the long-running daemon with the child-process launcher; for each run, the time from
//!   the end of the evaluation that asked for it (its tick recorded, with the run queued) to
//!   the start its store records (`ORCH_BENCH_SENSOR`, default 30 runs).
//!
//! With `__run-queued RUN_ID` it is orch's command line instead: the child-process launcher
//! runs this binary.

use std::time::{Duration, Instant, SystemTime};

use orch::daemon::{Daemon, DaemonEvent, DaemonOptions, Launcher};
// `use orch::prelude::*;` comes with the included fan-out graph below.
use orch::storage::{InstigatorStatus, RunFilter, RunStatus};

#[asset]
fn noop() -> u32 {
    1
}

// 10,000 more assets (the fan-out graph) and 1,000 daily schedules on `noop`, stopped by
// default: the evaluation figure starts them in its own store.
include!(concat!(env!("OUT_DIR"), "/fanout.rs"));
include!(concat!(env!("OUT_DIR"), "/schedules.rs"));

schedule!(
    every_minute,
    select = "noop",
    cron = "* * * * *",
    description = "Started only by the tick benchmark"
);

/// Asks for a run at every evaluation (started only by the sensor figure).
#[sensor(select = "noop", interval = "100ms")]
fn every_100ms(_ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new().run(SensorRun::new()))
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn child() -> Launcher {
    Launcher::ChildProcess {
        program: std::env::current_exe().unwrap(),
        args: vec!["__run-queued".into()],
    }
}

fn options(launcher: Launcher) -> DaemonOptions {
    DaemonOptions {
        launcher,
        ..DaemonOptions::default()
    }
}

/// A long-running daemon on a fresh store, in a thread; its events go to `on_event`.
struct Running {
    instance: Instance,
    shutdown: orch::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(
        launcher: Launcher,
        prepare: impl FnOnce(&Instance),
        mut on_event: impl FnMut(DaemonEvent<'_>) + Send + 'static,
    ) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open(dir.path()).unwrap();
        prepare(&instance);
        let shutdown = orch::CancellationToken::new();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = {
            let (instance, shutdown) = (instance.clone(), shutdown.clone());
            std::thread::spawn(move || {
                let daemon = Daemon::new(
                    instance,
                    orch::automation::automation().unwrap(),
                    options(launcher),
                );
                daemon
                    .run(&shutdown, &mut |e| {
                        if let DaemonEvent::Started { .. } = e {
                            let _ = ready_tx.send(());
                        }
                        on_event(e);
                    })
                    .unwrap();
            })
        };
        ready.recv().unwrap();
        Running {
            instance,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn since(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        samples.len()
    )
}

/// Queues `n` runs one after another in the daemon's process; for each, the time from just
/// before `enqueue` to the start its store records.
fn queue_to_start(launcher: Launcher, n: usize) -> Vec<Duration> {
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let daemon = Running::start(
        launcher,
        |_| {},
        move |e| {
            if let DaemonEvent::Ended(id, status) = e {
                let _ = ended_tx.send((id.clone(), status));
            }
        },
    );
    let request = RunRequest::select("noop").unwrap();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let queued_at = SystemTime::now();
        let id = daemon.instance.enqueue(request.clone()).unwrap();
        let (ended_id, status) = ended.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!((ended_id, status), (id.clone(), RunStatus::Succeeded));
        let started = daemon.instance.storage().run(id.as_str()).unwrap().started;
        samples.push(since(queued_at, started));
    }
    samples
}

/// A long-running daemon with the child-process launcher and the schedule or sensor `name`
/// started, once `runs` of the runs it launched have ended (each within `within`).
fn after_runs(name: &str, kind: &str, runs: usize, within: Duration) -> Running {
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let daemon = Running::start(
        child(),
        |instance| {
            instance
                .storage()
                .set_instigator_status(name, kind, InstigatorStatus::Running)
                .unwrap();
        },
        move |e| {
            if let DaemonEvent::Ended(id, _) = e {
                let _ = ended_tx.send(id.clone());
            }
        },
    );
    for _ in 0..runs {
        ended.recv_timeout(within).unwrap();
    }
    daemon
}

/// Real minute ticks of `every_minute` with the child-process launcher: for each run, the
/// time from its tick's instant to the start its store records.
fn tick_to_start(ticks: usize) -> Vec<Duration> {
    let daemon = after_runs("every_minute", "schedule", ticks, Duration::from_secs(90));
    let runs = daemon
        .instance
        .storage()
        .runs(&RunFilter::default().tag("orch/schedule", "every_minute"))
        .unwrap();
    runs.iter()
        .map(|run| {
            let tick = run.tags["orch/tick"].split_once('@').unwrap().1;
            let tick: jiff::Timestamp = tick.parse().unwrap();
            since(SystemTime::from(tick), run.started)
        })
        .collect()
}

/// `runs` runs of `every_100ms` with the child-process launcher: for each, the time from the
/// end of the sensor evaluation that queued it (its tick's recorded end) to its recorded start.
fn sensor_to_start(runs: usize) -> Vec<Duration> {
    let daemon = after_runs("every_100ms", "sensor", runs, Duration::from_secs(60));
    let store = daemon.instance.storage();
    let mut samples = Vec::new();
    for tick in store.ticks("every_100ms", 100_000).unwrap() {
        let Some(tick_ended) = tick.ended else {
            continue;
        };
        for id in &tick.run_ids {
            let run = store.run(id.as_str()).unwrap();
            if run.status == RunStatus::Succeeded {
                samples.push(since(tick_ended, run.started));
            }
        }
    }
    samples
}

/// One evaluation of every schedule (the 1,000 generated ones running, nothing due), as the
/// daemon makes it on each wake-up, with 10,000 assets registered: the median of `runs`.
fn schedule_evaluation(runs: usize) -> (usize, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let automation = orch::automation::automation().unwrap();
    for (schedule, _) in automation.schedules() {
        if schedule.name().starts_with('s') && schedule.name() != "every_minute" {
            instance
                .storage()
                .set_instigator_status(schedule.name(), "schedule", InstigatorStatus::Running)
                .unwrap();
        }
    }
    // Just after midnight UTC, no daily tick due in the next minutes: the steady state.
    let at: jiff::Timestamp = "2026-12-04T00:00:30Z".parse().unwrap();
    // The first pass sees them running and stores their cursors.
    orch::automation::evaluate_schedules(&instance, automation, at).unwrap();
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let now = at + jiff::SignedDuration::from_millis(i as i64);
        let t = Instant::now();
        let evaluations = orch::automation::evaluate_schedules(&instance, automation, now).unwrap();
        samples.push(t.elapsed());
        assert_eq!(evaluations.len(), automation.schedules().len());
    }
    samples.sort_unstable();
    (automation.schedules().len(), samples[samples.len() / 2])
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `runs` runs queued and started one after another by one in-process daemon; resident
/// memory every 100 runs.
fn memory(runs: usize) -> Vec<(usize, u64)> {
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let daemon = Running::start(
        Launcher::InProcess,
        |_| {},
        move |e| {
            if let DaemonEvent::Ended(..) = e {
                let _ = ended_tx.send(());
            }
        },
    );
    let request = RunRequest::select("noop").unwrap();
    let mut curve = Vec::new();
    for i in 1..=runs {
        daemon.instance.enqueue(request.clone()).unwrap();
        ended.recv_timeout(Duration::from_secs(60)).unwrap();
        if i % 100 == 0 {
            curve.push((i, rss_kib()));
        }
    }
    curve
}

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__run-queued") {
        return orch::main();
    }
    let t0 = Instant::now();
    let (schedules, evaluation) = schedule_evaluation(21);
    println!(
        "one evaluation of {schedules} schedules ({} running, nothing due; {} assets): median {:.2} ms",
        schedules - 1,
        orch::definitions().unwrap().len(),
        evaluation.as_secs_f64() * 1e3
    );
    let in_process = queue_to_start(Launcher::InProcess, env("ORCH_BENCH_QUEUED", 200));
    println!(
        "queue -> run started, in process:      {}",
        summary(in_process)
    );
    let children = queue_to_start(child(), env("ORCH_BENCH_QUEUED", 200).div_ceil(4));
    println!(
        "queue -> run started, child process:   {}",
        summary(children)
    );
    let ticks = env("ORCH_BENCH_TICKS", 3);
    if ticks > 0 {
        println!("waiting for {ticks} minute tick(s) of `* * * * *`...");
        println!(
            "tick -> run started, child process:    {}",
            summary(tick_to_start(ticks))
        );
    }
    let sensed = env("ORCH_BENCH_SENSOR", 30);
    if sensed > 0 {
        println!(
            "sensor -> run started, child process:  {}",
            summary(sensor_to_start(sensed))
        );
    }
    let curve = memory(env("ORCH_BENCH_RUNS", 10_000));
    let at = |n: usize| curve.iter().find(|(i, _)| *i >= n).map_or(0, |(_, k)| *k);
    let (first, last) = (at(100), curve.last().map_or(0, |(_, k)| *k));
    println!(
        "daemon RSS after 100 / 1,000 / {} runs: {} / {} / {} KiB ({:+} KiB after the first 100)",
        curve.last().map_or(0, |(i, _)| *i),
        first,
        at(1_000),
        last,
        last as i64 - first as i64
    );
    let points: Vec<String> = curve
        .iter()
        .step_by(10)
        .map(|(i, k)| format!("{i}:{k}"))
        .collect();
    println!("RSS curve (runs:KiB): {}", points.join(" "));
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
    std::process::ExitCode::SUCCESS
}
