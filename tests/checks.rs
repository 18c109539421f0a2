//! Asset checks: run after their asset in every run that materializes it; a blocking check
//! that fails with error severity skips the downstream (the asset itself stays materialized);
//! a warning or a non-blocking failure never does; an error or a panic in a check is a failed
//! result, not a crashed run; results are recorded, and `Instance::check` runs them alone on
//! the stored value.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use orch::checks::CHECKS_TAG;
use orch::prelude::*;
use orch::storage::{EventKind, RunFilter};

static NEGATIVE: AtomicBool = AtomicBool::new(false);
static MANY: AtomicBool = AtomicBool::new(false);
static RAW_ERRORS: AtomicBool = AtomicBool::new(false);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    for flag in [&NEGATIVE, &MANY, &RAW_ERRORS] {
        flag.store(false, Ordering::SeqCst);
    }
    guard
}

#[asset]
fn raw_amounts() -> Vec<i64> {
    let mut amounts = vec![120, 80];
    if NEGATIVE.load(Ordering::SeqCst) {
        amounts.push(-5);
    }
    if MANY.load(Ordering::SeqCst) {
        amounts.extend([1, 2, 3]);
    }
    amounts
}

#[asset]
fn cleaned(raw_amounts: &Vec<i64>) -> Vec<i64> {
    raw_amounts.clone()
}

#[asset]
fn report(cleaned: &Vec<i64>) -> i64 {
    cleaned.iter().sum()
}

/// Every amount is positive: bad data must not reach the report.
#[asset_check(asset = cleaned, blocking = true)]
fn amounts_positive(cleaned: &Vec<i64>) -> CheckResult {
    let bad = cleaned.iter().filter(|&&a| a <= 0).count();
    CheckResult::new(bad == 0)
        .metadata("non_positive", bad as i64)
        .description(format!("{bad} non-positive amount(s)"))
}

#[asset_check(asset = cleaned, blocking = true, severity = warn)]
fn not_too_many(cleaned: &Vec<i64>) -> CheckResult {
    match cleaned.len() {
        0..=3 => CheckResult::passed(),
        n => CheckResult::failed(format!("{n} rows, more than 3")),
    }
}

#[asset_check(asset = raw_amounts)]
fn raw_readable(raw_amounts: &Vec<i64>) -> Result<CheckResult, BoxError> {
    if RAW_ERRORS.load(Ordering::SeqCst) {
        return Err("the audit table is unreachable".into());
    }
    Ok(CheckResult::new(!raw_amounts.is_empty()))
}

#[asset_check(asset = report)]
fn report_sane(report: &i64) -> CheckResult {
    assert!(*report < 1_000_000, "an absurd total");
    CheckResult::passed()
}

