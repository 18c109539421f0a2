//! Dynamic fan-out in op jobs: an op returns `Dynamic<T>`, a job maps another op over its
//! elements and collects the results. Each element runs once, elements run at the same time,
//! each is retried on its own, a failing element fails the step naming it while the others
//! still run, and a recorded run stores the mapped output and re-executes from the failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use orch::prelude::*;
use orch::testing::execute_job;
use orch::{AssetStatus, Reexecution};

// --- map and collect, counted -------------------------------------------------------------

static SIZE_CALLS: AtomicUsize = AtomicUsize::new(0);
static KEYS_SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The files to process: known only when the job runs.
#[op]
fn list_files() -> Result<Dynamic<String>, BoxError> {
    let mut files = Dynamic::new();
    for name in ["a", "bb", "ccc"] {
        files.push(format!("{name}_csv"), format!("{name}.csv"))?;
    }
    Ok(files)
}

#[op]
fn file_size(ctx: &OpContext, file: &String) -> u64 {
    SIZE_CALLS.fetch_add(1, Ordering::SeqCst);
    let key = ctx.mapping_key().unwrap_or("none").to_owned();
    KEYS_SEEN.lock().unwrap().push(key);
    ctx.log().info(format!("sized {file}"));
    file.len() as u64
}

#[op]
fn total_size(sizes: &Vec<u64>) -> u64 {
    sizes.iter().sum()
}

#[job]
fn sizes() {
    let files = list_files();
    let sizes = files.map(file_size);
    total_size(sizes.collect());
}

#[test]
fn each_element_is_mapped_once_and_collected_in_order() {
    let before = SIZE_CALLS.load(Ordering::SeqCst);
    let result = execute_job::<sizes>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(SIZE_CALLS.load(Ordering::SeqCst) - before, 3);
    assert_eq!(*result.output::<total_size>(), 5 + 6 + 7);
    // The mapped step's output is the `Dynamic` of the op's outputs, keyed as the files.
    let mapped = result.step_output::<Dynamic<u64>>("file_size").unwrap();
    assert_eq!(
        mapped.iter().collect::<Vec<_>>(),
        [("a_csv", &5), ("bb_csv", &6), ("ccc_csv", &7)]
    );
    let mut keys = KEYS_SEEN.lock().unwrap().clone();
    keys.sort();
    for key in ["a_csv", "bb_csv", "ccc_csv"] {
        assert!(keys.contains(&key.to_owned()), "{keys:?}");
    }
    // Each element's log lines are kept with the step, marked with the element's key.
    let logs = &result.outcome("sizes/file_size").unwrap().logs;
    let messages: Vec<&str> = logs.iter().map(|l| l.message.as_str()).collect();
    assert!(messages.contains(&"[bb_csv] sized bb.csv"), "{messages:?}");
    // The mapped step is one step of the job, between its producer and its collector.
    let job = orch::jobs::op_job("sizes").unwrap();
    assert_eq!(job.graph().len(), 3);
    let mapped = job.step("file_size").unwrap();
    assert_eq!(job.graph().node(mapped).def.output_type(), "Dynamic<u64>");
}

// --- elements run at the same time ----------------------------------------------------------

/// How many elements of `meet` are inside it, and the signal that one came in.
static MET: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

#[op]
fn three() -> Dynamic<u8> {
    [1, 2, 3].into_iter().collect()
}

#[op]
fn meet(n: &u8) -> Result<u8, BoxError> {
    // All three elements must be inside at once for any to go on; one at a time, the first
    // gives up after 30 s and the test fails instead of hanging.
    let (count, arrived) = &MET;
    let mut inside = count.lock().unwrap();
    *inside += 1;
    arrived.notify_all();
    let (inside, timeout) = arrived
        .wait_timeout_while(inside, std::time::Duration::from_secs(30), |n| *n < 3)
        .unwrap();
    drop(inside);
    match timeout.timed_out() {
        true => Err("the other elements never came in: elements ran one at a time".into()),
        false => Ok(n * 10),
    }
}

#[op]
fn sum_u8(values: &Vec<u8>) -> u8 {
    values.iter().sum()
}

#[job]
fn meeting() {
    sum_u8(three().map(meet).collect());
}

#[test]
fn elements_run_at_the_same_time() {
    let result = execute_job::<meeting>().jobs(3).run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<sum_u8>(), 60);
}

static ASYNC_IN: AtomicUsize = AtomicUsize::new(0);
static ASYNC_PEAK: AtomicUsize = AtomicUsize::new(0);

#[op]
fn four() -> Dynamic<u32> {
    (0..4).collect()
}

