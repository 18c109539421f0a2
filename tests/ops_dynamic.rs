//! Dynamic fan-out in op jobs: an op returns `Dynamic<T>`, a job maps another op over its
//! elements and collects the results. Each element runs once, elements run at the same time
//! within the run's jobs and inside its runtime, each is retried on its own, `None` elements
//! are left out, maps chain, and a mapped op is a plain function in a unit test.
//! Failures and re-execution: `ops_dynamic_reexecution.rs`; tuple outputs: `ops_tuples.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use orch::prelude::*;
use orch::testing::execute_job;

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
