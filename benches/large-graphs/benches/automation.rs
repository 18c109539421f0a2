//! Declarative automation's costs (see benches/README.md):
//!
//! - one evaluation of 10,000 `eager()` conditions (the fan-out graph, every asset
//!   materialized, nothing to request: the steady state the daemon re-evaluates on every new
//!   event), alone and with the 1,000 running schedules' evaluation beside it; the median of
//!   `ORCH_BENCH_EVALS` (default 51);
//! - upstream materialized → eager downstream started: `up` materialized by another
//!   connection to the store (as another process would), until the store records the start
//!   of the run automation requested for `down`, with the long-running daemon in process and
//!   with the child-process launcher (`ORCH_BENCH_EAGER` samples each, default 30). Every
//!   evaluation on the way evaluates all 10,000 conditions.
//!
//! With `__run-queued RUN_ID` it is orch's command line instead: the child-process launcher
//! runs this binary.

use std::time::{Duration, Instant};

use orch::automation::AutomationEvaluator;
use orch::daemon::{Daemon, DaemonEvent, DaemonOptions, Launcher};
use orch::prelude::*;
use orch::storage::{EventKind, InstigatorStatus, RunFilter};

#[asset]
fn noop() -> u32 {
    1
}

/// Materialized from outside the daemon in the latency figure.
#[asset]
fn up() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[asset(automation = eager())]
fn down(up: &u64) -> u64 {
    *up
}

// 10,000 eager assets (`g_src` and its fan-out) and 1,000 daily schedules on `noop`.
include!(concat!(env!("OUT_DIR"), "/eager.rs"));
include!(concat!(env!("OUT_DIR"), "/schedules.rs"));

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.1} ms, p99 {:.1} ms, max {:.1} ms (n = {})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        samples.len()
    )
}

/// A store where every asset is materialized and automation has evaluated once (so nothing
/// is missing and nothing new: the steady state).
fn steady_store() -> (tempfile::TempDir, Instance) {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let result = instance.materialize(RunRequest::all()).run().unwrap();
    assert!(result.success());
    let automation = orch::automation::automation().unwrap();
    let first = AutomationEvaluator::new()
        .evaluate(&instance, automation, jiff::Timestamp::now())
        .unwrap();
    assert!(first.requested.is_empty(), "{first:?}");
    (dir, instance)
}

/// The median of `runs` evaluations of every condition (and of the 1,000 schedules).
fn evaluation(runs: usize) -> (Duration, Duration, Duration) {
    let (_dir, instance) = steady_store();
    let automation = orch::automation::automation().unwrap();
    for (schedule, _) in automation.schedules() {
        instance
            .storage()
            .set_instigator_status(schedule.name(), "schedule", InstigatorStatus::Running)
            .unwrap();
    }
    // Just after midnight UTC, no daily tick due in the next minutes.
    let at: jiff::Timestamp = "2026-12-04T00:00:30Z".parse().unwrap();
    orch::automation::evaluate_schedules(&instance, automation, at).unwrap();
    // The daemon's evaluator lives as long as the daemon: the first evaluation reads the
    // store's state, the next ones only what is new.
    let mut evaluator = AutomationEvaluator::new();
    evaluator.evaluate(&instance, automation, at).unwrap();
    let (mut conditions, mut schedules, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let now = at + jiff::SignedDuration::from_millis(i as i64);
        let t = Instant::now();
        orch::automation::evaluate_schedules(&instance, automation, now).unwrap();
        let s = t.elapsed();
        let t = Instant::now();
        let done = evaluator.evaluate(&instance, automation, now).unwrap();
        let c = t.elapsed();
        assert!(done.requested.is_empty());
        schedules.push(s);
        conditions.push(c);
        both.push(s + c);
    }
    let median = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    (median(conditions), median(schedules), median(both))
}

/// `n` times: materialize `up` through another instance on the same store, then wait for the
/// daemon's run of `down`; the time from `up`'s recorded materialization to that run's
/// recorded start.
fn eager_latency(launcher: Launcher, n: usize) -> Vec<Duration> {
    let (dir, instance) = steady_store();
    let (tx, started) = std::sync::mpsc::channel();
    let shutdown = orch::CancellationToken::new();
    let daemon = {
        let (instance, shutdown) = (instance.clone(), shutdown.clone());
        std::thread::spawn(move || {
            let options = DaemonOptions {
                launcher,
                ..DaemonOptions::default()
            };
            Daemon::new(instance, orch::automation::automation().unwrap(), options)
                .run(&shutdown, &mut |e| {
                    if let DaemonEvent::Ended(id, status) = e {
                        let _ = tx.send((id.clone(), status));
                    }
                })
                .unwrap();
        })
    };
    // Another connection, as another process's `materialize up` would have.
    let other = Instance::open(dir.path()).unwrap();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let result = other
            .materialize(RunRequest::select("up").unwrap())
            .run()
            .unwrap();
        assert!(result.success());
        let (id, status) = started.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(status, orch::storage::RunStatus::Succeeded);
        let run = instance.storage().run(id.as_str()).unwrap();
        assert_eq!(run.target, "down", "automation requested `down` alone");
        let materialized = instance
            .storage()
            .events(result.run_id().as_str())
            .unwrap()
            .into_iter()
            .find(|e| e.kind == EventKind::Materialized)
            .unwrap()
            .time;
        samples.push(run.started.duration_since(materialized).unwrap_or_default());
    }
    shutdown.cancel();
    daemon.join().unwrap();
    let runs = instance
        .storage()
        .runs(&RunFilter::default().tag("orch/automation", "true"))
        .unwrap();
    assert_eq!(runs.len(), n, "one run of `down` per update of `up`");
    samples
}

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__run-queued") {
        return orch::main();
    }
    let t0 = Instant::now();
    let automation = orch::automation::automation().unwrap();
    let (conditions, schedules, both) = evaluation(env("ORCH_BENCH_EVALS", 51));
    println!(
        "one evaluation of {} automation conditions (nothing new): median {:.2} ms",
        automation.conditions().len(),
        ms(conditions)
    );
    println!(
        "one evaluation of {} running schedules (nothing due):     median {:.2} ms",
        automation.schedules().len(),
        ms(schedules)
    );
    println!(
        "both, as one daemon pass makes them:                     median {:.2} ms",
        ms(both)
    );
    let n = env("ORCH_BENCH_EAGER", 30);
    println!(
        "upstream materialized -> eager downstream started, in process:    {}",
        summary(eager_latency(Launcher::InProcess, n))
    );
    let child = Launcher::ChildProcess {
        program: std::env::current_exe().unwrap(),
        args: vec!["__run-queued".into()],
    };
    println!(
        "upstream materialized -> eager downstream started, child process: {}",
        summary(eager_latency(child, n))
    );
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
    std::process::ExitCode::SUCCESS
}
