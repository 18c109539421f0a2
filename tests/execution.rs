//! The executor: parallelism, each asset once with shared outputs, failure isolation,
//! retries, panics and injection (logs, metadata and events: `tests/capture.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orch::prelude::*;
use orch::{AssetStatus, PlanError, RunEvent};

// ---- parallelism ---------------------------------------------------------------------------

#[asset(group = "parallel")]
fn slow_left() -> u32 {
    std::thread::sleep(Duration::from_secs(1));
    1
}

#[asset(group = "parallel")]
fn slow_right() -> u32 {
    std::thread::sleep(Duration::from_secs(1));
    2
}

#[asset(group = "parallel_async")]
async fn async_left() -> u32 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    1
}

#[asset(group = "parallel_async")]
async fn async_right() -> u32 {
    tokio::time::sleep(Duration::from_secs(1)).await;
    2
}

#[test]
fn independent_sync_assets_run_in_parallel() {
    let t0 = Instant::now();
    let result = Materialize::select("group:parallel").jobs(2).run().unwrap();
    let elapsed = t0.elapsed();
    assert!(result.success(), "{result:?}");
    assert_eq!(
        *result.output::<slow_left>() + *result.output::<slow_right>(),
        3
    );
    assert!(elapsed < Duration::from_millis(1600), "took {elapsed:?}");
}

#[test]
fn independent_async_assets_run_concurrently() {
    let t0 = Instant::now();
    let result = Materialize::select("group:parallel_async")
        .jobs(1)
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    // `jobs` bounds sync assets only: async ones wait on timers, not on cores.
    assert!(
        t0.elapsed() < Duration::from_millis(1600),
        "took {:?}",
        t0.elapsed()
    );
}

// ---- --jobs bounds sync concurrency --------------------------------------------------------

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MAX_RUNNING: AtomicUsize = AtomicUsize::new(0);

fn track_concurrency() -> u32 {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_RUNNING.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(60));
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    0
}

#[asset(group = "bounded")]
fn bounded_1() -> u32 {
    track_concurrency()
}
#[asset(group = "bounded")]
fn bounded_2() -> u32 {
    track_concurrency()
}
#[asset(group = "bounded")]
fn bounded_3() -> u32 {
    track_concurrency()
}
#[asset(group = "bounded")]
fn bounded_4() -> u32 {
    track_concurrency()
}

#[test]
fn jobs_bounds_how_many_sync_assets_run_at_once() {
    MAX_RUNNING.store(0, Ordering::SeqCst);
    let result = Materialize::select("group:bounded").jobs(1).run().unwrap();
    assert!(result.success());
    assert_eq!(MAX_RUNNING.load(Ordering::SeqCst), 1);

    MAX_RUNNING.store(0, Ordering::SeqCst);
    let result = Materialize::select("group:bounded").jobs(4).run().unwrap();
    assert!(result.success());
    assert!(MAX_RUNNING.load(Ordering::SeqCst) >= 2);
}

// ---- fan-out: computed once, shared without copying ----------------------------------------

static FAN_SOURCE_CALLS: AtomicUsize = AtomicUsize::new(0);
static SEEN_ADDRESSES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

#[asset(group = "fan")]
fn fan_source() -> Vec<u64> {
    FAN_SOURCE_CALLS.fetch_add(1, Ordering::SeqCst);
    (0..1000).collect()
}

fn record(data: &[u64]) -> u64 {
    SEEN_ADDRESSES.lock().unwrap().push(data.as_ptr() as usize);
    data.iter().sum()
}

#[asset(group = "fan")]
fn fan_sum(fan_source: &Vec<u64>) -> u64 {
    record(fan_source)
}
#[asset(group = "fan")]
fn fan_sum_again(fan_source: &Vec<u64>) -> u64 {
    record(fan_source)
}
#[asset(group = "fan")]
async fn fan_async(fan_source: &Vec<u64>) -> u64 {
    record(fan_source)
}
#[asset(group = "fan")]
fn fan_owned(fan_source: Vec<u64>) -> usize {
    fan_source.len()
}
#[asset(group = "fan")]
fn fan_total(fan_sum: &u64, fan_sum_again: &u64, fan_async: u64, fan_owned: &usize) -> u64 {
    fan_sum + fan_sum_again + fan_async + *fan_owned as u64
}

