//! A mapped op's failures and re-execution: a failing element fails the step naming it while
//! the others run; the failed run keeps the outputs of the elements that succeeded (as files,
//! apart even where case does not count), and a re-execution from the failure runs only the
//! failed elements, reusing the others only from runs that read the same `Dynamic`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use orch::prelude::*;
use orch::testing::execute_job;
use orch::{AssetStatus, Reexecution};

// --- failures: per element, retried on their own ---------------------------------------------

static ROW_CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static BROKEN: Mutex<bool> = Mutex::new(true);
/// Held by each test of `loading` (they share the counters above).
static LOADING: Mutex<()> = Mutex::new(());

#[op]
fn batches() -> Result<Dynamic<u32>, BoxError> {
    Ok(Dynamic::try_from_keyed([
        ("ok", 1),
        ("flaky", 2),
        ("broken", 3),
        ("fine", 4),
    ])?)
}

#[op(retries = 1, retry_delay = "1ms")]
fn load_batch(ctx: &OpContext, n: &u32) -> Result<u32, BoxError> {
    let key = ctx.mapping_key().unwrap().to_owned();
    ROW_CALLS
        .lock()
        .unwrap()
        .push(format!("{key}#{}", ctx.attempt()));
    match key.as_str() {
        "flaky" if ctx.attempt() == 1 => Err("connection reset".into()),
        "broken" if *BROKEN.lock().unwrap() => Err("bad batch".into()),
        _ => Ok(n * 100),
    }
}

static LOADED_SUM: Mutex<Option<u32>> = Mutex::new(None);

#[op]
fn loaded(values: &Vec<u32>) -> u32 {
    let sum = values.iter().sum();
    *LOADED_SUM.lock().unwrap() = Some(sum);
    sum
}

#[op]
fn unrelated() -> u8 {
    7
}

#[job]
fn loading() {
    let all = batches();
    loaded(all.map(load_batch).collect());
    unrelated();
}

#[test]
fn a_failing_element_fails_the_step_naming_it_and_reexecution_reruns_the_step() {
    let _serial = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    let instance = orch::testing::ephemeral_instance();
    ROW_CALLS.lock().unwrap().clear();
    *BROKEN.lock().unwrap() = true;
    let failed = execute_job::<loading>().instance(&instance).run().unwrap();
    assert!(!failed.success());
    let status = |result: &orch::testing::JobResult, step: &str| {
        result
            .outcome(&format!("loading/{step}"))
            .map(|o| o.status.label())
            .unwrap()
    };
    assert_eq!(status(&failed, "load_batch"), "FAILED");
    assert_eq!(status(&failed, "loaded"), "skipped");
    assert_eq!(status(&failed, "unrelated"), "ok");
    let AssetStatus::Failed(error) = &failed.outcome("loading/load_batch").unwrap().status else {
        unreachable!()
    };
    assert_eq!(
        error.to_string(),
        "1 of 4 elements of `load_batch` failed: load_batch[broken] bad batch"
    );
    // Every element ran: `flaky` twice (its retry succeeded), `broken` twice (both failed).
    let mut calls = ROW_CALLS.lock().unwrap().clone();
    calls.sort();
    assert_eq!(
        calls,
        [
            "broken#1", "broken#2", "fine#1", "flaky#1", "flaky#2", "ok#1"
        ]
    );
    // The retry is logged with its element.
    let logs = &failed.outcome("loading/load_batch").unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.message == "[flaky] attempt 1 of 2 failed, retrying: connection reset"),
        "{logs:?}"
    );

    // Fixed: re-execute from the failure. `batches` is loaded from the first run's store.
    *BROKEN.lock().unwrap() = false;
    ROW_CALLS.lock().unwrap().clear();
    let request = Reexecution::of(&**instance.storage(), failed.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("something failed");
    assert_eq!(
        request.target().to_string(),
        "job:loading[load_batch,loaded]"
    );
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{:?}", again.outcomes());
    assert_eq!(
        again.outcome("loading/batches").unwrap().status,
        AssetStatus::Loaded
    );
    // Only the failed element ran again: the others' outputs were kept by the failed run.
    assert_eq!(*ROW_CALLS.lock().unwrap(), ["broken#1"]);
    assert_eq!(*LOADED_SUM.lock().unwrap(), Some(1000));
    let logs = &again.outcome("loading/load_batch").unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.message
                == "reused the outputs of 3 of 4 elements from the run this re-executes"),
        "{logs:?}"
    );
}

