//! Sensors over the library API: the cursor moves only when an evaluation succeeds, run keys
//! launch once, an error, a panic or a hang is a failed evaluation with its cause, the
//! interval is a minimum, and the cursor survives a restart.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use orch::automation::{
    SensorEvaluated, SensorOutcome, automation, evaluate_sensors, run_sensor, sensor_cursor_key,
};
use orch::prelude::*;
use orch::storage::{RunFilter, RunStatus, TickStatus};

/// The files in the "bucket" the sensor lists.
static FILES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
/// 0: list the files; 1: fail; 2: panic; 3: hang past the time-out.
static MODE: AtomicU8 = AtomicU8::new(0);
/// Lets a hanging evaluation return; set when it has.
static RELEASE: AtomicBool = AtomicBool::new(false);
static RETURNED: AtomicBool = AtomicBool::new(false);

#[asset(group = "landing")]
fn landed() -> u32 {
    1
}

/// Every file in the bucket, keyed by its name; the cursor counts the files seen.
#[sensor(select = "landed", interval = "1s", timeout = "300ms", default_status = running)]
fn bucket(ctx: &SensorContext) -> Result<SensorResult, BoxError> {
    match MODE.load(Ordering::SeqCst) {
        1 => return Err("the bucket is unreachable".into()),
        2 => panic!("a listing with no files key"),
        3 => {
            // Hangs until the test lets it go, long past its time-out.
            while !RELEASE.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            RETURNED.store(true, Ordering::SeqCst);
        }
        _ => {}
    }
    let files = FILES.lock().unwrap().clone();
    let seen: usize = ctx.cursor().unwrap_or("0").parse()?;
    if files.len() == seen {
        return Ok(SensorResult::skip(format!("still {seen} file(s)")));
    }
    Ok(SensorResult::new()
        .runs(files.iter().map(|f| SensorRun::keyed(*f).tag("file", *f)))
        .cursor(files.len().to_string()))
}