#[test]
fn fan_out_computes_once_and_shares_one_value() {
    let result = Materialize::select("fan_source+").run().unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(FAN_SOURCE_CALLS.load(Ordering::SeqCst), 1);
    let addresses = SEEN_ADDRESSES.lock().unwrap().clone();
    assert_eq!(addresses.len(), 3);
    assert!(
        addresses.iter().all(|a| *a == addresses[0]),
        "{addresses:?}"
    );
    assert_eq!(
        result.output::<fan_source>().as_ptr() as usize,
        addresses[0]
    );
    assert_eq!(*result.output::<fan_total>(), 3 * 499_500 + 1000);
    assert_eq!(result.outcomes().len(), 6);
    assert!(result.outcomes().iter().all(|o| o.attempts == 1));
}

// ---- failure isolation ---------------------------------------------------------------------

#[derive(Debug)]
struct Outage;
impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the warehouse is down")
    }
}
impl std::error::Error for Outage {}

#[asset(group = "isolation")]
fn broken_source() -> Result<u32, Outage> {
    Err(Outage)
}
#[asset(group = "isolation")]
fn broken_child(broken_source: &u32) -> u32 {
    *broken_source
}
#[asset(group = "isolation")]
fn broken_grandchild(broken_child: &u32, healthy: &u32) -> u32 {
    broken_child + healthy
}
#[asset(group = "isolation")]
fn healthy() -> u32 {
    7
}
#[asset(group = "isolation")]
fn healthy_child(healthy: &u32) -> u32 {
    healthy * 2
}
#[asset(group = "isolation")]
fn panicking() -> u32 {
    panic!("index out of range in the parser")
}

#[test]
fn a_failure_skips_its_downstream_and_spares_independent_branches() {
    let result = Materialize::select("group:isolation").run().unwrap();
    assert!(!result.success());
    let status = |key: &str| result.outcome(key).unwrap().status.clone();
    match status("broken_source") {
        AssetStatus::Failed(f) => {
            assert_eq!(f.message(), "the warehouse is down");
            assert!(!f.panicked);
        }
        other => panic!("{other:?}"),
    }
    for key in ["broken_child", "broken_grandchild"] {
        assert_eq!(
            status(key),
            AssetStatus::Skipped {
                because_of: "broken_source".parse().unwrap(),
                check: None,
            }
        );
    }
    assert_eq!(status("healthy"), AssetStatus::Succeeded);
    assert_eq!(*result.output::<healthy_child>(), 14);
    match status("panicking") {
        AssetStatus::Failed(f) => {
            assert!(f.panicked);
            assert_eq!(f.message(), "index out of range in the parser");
            assert_eq!(f.to_string(), "panicked: index out of range in the parser");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(result.failed().count(), 2);
    assert!(result.try_output::<broken_child>().is_none());
}

// ---- retries -------------------------------------------------------------------------------

static FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);
static HOPELESS_CALLS: AtomicUsize = AtomicUsize::new(0);

#[asset(group = "retries", retries = 3)]
fn flaky(ctx: &AssetContext) -> Result<u32, std::io::Error> {
    FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    if ctx.attempt() < 3 {
        ctx.log()
            .warn(format_args!("attempt {} times out", ctx.attempt()));
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
    }
    Ok(ctx.attempt())
}

#[asset(group = "retries", retries = 1)]
fn hopeless() -> u32 {
    HOPELESS_CALLS.fetch_add(1, Ordering::SeqCst);
    panic!("always broken")
}

static PATIENT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[asset(group = "backoff", retries = 2, retry_delay = "40ms")]
fn patient() -> Result<u32, std::io::Error> {
    if PATIENT_CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(std::io::Error::other("not yet"));
    }
    Ok(1)
}