#[test]
fn a_reexecution_that_recomputes_the_elements_reuses_nothing() {
    let _serial = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    let instance = orch::testing::ephemeral_instance();
    *BROKEN.lock().unwrap() = true;
    let failed = execute_job::<loading>().instance(&instance).run().unwrap();
    assert!(!failed.success());
    // A re-execution of every step computes `batches` again: its elements may differ, so
    // none of the kept outputs is reused.
    *BROKEN.lock().unwrap() = false;
    ROW_CALLS.lock().unwrap().clear();
    let request = Reexecution::of(&**instance.storage(), failed.run_id().as_str())
        .unwrap()
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("every step");
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{:?}", again.outcomes());
    let mut calls = ROW_CALLS.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, ["broken#1", "fine#1", "flaky#1", "flaky#2", "ok#1"]);
}

// --- a stored mapped output, read back -------------------------------------------------------

#[op]
fn fruits() -> Result<Dynamic<String>, BoxError> {
    Ok(Dynamic::try_from_keyed(
        ["apple", "kiwi", "banana", "fig"].map(|w| (w, w.to_owned())),
    )?)
}

static PICKY_FAILS: Mutex<bool> = Mutex::new(true);
static PICKY_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LONG_CALLS: AtomicUsize = AtomicUsize::new(0);

#[op]
fn counted_long(word: &String) -> Option<String> {
    LONG_CALLS.fetch_add(1, Ordering::SeqCst);
    (word.len() > 4).then(|| word.to_uppercase())
}

#[op]
fn picky(words: &Vec<String>) -> Result<usize, BoxError> {
    *PICKY_SAW.lock().unwrap() = words.clone();
    match *PICKY_FAILS.lock().unwrap() {
        true => Err("not today".into()),
        false => Ok(words.len()),
    }
}

#[job]
fn stored_map() {
    picky(fruits().map(counted_long).collect());
}