#[test]
fn a_sensor_keeps_its_cursor_on_success_only_and_launches_each_run_key_once() {
    let automation = automation().unwrap();
    let sensor = automation.sensor("bucket").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let store = instance.storage();
    let cursor = || store.cursor(&sensor_cursor_key("bucket")).unwrap();
    let t0: jiff::Timestamp = "2026-05-01T08:00:00Z".parse().unwrap();
    let at = |secs: i64| t0 + jiff::SignedDuration::from_secs(secs);
    let queued_files = || {
        let mut files: Vec<String> = store
            .runs(&RunFilter::default().tag("orch/sensor", "bucket"))
            .unwrap()
            .iter()
            .map(|r| r.tags["file"].clone())
            .collect();
        files.sort();
        files
    };

    // Two files: two runs, keyed by name, and the cursor moves with them.
    *FILES.lock().unwrap() = vec!["a.csv", "b.csv"];
    let outcome = run_sensor(&instance, automation, sensor, at(0)).unwrap();
    let SensorOutcome::Requested { runs, repeated: 0 } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(runs.len(), 2);
    assert_eq!(cursor().as_deref(), Some("2"));
    let run = store.run(runs[0].as_str()).unwrap();
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.trigger.to_string(), "sensor bucket");
    assert_eq!(run.tags["orch/sensor"], "bucket");

    // A third file: the sensor asks for all three again; only the new one is queued.
    FILES.lock().unwrap().push("c.csv");
    let outcome = run_sensor(&instance, automation, sensor, at(10)).unwrap();
    assert!(
        matches!(&outcome, SensorOutcome::Requested { runs, repeated: 2 } if runs.len() == 1),
        "{outcome:?}"
    );
    assert_eq!(queued_files(), ["a.csv", "b.csv", "c.csv"]);
    assert_eq!(cursor().as_deref(), Some("3"));

    // Nothing new: skipped with its reason, the cursor stays.
    let outcome = run_sensor(&instance, automation, sensor, at(20)).unwrap();
    assert_eq!(outcome, SensorOutcome::Skipped("still 3 file(s)".into()));

    // An error, a panic and a hang: failed evaluations with their causes, the cursor where it
    // was, nothing queued.
    FILES.lock().unwrap().push("d.csv");
    MODE.store(1, Ordering::SeqCst);
    let failed = run_sensor(&instance, automation, sensor, at(30)).unwrap();
    assert_eq!(
        failed,
        SensorOutcome::Failed("it returned an error: the bucket is unreachable".into())
    );
    MODE.store(2, Ordering::SeqCst);
    let panicked = run_sensor(&instance, automation, sensor, at(40)).unwrap();
    assert_eq!(
        panicked,
        SensorOutcome::Failed("it panicked: a listing with no files key".into())
    );
    MODE.store(3, Ordering::SeqCst);
    let hung = run_sensor(&instance, automation, sensor, at(50)).unwrap();
    let SensorOutcome::Failed(why) = &hung else {
        panic!("{hung:?}")
    };
    assert!(
        why.starts_with("it did not return within its time-out of 300ms"),
        "{why}"
    );
    // While it still hangs, the sensor is not called again (no second copy, no thread pile).
    MODE.store(0, Ordering::SeqCst);
    let again = run_sensor(&instance, automation, sensor, at(51)).unwrap();
    assert_eq!(
        again,
        SensorOutcome::Failed(
            "its previous evaluation timed out and has not returned yet; it is not called again until it does"
                .into()
        )
    );
    RELEASE.store(true, Ordering::SeqCst);
    while !RETURNED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // What it returned late was dropped: the cursor is where it was.
    assert_eq!(cursor().as_deref(), Some("3"));
    assert_eq!(queued_files().len(), 3);
    let history = store.ticks("bucket", 10).unwrap();
    let statuses: Vec<TickStatus> = history.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TickStatus::Failure,
            TickStatus::Failure,
            TickStatus::Failure,
            TickStatus::Failure,
            TickStatus::Skipped,
            TickStatus::Success,
            TickStatus::Success
        ]
    );
    assert_eq!(
        history[3].reason.as_deref(),
        Some("it returned an error: the bucket is unreachable")
    );

    // The interval is a minimum: due again one second after its last evaluation.
    let pass = |secs: i64| {
        evaluate_sensors(&instance, automation, at(secs))
            .unwrap()
            .into_iter()
            .find(|e| e.sensor == "bucket")
            .unwrap()
            .evaluated
    };
    assert!(matches!(pass(51), SensorEvaluated::NotDue { .. }));
    let SensorEvaluated::Evaluated(SensorOutcome::Requested { runs, repeated: 3 }) = pass(53)
    else {
        panic!("due after its interval")
    };
    assert_eq!(runs.len(), 1);

    // An evaluation whose process died is recorded as interrupted at the next one.
    store.begin_tick("bucket", at(60).into()).unwrap();
    run_sensor(&instance, automation, sensor, at(70)).unwrap();
    let interrupted = &store.ticks("bucket", 2).unwrap()[1];
    assert_eq!(interrupted.status, TickStatus::Failure);
    assert!(
        interrupted
            .reason
            .as_deref()
            .unwrap()
            .starts_with("interrupted"),
        "{interrupted:?}"
    );

    // The cursor and the run keys survive a restart.
    drop(instance);
    let instance = Instance::open(dir.path()).unwrap();
    assert_eq!(
        instance
            .storage()
            .cursor(&sensor_cursor_key("bucket"))
            .unwrap()
            .as_deref(),
        Some("4")
    );
    FILES.lock().unwrap().push("e.csv");
    let outcome = run_sensor(&instance, automation, sensor, at(80)).unwrap();
    assert!(
        matches!(&outcome, SensorOutcome::Requested { runs, repeated: 4 } if runs.len() == 1),
        "{outcome:?}"
    );
}

#[asset(group = "downstream")]
fn summary() -> u32 {
    2
}

/// Each new materialization of `landed` runs `summary` once.
#[sensor(on_asset = landed, select = "summary", interval = "1s")]
fn landed_updated(
    _ctx: &SensorContext,
    materialization: &AssetMaterialization,
) -> Result<SensorResult, BoxError> {
    Ok(SensorResult::new().run(SensorRun::new().tag("from_run", materialization.run_id.as_str())))
}