#[op]
async fn slow_double(n: u32) -> u32 {
    let now = ASYNC_IN.fetch_add(1, Ordering::SeqCst) + 1;
    ASYNC_PEAK.fetch_max(now, Ordering::SeqCst);
    // Wait until the other elements of the window are in (bounded, so a bug fails the test
    // instead of hanging it).
    for _ in 0..2000 {
        if ASYNC_PEAK.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    ASYNC_IN.fetch_sub(1, Ordering::SeqCst);
    n * 2
}

#[op]
fn sum_u32(values: &Vec<u32>) -> u32 {
    values.iter().sum()
}

#[job]
fn doubling() {
    sum_u32(four().map(slow_double).collect());
}

#[test]
fn async_elements_run_together_within_the_runs_jobs() {
    let result = execute_job::<doubling>().jobs(2).run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<sum_u32>(), 12);
    // Two at once (the run's jobs), never more.
    assert_eq!(ASYNC_PEAK.load(Ordering::SeqCst), 2);
}

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

// --- optional elements, chained maps, closures, the Dynamic taken whole -----------------------

#[op]
fn words() -> Result<Dynamic<String>, BoxError> {
    Ok(Dynamic::try_from_keyed(
        ["apple", "kiwi", "banana", "fig"].map(|w| (w, w.to_owned())),
    )?)
}

/// Long words only: a short one is `None`, left out of the result.
#[op]
fn long_only(word: &String) -> Option<String> {
    (word.len() > 4).then(|| word.clone())
}

#[op]
fn shout(word: String, suffix: &String) -> String {
    format!("{}{suffix}", word.to_uppercase())
}

#[op]
fn suffix() -> String {
    "!".to_owned()
}