fn check<'r>(
    result: &'r orch::RunResult,
    asset: &str,
    name: &str,
) -> &'r orch::checks::CheckOutcome {
    result
        .outcome(asset)
        .unwrap()
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` on `{asset}`"))
}

#[test]
fn checks_run_after_their_asset_and_a_failed_blocking_check_skips_the_downstream() {
    let _one = one_at_a_time();
    let result = Materialize::select("*").run().unwrap();
    assert!(result.success());
    let positive = check(&result, "cleaned", "amounts_positive");
    assert!(positive.passed && !positive.blocks());
    assert_eq!(
        positive.description.as_deref(),
        Some("0 non-positive amount(s)")
    );
    assert_eq!(
        positive.metadata,
        [("non_positive".to_owned(), MetadataValue::Int(0))]
    );
    assert!(check(&result, "cleaned", "not_too_many").passed);
    assert!(check(&result, "report", "report_sane").passed);

    NEGATIVE.store(true, Ordering::SeqCst);
    let result = Materialize::select("*").run().unwrap();
    assert!(!result.success());
    let positive = check(&result, "cleaned", "amounts_positive");
    assert!(!positive.passed && positive.blocks());
    assert_eq!(
        positive.description.as_deref(),
        Some("1 non-positive amount(s)")
    );
    // The asset itself is materialized; its downstream is skipped because of it.
    assert_eq!(result.outcome("cleaned").unwrap().status.label(), "ok");
    assert!(matches!(
        &result.outcome("report").unwrap().status,
        orch::AssetStatus::Skipped { because_of, check: Some("amounts_positive") }
            if because_of == "cleaned"
    ));
    // The caller who keeps outputs still gets the blocked value (the asset succeeded).
    let kept = Materialize::select("raw_amounts | cleaned")
        .keep_outputs(true)
        .run()
        .unwrap();
    assert_eq!(kept.output::<cleaned>(), &vec![120, 80, -5]);
    assert!(
        !kept.success(),
        "a blocking check that fails fails the run, downstream or not"
    );
}

#[test]
fn a_warning_or_a_failed_non_blocking_check_never_blocks() {
    let _one = one_at_a_time();
    MANY.store(true, Ordering::SeqCst);
    RAW_ERRORS.store(true, Ordering::SeqCst);
    let result = Materialize::select("*").run().unwrap();
    // A blocking check with warn severity failed: a warning.
    let many = check(&result, "cleaned", "not_too_many");
    assert_eq!(many.label(), "warned");
    assert!(!many.blocks());
    // A check that errored: failed with the error as its description, not a crashed run.
    let raw = check(&result, "raw_amounts", "raw_readable");
    assert!(!raw.passed && raw.errored && !raw.blocks());
    assert_eq!(
        raw.description.as_deref(),
        Some("the check returned an error: the audit table is unreachable")
    );
    assert!(result.success(), "everything materialized");
    assert_eq!(result.outcome("report").unwrap().status.label(), "ok");
}

#[test]
fn results_are_recorded_and_checks_run_alone_on_the_stored_value() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let result = instance.materialize(RunRequest::all()).run().unwrap();
    assert!(result.success());
    let store = instance.storage();
    let latest = store.check_results(Some("cleaned"), true, 0).unwrap();
    let names: Vec<&str> = latest
        .iter()
        .map(|e| e.check.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(names, ["amounts_positive", "not_too_many"]);
    let positive = &latest[0];
    assert_eq!(positive.kind, EventKind::CheckEvaluated);
    assert_eq!(positive.run_id, *result.run_id());
    assert!(positive.check.as_ref().unwrap().passed);
    assert!(positive.check.as_ref().unwrap().blocking);
    assert_eq!(
        positive.message.as_deref(),
        Some("0 non-positive amount(s)")
    );
    assert_eq!(
        positive.metadata,
        [("non_positive".to_owned(), MetadataValue::Int(0))]
    );

    // Alone, on what is stored: a recorded run that materializes nothing.
    let alone = instance.check("cleaned", None).unwrap();
    assert!(alone.success());
    assert_eq!(alone.outcomes.len(), 2);
    let run = store.run(alone.run_id.as_str()).unwrap();
    assert_eq!(run.tags.get(CHECKS_TAG).map(String::as_str), Some("true"));
    assert_eq!(run.status, orch::storage::RunStatus::Succeeded);
    let history = store.check_results(Some("cleaned"), false, 0).unwrap();
    assert_eq!(history.len(), 4, "two runs, two checks each");
    assert_eq!(history[0].run_id, alone.run_id, "newest first");
    assert_eq!(
        store.materializations("cleaned", 10).unwrap().len(),
        1,
        "checking materializes nothing"
    );
    let checked_runs = store
        .runs(&RunFilter::default().tag(CHECKS_TAG, "true"))
        .unwrap();
    assert_eq!(checked_runs.len(), 1);

    // Bad data stored by another run: the check alone fails, and the run says so.
    NEGATIVE.store(true, Ordering::SeqCst);
    let bad = instance.materialize(RunRequest::all()).run().unwrap();
    assert!(!bad.success());
    let skipped = store
        .events(bad.run_id().as_str())
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Skipped)
        .unwrap();
    assert_eq!(
        skipped.message.as_deref(),
        Some("check `amounts_positive` of `cleaned` failed")
    );
    let alone = instance.check("cleaned", None).unwrap();
    assert!(!alone.success());
    assert_eq!(
        store.run(alone.run_id.as_str()).unwrap().status,
        orch::storage::RunStatus::Failed
    );

    // What cannot be checked says why.
    let err = |asset: &str| instance.check(asset, None).unwrap_err().to_string();
    assert_eq!(err("nope"), "`nope` is not an asset");
    assert!(err("cleaned/x").contains("is not an asset"));
    let fresh = Instance::open(tempfile::tempdir().unwrap().path()).unwrap();
    assert!(
        fresh
            .check("cleaned", None)
            .unwrap_err()
            .to_string()
            .contains("has never been materialized"),
    );
}

#[test]
fn a_check_that_panics_is_a_failed_result_and_the_run_goes_on() {
    let _one = one_at_a_time();
    // `report_sane` panics on an absurd total; it is not blocking, and nothing is after it.
    let result = Materialize::select("*")
        .inject::<cleaned>(vec![2_000_000])
        .run()
        .unwrap();
    let sane = check(&result, "report", "report_sane");
    assert!(!sane.passed && sane.errored);
    assert!(
        sane.description
            .as_deref()
            .unwrap()
            .contains("panicked: an absurd total"),
        "{:?}",
        sane.description
    );
    assert!(result.success());
}
