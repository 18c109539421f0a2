//! Where a run's time went: each asset's load, compute and store, and the run's phases (plan,
//! load, begin, execute, waiting for the store, sync), kept in the run store and printed by
//! `run show ID --timings`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{example_binary, example_in, last_run_id, stderr, stdout};
use orch::prelude::*;
use orch::storage::EventKind;

#[asset(group = "timed")]
fn numbers() -> Vec<u64> {
    (0..10_000).collect()
}

#[asset(group = "timed")]
fn total(numbers: &Vec<u64>) -> u64 {
    numbers.iter().sum()
}

#[asset(group = "timed")]
fn broken(total: &u64) -> Result<u64, BoxError> {
    Err(format!("cannot use {total}").into())
}

/// The stored form: whole microseconds.
fn micros(d: Duration) -> u128 {
    d.as_micros()
}

#[test]
fn a_recorded_run_keeps_its_phases_and_each_assets_timings() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let result = instance
        .materialize(RunRequest::selection("group:timed".parse().unwrap()))
        .run()
        .unwrap();
    assert!(!result.success());
    let phases = *result.timings().expect("a recorded run has timings");
    // Every asset's work happened while the run executed its assets.
    for outcome in result.outcomes() {
        assert!(
            outcome.timings.total() <= phases.execute,
            "{}: {:?} within {:?}",
            outcome.key,
            outcome.timings,
            phases.execute
        );
    }
    let total = result.outcome("total").unwrap().timings;
    assert_eq!(total.load, Duration::ZERO, "no partition mapping");

    // The store has the same figures, to the microsecond.
    let store = instance.storage();
    let record = store.run(result.run_id().as_str()).unwrap();
    let kept = record.timings.expect("kept with the run");
    assert_eq!(micros(kept.total()), {
        let t = phases;
        [t.plan, t.load, t.begin, t.execute, t.record_wait, t.sync]
            .into_iter()
            .map(micros)
            .sum::<u128>()
    });
    assert_eq!(micros(kept.execute), micros(phases.execute));
    let events = store.events(result.run_id().as_str()).unwrap();
    for outcome in result.outcomes() {
        let event = events
            .iter()
            .find(|e| {
                e.asset.as_ref() == Some(&outcome.key)
                    && matches!(e.kind, EventKind::Materialized | EventKind::Failed)
            })
            .unwrap_or_else(|| panic!("{} has an outcome event", outcome.key));
        let stored = event.timings.expect("timed");
        assert_eq!(micros(stored.compute), micros(outcome.timings.compute));
        assert_eq!(micros(stored.store), micros(outcome.timings.store));
    }
    // The failed asset stored nothing.
    let broken = result.outcome("broken").unwrap().timings;
    assert_eq!(broken.store, Duration::ZERO);
}

#[test]
fn an_unrecorded_run_has_no_run_timings_but_its_assets_do() {
    let result = orch::Materialize::select("numbers").run().unwrap();
    assert!(result.success());
    assert!(result.timings().is_none());
    assert_eq!(
        result.outcome("numbers").unwrap().timings.store,
        Duration::ZERO
    );
}

#[test]
fn run_show_timings_prints_the_phases_and_each_asset() {
    let home = tempfile::tempdir().unwrap();
    let out = example_in(home.path(), "quickstart", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = last_run_id(home.path(), "quickstart");
    let id = id.as_str();
    let out = example_in(home.path(), "quickstart", &["run", "show", id, "--timings"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for phase in [
        "from planning to recorded",
        "plan",
        "run the assets",
        "wait for the store",
        "sync the outputs",
        "committed events for",
    ] {
        assert!(text.contains(phase), "{phase}: {text}");
    }
    let header = text.lines().find(|l| l.starts_with("ASSET")).unwrap();
    assert!(
        header.contains("COMPUTE") && header.contains("STORE"),
        "{text}"
    );
    for asset in ["readings", "scaled", "count", "summary", "sum of 4"] {
        assert!(
            text.lines().any(|l| l.starts_with(asset)),
            "{asset}: {text}"
        );
    }
    // `last` names the newest run.
    let last = example_in(
        home.path(),
        "quickstart",
        &["run", "show", "last", "--timings"],
    );
    assert_eq!(stdout(&last), text);
    let empty = tempfile::tempdir().unwrap();
    let none = example_in(empty.path(), "quickstart", &["run", "show", "last"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("there is no run yet"),
        "{}",
        stderr(&none)
    );
    // `--follow` and `--timings` are two different views.
    let out = example_in(
        home.path(),
        "quickstart",
        &["run", "show", id, "--timings", "--follow"],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_printing_command_ends_quietly_when_its_reader_goes() {
    let binary = example_binary("quickstart");
    if !binary.exists() {
        // `cargo test` builds the examples before any test runs; a filtered run may not.
        eprintln!("skipped: build the examples first (cargo test --no-run)");
        return;
    }
    // `orch run show ID | head -1` on a run with more events than a pipe holds (64 KiB), so
    // the command is still writing when its reader goes, and a log line printed after them.
    let home = tempfile::tempdir().unwrap();
    {
        use orch::storage::{EventRecord, LogRecord, RunRecord};
        let instance = Instance::open(home.path()).unwrap();
        let store = instance.storage();
        let run = RunRecord::new(orch::RunId::from("many-events"), &RunRequest::all(), 1);
        store.begin_run(&run, &[]).unwrap();
        let key: orch::AssetKey = "numbers".parse().unwrap();
        let events: Vec<EventRecord> = (0..2000)
            .map(|_| EventRecord::new(run.id.clone(), Some(key.clone()), EventKind::Started))
            .collect();
        let log = LogRecord {
            asset: "numbers".into(),
            time: std::time::SystemTime::now(),
            level: orch::LogLevel::Info,
            message: "the last line".into(),
        };
        store.append(&events, &[(run.id.to_string(), log)]).unwrap();
    }
    let mut child = Command::new(&binary)
        .args(["run", "show", "many-events"])
        .env("ORCH_HOME", home.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with("run many-events"), "{first}");
    // The reader goes: its end of the pipe closes.
    drop(reader);
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