#[op]
fn keyed(words: &Dynamic<String>) -> String {
    words
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[op]
fn joined(words: &Vec<String>) -> String {
    words.join(" ")
}

#[job]
fn wordplay() {
    let end = suffix();
    let long = words().map(long_only);
    let loud = long.map(|w| shout(w, end)).named("shouted");
    keyed(loud);
    joined(loud.collect());
}

#[test]
fn none_elements_are_left_out_and_maps_chain() {
    let result = execute_job::<wordplay>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(result.output::<joined>(), "APPLE! BANANA!");
    assert_eq!(result.output::<keyed>(), "apple=APPLE!,banana=BANANA!");
    let steps: Vec<&str> = {
        let job = orch::jobs::op_job("wordplay").unwrap();
        (0..job.graph().len()).map(|id| job.step_name(id)).collect()
    };
    assert!(steps.contains(&"shouted"), "{steps:?}");
}

#[op]
fn nothing() -> Dynamic<u32> {
    Dynamic::new()
}

#[job]
fn empty_map() {
    sum_u32(nothing().map(slow_double).collect());
}

#[test]
fn an_empty_dynamic_maps_to_nothing_and_collects_to_an_empty_vec() {
    let result = execute_job::<empty_map>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<sum_u32>(), 0);
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
    picky(words().map(counted_long).collect());
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

// --- tuple outputs: one handle per part ---------------------------------------------------------

#[op]
fn split_rows() -> (Vec<i64>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for raw in ["1", "x", "3", "y", "5"] {
        match raw.parse() {
            Ok(n) => good.push(n),
            Err(_) => bad.push(raw.to_owned()),
        }
    }
    (good, bad)
}

#[op]
fn sum_rows(rows: &Vec<i64>) -> i64 {
    rows.iter().sum()
}

#[op]
fn report(errors: Vec<String>, total: &i64) -> String {
    format!("{total}, rejected {}", errors.join("+"))
}

#[op]
fn whole(parts: &(Vec<i64>, Vec<String>)) -> usize {
    parts.0.len() + parts.1.len()
}

#[job]
fn splitting() {
    let (rows, errors) = split_rows();
    report(errors, sum_rows(rows));
    let (_, again) = split_rows().named("split_again");
    report(again, sum_rows(rows)).named("report_again");
    whole(split_rows());
}

#[test]
fn a_tuple_output_gives_one_handle_per_part() {
    let result = execute_job::<splitting>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(result.output::<report>(), "9, rejected x+y");
    assert_eq!(
        result
            .step_output::<String>("report_again")
            .map(String::as_str),
        Some("9, rejected x+y")
    );
    assert_eq!(*result.output::<whole>(), 5);
    // One step per call; its consumers read the parts of its one output.
    let job = orch::jobs::op_job("splitting").unwrap();
    let report = job.step("report").unwrap();
    let ups: Vec<&str> = job
        .graph()
        .node(report)
        .inputs
        .iter()
        .map(|&u| job.step_name(u))
        .collect();
    assert_eq!(ups, ["split_rows", "sum_rows"]);
}

// --- adapters on adapters: a tuple part that is a `Dynamic`, mapped and collected -----------

#[op]
fn listing() -> Result<(Dynamic<String>, u32), BoxError> {
    let names = Dynamic::try_from_keyed([("x", "ab".to_owned()), ("y", "cde".to_owned())])?;
    Ok((names, 10))
}

#[op]
fn length(name: &String) -> usize {
    name.len()
}

#[op]
fn lengths_plus(lengths: &Vec<usize>, base: &u32) -> usize {
    lengths.iter().sum::<usize>() + *base as usize
}

#[op]
fn all_names(names: &Vec<String>) -> String {
    names.join(",")
}

#[job]
fn parts_and_maps() {
    let (names, base) = listing();
    lengths_plus(names.map(length).collect(), base);
    all_names(names.collect());
}

#[test]
fn a_tuple_part_can_be_mapped_and_collected() {
    let result = execute_job::<parts_and_maps>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<lengths_plus>(), 15);
    assert_eq!(result.output::<all_names>(), "ab,cde");
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

// --- a mapped op's threads stay within the run's jobs, inside its runtime -----------------------

static IN_SYNC: AtomicUsize = AtomicUsize::new(0);
static SYNC_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts the sync functions running at once while it sleeps.
fn busy(ms: u64) {
    let now = IN_SYNC.fetch_add(1, Ordering::SeqCst) + 1;
    SYNC_PEAK.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    IN_SYNC.fetch_sub(1, Ordering::SeqCst);
}

#[op]
fn six() -> Dynamic<u32> {
    (0..6).collect()
}

/// Whether it ran inside the run's tokio runtime, as sync ops on the blocking pool do.
#[op]
fn crunch(_n: &u32) -> bool {
    busy(15);
    tokio::runtime::Handle::try_current().is_ok()
}

#[op]
fn side() -> u8 {
    busy(40);
    1
}

#[op]
fn all_true(values: &Vec<bool>) -> bool {
    values.iter().all(|v| *v)
}

#[job]
fn bounded() {
    all_true(six().map(crunch).collect());
    side();
    side();
}

#[test]
fn a_mapped_op_takes_free_job_slots_and_runs_inside_the_runtime() {
    let result = execute_job::<bounded>().jobs(2).run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    // Every element could use the runtime's handle, helpers included.
    assert!(*result.output::<all_true>());
    // Never more sync work at once than the run's jobs, helpers included.
    let peak = SYNC_PEAK.load(Ordering::SeqCst);
    assert!((1..=2).contains(&peak), "peak {peak}");
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

/// Describes one file (a mapped op, called here as a plain function).
#[op]
fn describe_file(ctx: &OpContext, file: &String) -> String {
    ctx.log().info(format!("described {file}"));
    format!("{}: {file}", ctx.mapping_key().unwrap_or("?"))
}

#[test]
fn a_mapped_op_is_a_plain_function_with_a_test_context() {
    let ctx = OpContext::for_test()
        .op("describe_file")
        .mapping_key("a_csv")
        .build();
    assert_eq!(describe_file(&ctx, &"a.csv".to_owned()), "a_csv: a.csv");
    assert_eq!(ctx.logs()[0].message, "[a_csv] described a.csv");
}

// --- a part that cannot be copied fails its consumer, and the run goes on ------------------------

/// A part whose copy panics.
#[derive(Debug)]
struct Fragile;

impl Clone for Fragile {
    fn clone(&self) -> Self {
        panic!("cannot copy this")
    }
}

#[op(io_manager = "memory")]
fn fragile_pair() -> (Fragile, u8) {
    (Fragile, 1)
}

#[op(io_manager = "memory")]
fn use_fragile(_part: &Fragile) -> u8 {
    1
}

#[op]
fn use_number(n: &u8) -> u8 {
    n + 1
}

#[job]
fn fragile() {
    let (part, n) = fragile_pair();
    use_fragile(part);
    use_number(n);
}

#[test]
fn a_part_whose_copy_panics_fails_its_consumer_and_the_run_ends() {
    let result = execute_job::<fragile>().run().unwrap();
    assert!(!result.success());
    let AssetStatus::Failed(error) = &result.outcome("fragile/use_fragile").unwrap().status else {
        panic!("{:?}", result.outcomes())
    };
    let text = error.to_string();
    assert!(
        text.contains("could not pass input `fragile/fragile_pair` on"),
        "{text}"
    );
    assert!(text.contains("cannot copy this"), "{text}");
    assert_eq!(*result.output::<use_number>(), 2);
}

#[test]
fn building_a_job_again_reuses_its_mapped_definitions() {
    use orch::ops::OpJob;
    let def = <sizes as OpJob>::DEF;
    let (first, second) = (def.nodes(), def.nodes());
    let mapped = |nodes: &[orch::ops::JobNode]| {
        nodes
            .iter()
            .find(|n| n.name == "file_size")
            .map(|n| n.op as *const orch::ops::OpDef)
            .unwrap()
    };
    assert_eq!(mapped(&first), mapped(&second));
}
