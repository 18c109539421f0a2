//! The child-process launcher, with this test binary as the program it launches: a run that
//! aborts its process is marked crashed, and the daemon goes on with the next run.
//!
//! No test harness (`harness = false` in Cargo.toml): the launcher runs this binary with
//! `__run-queued RUN_ID`, and then it must be orch's command line, as a user's binary is.

use std::process::ExitCode;
use std::time::Duration;

use orch::daemon::{Daemon, DaemonOptions, Launcher, QueueLimits};
use orch::prelude::*;
use orch::storage::{EventKind, RunStatus};

#[asset(group = "crash")]
fn aborts() -> u32 {
    // What an out-of-memory kill or a segfault in native code looks like from outside.
    std::process::abort()
}

#[asset(group = "crash")]
fn fine() -> u32 {
    1
}

fn a_run_that_aborts_its_process_is_marked_crashed_and_the_daemon_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let crashing = instance
        .enqueue(RunRequest::select("aborts").unwrap())
        .unwrap();
    let next = instance
        .enqueue(RunRequest::select("fine").unwrap())
        .unwrap();
    let options = DaemonOptions {
        poll: Duration::from_millis(20),
        launcher: Launcher::ChildProcess {
            program: std::env::current_exe().unwrap(),
            args: vec!["__run-queued".into()],
        },
        limits: QueueLimits {
            max_concurrent_runs: 1,
            tag_limits: Vec::new(),
        },
        ..DaemonOptions::default()
    };
    let daemon = Daemon::new(
        instance.clone(),
        orch::automation::automation().unwrap(),
        options,
    );
    let report = daemon.once(jiff::Timestamp::now(), &mut |_| {}).unwrap();
    assert_eq!(
        report.runs,
        [
            (crashing.clone(), RunStatus::Crashed),
            (next.clone(), RunStatus::Succeeded)
        ]
    );
    // Its end is recorded as a crash (the asset's own events may have died with the process:
    // they are written in batches, off the run's path).
    let events = instance.storage().events(crashing.as_str()).unwrap();
    assert_eq!(
        events.last().map(|e| e.kind),
        Some(EventKind::RunEnded(RunStatus::Crashed)),
        "{events:?}"
    );
    // Each ran in its own process: this one is alive, and the store says who ran them.
    let owner = instance
        .storage()
        .run(next.as_str())
        .unwrap()
        .owner
        .unwrap();
    assert!(
        !owner.starts_with(&format!("{}@", std::process::id())),
        "{owner}"
    );
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("__run-queued") {
        return orch::main();
    }
    let name = "a_run_that_aborts_its_process_is_marked_crashed_and_the_daemon_goes_on";
    a_run_that_aborts_its_process_is_marked_crashed_and_the_daemon_goes_on();
    println!("test {name} ... ok");
    ExitCode::SUCCESS
}