#[test]
fn a_recorded_run_stores_the_mapped_output_and_reexecution_reads_it_back() {
    let instance = orch::testing::ephemeral_instance();
    *PICKY_FAILS.lock().unwrap() = true;
    let before = LONG_CALLS.load(Ordering::SeqCst);
    let failed = execute_job::<stored_map>()
        .instance(&instance)
        .run()
        .unwrap();
    assert!(!failed.success());
    assert_eq!(LONG_CALLS.load(Ordering::SeqCst) - before, 4);
    // Re-execute from the failure: the mapped step's `Dynamic` is read back from the store
    // (each element through the op's codec), not recomputed.
    *PICKY_FAILS.lock().unwrap() = false;
    PICKY_SAW.lock().unwrap().clear();
    let request = Reexecution::of(&**instance.storage(), failed.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("a step failed");
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{:?}", again.outcomes());
    assert_eq!(
        again.outcome("stored_map/counted_long").unwrap().status,
        AssetStatus::Loaded
    );
    assert_eq!(LONG_CALLS.load(Ordering::SeqCst) - before, 4);
    assert_eq!(*PICKY_SAW.lock().unwrap(), ["APPLE", "BANANA"]);
}

// --- reuse only from runs that read the same `Dynamic` ---------------------------------------

static GENERATION: Mutex<u32> = Mutex::new(0);
static FAILING: Mutex<Vec<&str>> = Mutex::new(Vec::new());
static SUMMED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[op]
fn generation() -> Result<Dynamic<u32>, BoxError> {
    let g = *GENERATION.lock().unwrap();
    Ok(Dynamic::try_from_keyed([("a", g), ("b", g)])?)
}

#[op]
fn times_ten(ctx: &OpContext, n: &u32) -> Result<u32, BoxError> {
    let key = ctx.mapping_key().unwrap_or_default();
    if FAILING.lock().unwrap().contains(&key) {
        return Err(format!("{key} is down").into());
    }
    Ok(n * 10)
}

#[op]
fn summed_up(values: &Vec<u32>) -> u32 {
    *SUMMED.lock().unwrap() = values.clone();
    values.iter().sum()
}

#[job]
fn generations() {
    summed_up(generation().map(times_ten).collect());
}

#[test]
fn kept_elements_are_reused_only_from_runs_that_read_the_same_dynamic() {
    let instance = orch::testing::ephemeral_instance();
    let storage = || &**instance.storage();
    // R0: generation 1; `b` fails, `a` is kept (10).
    *GENERATION.lock().unwrap() = 1;
    *FAILING.lock().unwrap() = vec!["b"];
    let r0 = execute_job::<generations>()
        .instance(&instance)
        .run()
        .unwrap();
    assert!(!r0.success());
    // R1 re-executes everything: generation 2 is computed; now `a` fails, `b` is kept (20).
    *GENERATION.lock().unwrap() = 2;
    *FAILING.lock().unwrap() = vec!["a"];
    let all = Reexecution::of(storage(), r0.run_id().as_str())
        .unwrap()
        .request(orch::definitions().unwrap())
        .unwrap()
        .unwrap();
    let r1 = instance.materialize(all).run().unwrap();
    assert!(!r1.success());
    // R2 re-executes R1 from its failure: it reads R1's generation 2, so `b` is reused from
    // R1, and `a` runs again (R0 kept an `a` computed from generation 1: not reused).
    *GENERATION.lock().unwrap() = 3;
    FAILING.lock().unwrap().clear();
    let from_failure = Reexecution::of(storage(), r1.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap()
        .unwrap();
    let r2 = instance.materialize(from_failure).run().unwrap();
    assert!(r2.success(), "{:?}", r2.outcomes());
    assert_eq!(*SUMMED.lock().unwrap(), [20, 20]);
    let logs = &r2.outcome("generations/times_ten").unwrap().logs;
    assert!(
        logs.iter()
            .any(|l| l.message
                == "reused the outputs of 1 of 2 elements from the run this re-executes"),
        "{logs:?}"
    );
}

// --- kept elements as files -------------------------------------------------------------------

static FILE_FAILS: Mutex<bool> = Mutex::new(true);
static FILE_CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[op]
fn cased() -> Result<Dynamic<u32>, BoxError> {
    // `A` and `a` are two elements, and must stay two files where case does not count.
    Ok(Dynamic::try_from_keyed([("A", 1), ("a", 2), ("b", 3)])?)
}

#[op]
fn hundredfold(ctx: &OpContext, n: &u32) -> Result<u32, BoxError> {
    let key = ctx.mapping_key().unwrap_or_default().to_owned();
    FILE_CALLS.lock().unwrap().push(key.clone());
    match key == "b" && *FILE_FAILS.lock().unwrap() {
        true => Err("b is down".into()),
        false => Ok(n * 100),
    }
}

static LISTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

#[op]
fn listed(values: &Vec<u32>) -> usize {
    *LISTED.lock().unwrap() = values.clone();
    values.len()
}

#[job]
fn on_disk() {
    listed(cased().map(hundredfold).collect());
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match path.is_dir() {
            true => out.extend(files_under(&path)),
            false => out.push(path),
        }
    }
    out
}

#[test]
fn kept_elements_are_files_of_the_failed_run_and_a_reexecution_reads_them() {
    let home = tempfile::tempdir().unwrap();
    let instance = orch::Instance::open(home.path()).unwrap();
    *FILE_FAILS.lock().unwrap() = true;
    let failed = execute_job::<on_disk>().instance(&instance).run().unwrap();
    assert!(!failed.success());
    let run = failed.run_id().as_str().to_owned();
    let kept: Vec<_> = files_under(home.path())
        .into_iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            p.contains(&run) && p.contains("on_disk/hundredfold/elements/")
        })
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");

    *FILE_FAILS.lock().unwrap() = false;
    FILE_CALLS.lock().unwrap().clear();
    let request = Reexecution::of(&**instance.storage(), &run)
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap()
        .unwrap();
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{:?}", again.outcomes());
    assert_eq!(*FILE_CALLS.lock().unwrap(), ["b"]);
    // `A` and `a` came back as themselves, in order.
    assert_eq!(*LISTED.lock().unwrap(), [100, 200, 300]);
}