#[test]
fn an_asset_sensor_acts_once_on_each_new_materialization() {
    let automation = automation().unwrap();
    let sensor = automation.sensor("landed_updated").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let materialize = || {
        let result = instance
            .materialize(RunRequest::select("landed").unwrap())
            .run()
            .unwrap();
        assert!(result.success());
        result.run_id().clone()
    };
    let t0: jiff::Timestamp = "2026-05-01T08:00:00Z".parse().unwrap();
    let at = |secs: i64| t0 + jiff::SignedDuration::from_secs(secs);

    // Materialized before the sensor first looks: history, not acted on.
    materialize();
    let first = run_sensor(&instance, automation, sensor, at(0)).unwrap();
    let SensorOutcome::Skipped(why) = &first else {
        panic!("{first:?}")
    };
    assert!(why.starts_with("watching `landed` from now on"), "{why}");

    // Two new materializations: two runs of `summary`, each keyed by its materialization.
    let runs = [materialize(), materialize()];
    let outcome = run_sensor(&instance, automation, sensor, at(10)).unwrap();
    let SensorOutcome::Requested {
        runs: queued,
        repeated: 0,
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(queued.len(), 2);
    let store = instance.storage();
    let mut from: Vec<String> = queued
        .iter()
        .map(|id| {
            let run = store.run(id.as_str()).unwrap();
            assert!(run.tags["orch/run_key"].starts_with("landed@"), "{run:?}");
            assert_eq!(run.target, "summary");
            run.tags["from_run"].clone()
        })
        .collect();
    from.sort();
    let mut expected: Vec<String> = runs.iter().map(ToString::to_string).collect();
    expected.sort();
    assert_eq!(from, expected);

    // Nothing new: nothing more.
    let again = run_sensor(&instance, automation, sensor, at(20)).unwrap();
    assert_eq!(
        again,
        SensorOutcome::Skipped("no new materialization of `landed`".into())
    );
    materialize();
    let one = run_sensor(&instance, automation, sensor, at(30)).unwrap();
    assert!(
        matches!(&one, SensorOutcome::Requested { runs, repeated: 0 } if runs.len() == 1),
        "{one:?}"
    );
}

#[asset(group = "fragile")]
fn fragile() -> Result<u32, BoxError> {
    Err("the disk is full".into())
}

/// What the run-failure sensor was told, one line per failed run.
static ALERTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// An alert for each run that fails (no target: it only alerts).
#[sensor(on_run_failure, interval = "1s")]
fn alert_on_failure(_ctx: &SensorContext, run: &RunFailure) -> Result<SensorResult, BoxError> {
    ALERTS
        .lock()
        .unwrap()
        .push(format!("{} {}: {:?}", run.status, run.target, run.failures));
    Ok(SensorResult::new())
}

#[test]
fn a_run_failure_sensor_hears_of_each_failed_run_once() {
    let automation = automation().unwrap();
    let sensor = automation.sensor("alert_on_failure").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let fail = || {
        let result = instance
            .materialize(RunRequest::select("fragile").unwrap())
            .run()
            .unwrap();
        assert!(!result.success());
    };
    let t0: jiff::Timestamp = "2026-05-01T08:00:00Z".parse().unwrap();
    let at = |secs: i64| t0 + jiff::SignedDuration::from_secs(secs);

    // A failure before it first looks is not alerted on.
    fail();
    let first = run_sensor(&instance, automation, sensor, at(0)).unwrap();
    assert!(
        matches!(&first, SensorOutcome::Skipped(why) if why.starts_with("watching for failed runs from now on")),
        "{first:?}"
    );
    fail();
    let told = run_sensor(&instance, automation, sensor, at(10)).unwrap();
    assert!(
        matches!(&told, SensorOutcome::Skipped(why) if why == "no run requested"),
        "{told:?}"
    );
    assert_eq!(
        *ALERTS.lock().unwrap(),
        ["failed fragile: [(\"fragile\", \"the disk is full\")]"]
    );
    // Once: nothing new, nothing more.
    let again = run_sensor(&instance, automation, sensor, at(20)).unwrap();
    assert_eq!(again, SensorOutcome::Skipped("no run failed".into()));
    assert_eq!(ALERTS.lock().unwrap().len(), 1);
}