#[test]
fn retries_wait_with_exponential_backoff() {
    let t0 = Instant::now();
    let result = Materialize::select("patient").run().unwrap();
    assert_eq!(result.outcome("patient").unwrap().attempts, 3);
    // 40 ms after the first failure, 80 ms after the second.
    assert!(
        t0.elapsed() >= Duration::from_millis(120),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn failures_are_retried_per_asset() {
    let mut events = Vec::new();
    let mut sink = |e: &RunEvent<'_>| {
        if let RunEvent::AssetRetrying { key, attempt, .. } = e {
            events.push(format!("{key}#{attempt}"));
        }
    };
    let result = Materialize::select("group:retries")
        .events(&mut sink)
        .run()
        .unwrap();
    assert_eq!(*result.output::<flaky>(), 3);
    assert_eq!(FLAKY_CALLS.load(Ordering::SeqCst), 3);
    let flaky = result.outcome("flaky").unwrap();
    assert_eq!(flaky.attempts, 3);
    assert_eq!(flaky.logs.len(), 2, "logs of every attempt are kept");
    let hopeless = result.outcome("hopeless").unwrap();
    assert_eq!(hopeless.attempts, 2);
    assert!(matches!(hopeless.status, AssetStatus::Failed(_)));
    assert_eq!(HOPELESS_CALLS.load(Ordering::SeqCst), 2);
    events.sort();
    assert_eq!(events, ["flaky#1", "flaky#2", "hopeless#1"]);
}

// ---- injection: "pretend the upstream produced this" ---------------------------------------

#[asset(group = "inject")]
fn expensive_source() -> Vec<u32> {
    panic!("must not run when injected")
}

#[asset(group = "inject")]
fn doubled(expensive_source: &Vec<u32>) -> Vec<u32> {
    expensive_source.iter().map(|v| v * 2).collect()
}

#[test]
fn injected_values_replace_upstream_computation() {
    let result = Materialize::select("doubled")
        .inject::<expensive_source>(vec![1, 2, 3])
        .run()
        .unwrap();
    assert!(result.success(), "{result:?}");
    assert_eq!(result.output::<doubled>(), &vec![2, 4, 6]);
    assert_eq!(result.output::<expensive_source>(), &vec![1, 2, 3]);
    assert_eq!(
        result.outcome("expensive_source").unwrap().status,
        AssetStatus::Injected
    );
    // Injecting wins even when the upstream is selected too.
    let result = Materialize::select("+doubled")
        .inject::<expensive_source>(vec![5])
        .run()
        .unwrap();
    assert_eq!(result.output::<doubled>(), &vec![10]);
}

#[test]
fn an_unselected_upstream_without_a_value_is_a_plan_error() {
    let err = Materialize::select("doubled").run().unwrap_err();
    assert!(matches!(
        err,
        orch::MaterializeError::Plan(PlanError::MissingUpstream { .. })
    ));
    assert_eq!(
        err.to_string(),
        "asset `doubled` needs the output of `expensive_source`, which is not part of this run: select `+doubled` to include its upstream assets"
    );
}

#[test]
fn bad_selections_are_errors_with_suggestions() {
    let err = Materialize::select("+doubld").run().unwrap_err();
    assert!(err.to_string().contains("did you mean `doubled`?"), "{err}");
    let err = Materialize::select("group:injct").run().unwrap_err();
    assert!(err.to_string().contains("`inject`"), "{err}");
    let err = Materialize::select("doubled and (").run().unwrap_err();
    assert!(matches!(err, orch::MaterializeError::Selection(_)), "{err}");
}

#[test]
fn asset_functions_stay_callable() {
    assert_eq!(doubled(&vec![4]), vec![8]);
    assert_eq!(
        broken_source().unwrap_err().to_string(),
        "the warehouse is down"
    );
}

// ---- anyhow errors keep their context chain ------------------------------------------------

#[asset(group = "anyhow")]
fn row_count() -> anyhow::Result<u32> {
    use anyhow::Context;
    let n: u32 = "12x".parse().context("parsing the row count")?;
    Ok(n)
}

#[test]
fn anyhow_errors_are_reported_with_their_causes() {
    let result = Materialize::select("row_count").run().unwrap();
    match &result.outcome("row_count").unwrap().status {
        AssetStatus::Failed(f) => assert_eq!(
            f.chain,
            ["parsing the row count", "invalid digit found in string"]
        ),
        other => panic!("{other:?}"),
    }
}

// ---- a panic outside the asset function fails the asset, it does not hang the run ----------

#[derive(Debug)]
struct UnprintableError;
impl std::fmt::Display for UnprintableError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("this error cannot be displayed")
    }
}
impl std::error::Error for UnprintableError {}

#[asset(group = "unprintable")]
fn unprintable() -> Result<u32, UnprintableError> {
    Err(UnprintableError)
}

#[asset(group = "unprintable")]
fn after_unprintable(unprintable: &u32) -> u32 {
    *unprintable
}

#[asset(group = "unprintable")]
fn beside_unprintable() -> u32 {
    5
}

#[test]
fn a_panic_while_reporting_an_error_fails_the_asset_instead_of_hanging() {
    let result = Materialize::select("group:unprintable")
        .jobs(1)
        .run()
        .unwrap();
    match &result.outcome("unprintable").unwrap().status {
        AssetStatus::Failed(f) => assert!(f.message().contains("ended unexpectedly"), "{f}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        result.outcome("after_unprintable").unwrap().status,
        AssetStatus::Skipped { .. }
    ));
    assert_eq!(*result.output::<beside_unprintable>(), 5);
}
