//! Ops and op jobs: wiring, fan-out computed once, concurrency, failure isolation, optional
//! outputs, run config checked before anything runs, re-execution from a failure, and testing
//! ops as plain functions with `OpContext::for_test`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use orch::prelude::*;
use orch::testing::execute_job;
use orch::{AssetStatus, Reexecution, RunConfig};

// --- fan-out and fan-in, counted ----------------------------------------------------------

static SOURCE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[op]
fn source() -> Vec<u32> {
    SOURCE_CALLS.fetch_add(1, Ordering::SeqCst);
    vec![1, 2, 3, 4]
}

#[op]
fn total(values: &Vec<u32>) -> u32 {
    values.iter().sum()
}

#[op]
fn largest(values: Vec<u32>) -> u32 {
    values.into_iter().max().unwrap_or_default()
}

#[op]
fn combine(total: &u32, largest: &u32) -> String {
    format!("{total}/{largest}")
}

/// Fan out from one source, and back in.
#[job]
fn fan() {
    let values = source();
    let a = total(values);
    let b = largest(values);
    combine(a, b);
    // A second call of an op is a second step (`total_2`); `.named` names one.
    total(values).named("total_again").after(b);
    total(values);
}

#[test]
fn a_fanned_out_output_is_computed_once_and_every_step_runs() {
    let before = SOURCE_CALLS.load(Ordering::SeqCst);
    let result = execute_job::<fan>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(SOURCE_CALLS.load(Ordering::SeqCst) - before, 1);
    assert_eq!(result.output::<combine>(), "10/4");
    assert_eq!(*result.output::<largest>(), 4);
    assert_eq!(result.step_output::<u32>("total_again"), Some(&10));
    assert_eq!(result.step_output::<u32>("total_2"), Some(&10));
    assert_eq!(result.outcomes().len(), 6);
    let keys: Vec<String> = result
        .outcomes()
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    assert!(keys.contains(&"fan/total_again".to_owned()), "{keys:?}");
}

#[test]
fn a_job_is_listed_with_its_steps_and_wiring() {
    let job = orch::jobs::op_job("fan").unwrap();
    assert_eq!(job.graph().len(), 6);
    let combine = job.step("combine").unwrap();
    let ups: Vec<&str> = job
        .graph()
        .node(combine)
        .inputs
        .iter()
        .map(|&u| job.step_name(u))
        .collect();
    assert_eq!(ups, ["total", "largest"]);
    // `.after(b)` is an order-only edge: upstream, not an input.
    let again = job.graph().node(job.step("total_again").unwrap());
    assert_eq!(again.inputs.len(), 1);
    assert_eq!(again.upstream.len(), 2);
    assert_eq!(
        job.def().description(),
        Some("Fan out from one source, and back in.")
    );
    let err = orch::jobs::op_job("fam").unwrap_err().to_string();
    assert!(err.contains("did you mean `fan`?"), "{err}");
}

// --- concurrency, proven with a barrier ---------------------------------------------------

static BARRIER: std::sync::LazyLock<Barrier> = std::sync::LazyLock::new(|| Barrier::new(2));

#[op]
fn left() -> u8 {
    // Both sides must be inside at once for either to go on.
    BARRIER.wait();
    1
}

#[op]
fn right() -> u8 {
    BARRIER.wait();
    2
}

#[op]
fn join(a: &u8, b: &u8) -> u8 {
    a + b
}

#[job]
fn parallel() {
    join(left(), right());
}

#[test]
fn independent_ops_run_at_the_same_time() {
    let result = execute_job::<parallel>().jobs(2).run().unwrap();
    assert!(result.success());
    assert_eq!(*result.output::<join>(), 3);
}

// --- failure isolation and re-execution from the failure ----------------------------------

static FLAKY_FAILS: Mutex<bool> = Mutex::new(true);
static STABLE_CALLS: AtomicUsize = AtomicUsize::new(0);
static AFTER_FLAKY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[op]
fn stable() -> Vec<String> {
    STABLE_CALLS.fetch_add(1, Ordering::SeqCst);
    vec!["a".into(), "b".into()]
}

#[op]
fn flaky(rows: &Vec<String>) -> Result<usize, BoxError> {
    match *FLAKY_FAILS.lock().unwrap() {
        true => Err("the warehouse is down".into()),
        false => Ok(rows.len()),
    }
}

#[op]
fn after_flaky(n: &usize) -> usize {
    AFTER_FLAKY_CALLS.fetch_add(1, Ordering::SeqCst);
    n * 10
}

#[op]
fn independent(rows: &Vec<String>) -> String {
    rows.join(",")
}

#[job]
fn recovering() {
    let rows = stable();
    after_flaky(flaky(rows));
    independent(rows);
}

#[test]
fn a_failure_skips_only_its_downstream_and_reexecution_reruns_only_what_failed() {
    let instance = orch::testing::ephemeral_instance();
    *FLAKY_FAILS.lock().unwrap() = true;
    let stable_before = STABLE_CALLS.load(Ordering::SeqCst);
    let failed = execute_job::<recovering>()
        .instance(&instance)
        .run()
        .unwrap();
    assert!(!failed.success());
    let status = |result: &orch::testing::JobResult, step: &str| {
        result
            .outcome(&format!("recovering/{step}"))
            .map(|o| o.status.label())
            .unwrap()
    };
    assert_eq!(status(&failed, "flaky"), "FAILED");
    assert_eq!(status(&failed, "after_flaky"), "skipped");
    assert_eq!(status(&failed, "independent"), "ok");
    assert_eq!(status(&failed, "stable"), "ok");
    assert_eq!(STABLE_CALLS.load(Ordering::SeqCst) - stable_before, 1);

    // The warehouse is back: re-execute from the failure.
    *FLAKY_FAILS.lock().unwrap() = false;
    let reexecution = Reexecution::of(&**instance.storage(), failed.run_id().as_str())
        .unwrap()
        .from_failure();
    let request = reexecution
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("something failed");
    assert_eq!(
        request.target().to_string(),
        "job:recovering[after_flaky,flaky]"
    );
    let after_before = AFTER_FLAKY_CALLS.load(Ordering::SeqCst);
    let again = instance.materialize(request).run().unwrap();
    assert!(again.success(), "{:?}", again.outcomes());
    // `stable` ran once in all: the re-execution loaded its output from the first run.
    assert_eq!(STABLE_CALLS.load(Ordering::SeqCst) - stable_before, 1);
    assert_eq!(AFTER_FLAKY_CALLS.load(Ordering::SeqCst) - after_before, 1);
    assert_eq!(
        again.outcome("recovering/stable").unwrap().status,
        AssetStatus::Loaded
    );
    assert!(again.outcome("recovering/independent").is_none());
    // The store has it as a re-execution of the first run, under the job's target.
    let record = instance.storage().run(again.run_id().as_str()).unwrap();
    assert_eq!(record.parent.as_ref(), Some(failed.run_id()));
    assert_eq!(record.target, "job:recovering[after_flaky,flaky]");
    // Nothing left to do.
    let done = Reexecution::of(&**instance.storage(), again.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap();
    assert!(done.is_none());
}

// --- optional outputs ---------------------------------------------------------------------

/// The runs `notify` ran in (tests run side by side: each looks for its own run).
static NOTIFIED: Mutex<Vec<orch::RunId>> = Mutex::new(Vec::new());

#[op]
fn maybe_alert(#[config] cfg: &AlertConfig) -> Option<String> {
    (cfg.threshold < 10).then(|| format!("over {}", cfg.threshold))
}

#[derive(serde::Deserialize)]
struct AlertConfig {
    threshold: u32,
}

#[op]
fn notify(ctx: &OpContext, message: &String) -> usize {
    NOTIFIED.lock().unwrap().push(ctx.run_id().clone());
    message.len()
}

#[op]
fn after_notify(n: &usize) -> usize {
    *n
}

#[op]
fn always() -> u8 {
    7
}

#[job(tags(team = "alerts"))]
fn alerting() {
    after_notify(notify(maybe_alert()));
    always();
}

#[test]
fn a_none_output_skips_its_downstream_and_the_run_still_succeeds() {
    let config = RunConfig::parse("[ops.maybe_alert]\nthreshold = 50").unwrap();
    let result = execute_job::<alerting>().config(config).run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert!(!NOTIFIED.lock().unwrap().contains(result.run_id()));
    for step in ["notify", "after_notify"] {
        let outcome = result.outcome(&format!("alerting/{step}")).unwrap();
        assert!(
            matches!(&outcome.status, AssetStatus::NotRequired { because_of } if because_of.name() == "maybe_alert"),
            "{step}: {:?}",
            outcome.status
        );
    }
    assert!(result.try_output::<maybe_alert>().is_none());
    assert_eq!(*result.output::<always>(), 7);

    let config = RunConfig::parse("[ops.maybe_alert]\nthreshold = 5").unwrap();
    let result = execute_job::<alerting>().config(config).run().unwrap();
    assert!(result.success());
    assert_eq!(*result.output::<after_notify>(), "over 5".len());
    assert!(NOTIFIED.lock().unwrap().contains(result.run_id()));
}

#[test]
fn a_none_output_is_recorded_as_not_required_and_not_reexecuted() {
    let instance = orch::testing::ephemeral_instance();
    let config = RunConfig::parse("[ops.maybe_alert]\nthreshold = 50").unwrap();
    let result = execute_job::<alerting>()
        .config(config)
        .instance(&instance)
        .run()
        .unwrap();
    assert!(result.success());
    let events = instance.storage().events(result.run_id().as_str()).unwrap();
    let skipped: Vec<String> = events
        .iter()
        .filter(|e| e.kind == orch::storage::EventKind::Skipped)
        .map(|e| e.message.clone().unwrap_or_default())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].contains("`alerting/maybe_alert` produced no output"),
        "{skipped:?}"
    );
    let record = instance.storage().run(result.run_id().as_str()).unwrap();
    assert_eq!(record.status, orch::storage::RunStatus::Succeeded);
    // The job's tags are on every run of it, with the job's own.
    assert_eq!(record.tags["team"], "alerts");
    assert_eq!(record.tags["orch/job"], "alerting");
    // The config is kept with the run, and nothing is left to re-execute.
    assert!(record.config.as_deref().unwrap().contains("threshold"));
    let again = Reexecution::of(&**instance.storage(), result.run_id().as_str())
        .unwrap()
        .from_failure()
        .request(orch::definitions().unwrap())
        .unwrap();
    assert!(again.is_none());

    // Re-executed with another config, the alert goes out; the first run keeps its config.
    let lower = RunConfig::parse("[ops.maybe_alert]\nthreshold = 5").unwrap();
    let request = Reexecution::of(&**instance.storage(), result.run_id().as_str())
        .unwrap()
        .config(lower)
        .unwrap()
        .request(orch::definitions().unwrap())
        .unwrap()
        .expect("a whole re-execution");
    let rerun = instance.materialize(request).run().unwrap();
    assert!(rerun.success(), "{:?}", rerun.outcomes());
    assert_eq!(
        rerun.step_output::<usize>("after_notify"),
        Some(&"over 5".len())
    );
    let rerun_record = instance.storage().run(rerun.run_id().as_str()).unwrap();
    assert!(rerun_record.config.as_deref().unwrap().contains('5'));
    assert_eq!(rerun_record.parent.as_ref(), Some(result.run_id()));
    let first = instance.storage().run(result.run_id().as_str()).unwrap();
    assert!(first.config.as_deref().unwrap().contains("50"));

    // A run of assets takes no config.
    let assets_run =
        orch::storage::RunRecord::new(orch::RunId::from("assets-run"), &orch::RunRequest::all(), 0);
    instance.storage().begin_run(&assets_run, &[]).unwrap();
    let err = Reexecution::of(&**instance.storage(), "assets-run")
        .unwrap()
        .config(RunConfig::empty())
        .unwrap_err()
        .to_string();
    assert!(err.contains("take no run config"), "{err}");
}

// --- run config ---------------------------------------------------------------------------

static CONFIGURED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchConfig {
    limit: u32,
    #[serde(default)]
    source: SourceConfig,
}

#[derive(serde::Deserialize, Default)]
struct SourceConfig {
    #[serde(default)]
    retries: u8,
}

#[op]
fn first_step() -> u8 {
    CONFIGURED_CALLS.fetch_add(1, Ordering::SeqCst);
    1
}

#[op]
fn configured(ctx: &OpContext, #[config] cfg: FetchConfig, _first: &u8) -> u32 {
    CONFIGURED_CALLS.fetch_add(1, Ordering::SeqCst);
    ctx.log().info(format!("limit {}", cfg.limit));
    cfg.limit + u32::from(cfg.source.retries)
}

#[job]
fn with_config() {
    configured(first_step());
}

#[test]
fn config_reaches_the_op_and_bad_config_runs_nothing_and_names_the_field() {
    let config = RunConfig::parse("[ops.configured]\nlimit = 5\nsource = { retries = 2 }").unwrap();
    let result = execute_job::<with_config>().config(config).run().unwrap();
    assert!(result.success());
    assert_eq!(*result.output::<configured>(), 7);

    let before = CONFIGURED_CALLS.load(Ordering::SeqCst);
    let cases = [
        ("[ops.configured]\nlimit = \"many\"", "invalid at `limit`"),
        (
            "[ops.configured]\nlimit = 1\nsource = { retries = 300 }",
            "at `source.retries`",
        ),
        (
            "[ops.configured]\nlimit = 1\nlimt = 2",
            "unknown field `limt`",
        ),
        ("", "missing field `limit`"),
        ("[ops.configurd]\nlimit = 1", "did you mean `configured`?"),
    ];
    for (text, expected) in cases {
        let config = RunConfig::parse(text).unwrap();
        let err = execute_job::<with_config>()
            .config(config)
            .run()
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{text}: {err}");
        assert!(err.contains("configur"), "{text}: {err}");
    }
    // Not even the op without config ran.
    assert_eq!(CONFIGURED_CALLS.load(Ordering::SeqCst), before);
}

// --- resources, injections, async ops, testing ops directly -------------------------------

/// A client the tests replace with a mock.
struct Api {
    rows: Vec<u32>,
    calls: AtomicUsize,
}

#[op]
fn fetch(ctx: &OpContext, #[resource] api: &Api) -> Vec<u32> {
    api.calls.fetch_add(1, Ordering::SeqCst);
    ctx.log()
        .info(format!("fetched {} rows from the api", api.rows.len()));
    api.rows.clone()
}

#[op]
async fn double(rows: Vec<u32>) -> Vec<u32> {
    tokio_yield().await;
    rows.into_iter().map(|r| r * 2).collect()
}

async fn tokio_yield() {
    // An await point without a timer: the op is polled on the runtime's workers.
    std::future::ready(()).await
}

#[op]
fn summed(rows: &Vec<u32>) -> u32 {
    rows.iter().sum()
}

#[job]
fn with_resource() {
    summed(double(fetch()));
}

#[test]
fn an_op_is_a_plain_function_with_a_test_context() {
    let api = Api {
        rows: vec![1, 2],
        calls: AtomicUsize::new(0),
    };
    let ctx = OpContext::for_test().op("fetch").build();
    assert_eq!(fetch(&ctx, &api), [1, 2]);
    assert_eq!(api.calls.load(Ordering::SeqCst), 1);
    let logs = ctx.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].message, "fetched 2 rows from the api");
    assert_eq!(ctx.op_name(), "fetch");

    // The config the context carries is what `op_config` reads.
    let ctx = OpContext::for_test()
        .config(serde_json::json!({ "limit": 3 }))
        .build();
    let cfg: FetchConfig = ctx.op_config().unwrap();
    assert_eq!(cfg.limit, 3);
    let ctx = OpContext::for_test().resource(7u8).build();
    assert_eq!(*ctx.resource::<u8>().unwrap(), 7);
}

#[test]
fn a_job_takes_a_mock_resource_and_injected_outputs() {
    let result = execute_job::<with_resource>()
        .resource(Api {
            rows: vec![1, 2, 3],
            calls: AtomicUsize::new(0),
        })
        .run()
        .unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<summed>(), 12);
    let fetch_logs = &result.outcome("with_resource/fetch").unwrap().logs;
    assert_eq!(fetch_logs[0].message, "fetched 3 rows from the api");

    // Pretend `fetch` produced this: it does not run, and needs no resource.
    let result = execute_job::<with_resource>()
        .inject::<fetch>(vec![10])
        .run()
        .unwrap();
    assert!(result.success());
    assert_eq!(*result.output::<summed>(), 20);

    // Without the resource, the run does not start, and says which resource is missing.
    let err = execute_job::<with_resource>()
        .run()
        .unwrap_err()
        .to_string();
    assert!(err.contains("Api"), "{err}");
}

// --- the store: runs of one job side by side, each with its own outputs -------------------

#[test]
fn two_runs_of_one_job_go_on_side_by_side_with_their_own_outputs() {
    let instance = orch::testing::ephemeral_instance();
    // (Not `fan`, whose calls another test counts.)
    let a = instance.submit(orch::RunRequest::job("with_graphs"));
    let b = instance.submit(orch::RunRequest::job("with_graphs"));
    let (a, b) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(a.success() && b.success());
    let runs = instance
        .storage()
        .runs(&orch::storage::RunFilter::recent(20))
        .unwrap();
    let ours: Vec<_> = runs
        .iter()
        .filter(|r| r.target == "job:with_graphs")
        .collect();
    assert_eq!(ours.len(), 2);
    // Each step of each run has its own stored output.
    let one = orch::storage::EventKind::Materialized;
    for run in [a.run_id(), b.run_id()] {
        let events = instance.storage().events(run.as_str()).unwrap();
        assert_eq!(events.iter().filter(|e| e.kind == one).count(), 7);
    }
    // A job cannot be asked for partitions or staleness.
    let err = instance
        .materialize(orch::RunRequest::job("with_graphs").partition("2024-01-01"))
        .run()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("op job `with_graphs` has no partitions"),
        "{err}"
    );
}

// --- graphs: reusable, nested wiring --------------------------------------------------------

#[op]
fn validate(rows: Vec<i64>) -> Vec<i64> {
    rows.into_iter().filter(|r| *r >= 0).collect()
}

#[op]
fn dedupe(mut rows: Vec<i64>) -> Vec<i64> {
    rows.sort_unstable();
    rows.dedup();
    rows
}

#[op]
fn raw_rows() -> Vec<i64> {
    vec![3, -1, 3, 2]
}

#[op]
fn count_rows(rows: &Vec<i64>) -> usize {
    rows.len()
}

/// Validates, then de-duplicates.
#[graph]
fn clean(raw: Vec<i64>) -> Vec<i64> {
    let valid = validate(raw);
    dedupe(valid)
}

/// Cleans, then counts: a graph inside a graph.
#[graph]
fn clean_and_count(raw: &Vec<i64>) -> usize {
    count_rows(clean(raw))
}

#[job]
fn with_graphs() {
    let raw = raw_rows();
    let n = clean_and_count(raw);
    let cleaned = clean(raw).named("cleaned_again").after(n);
    count_rows(cleaned);
}

#[test]
fn graphs_nest_and_name_their_steps_after_the_call() {
    let job = orch::jobs::op_job("with_graphs").unwrap();
    let mut names: Vec<&str> = (0..job.graph().len()).map(|id| job.step_name(id)).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "clean_and_count.clean.dedupe",
            "clean_and_count.clean.validate",
            "clean_and_count.count_rows",
            "cleaned_again.dedupe",
            "cleaned_again.validate",
            "count_rows",
            "raw_rows",
        ]
    );
    // Every step of `cleaned_again` runs after `clean_and_count`'s output.
    let validate = job
        .graph()
        .node(job.step("cleaned_again.validate").unwrap());
    let after = job.step("clean_and_count.count_rows").unwrap();
    assert!(validate.upstream.contains(&after));
    let result = execute_job::<with_graphs>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(
        result.step_output::<usize>("clean_and_count.count_rows"),
        Some(&2)
    );
    assert_eq!(result.step_output::<usize>("count_rows"), Some(&2));
    assert_eq!(
        result.step_output::<Vec<i64>>("cleaned_again.dedupe"),
        Some(&vec![2, 3])
    );
}

#[op]
fn audit_rows() -> u8 {
    1
}

#[op]
fn audit_schema() -> u8 {
    2
}

/// Two independent checks, and no output: what runs after it waits for both.
#[graph]
fn audits() {
    audit_rows();
    audit_schema();
}

#[op]
fn publish_audited() -> u8 {
    3
}

#[job]
fn audited() {
    let checked = audits();
    publish_audited().after(checked);
}

#[test]
fn after_a_graph_without_an_output_waits_for_all_its_steps() {
    let job = orch::jobs::op_job("audited").unwrap();
    let publish = job.graph().node(job.step("publish_audited").unwrap());
    for step in ["audits.audit_rows", "audits.audit_schema"] {
        assert!(
            publish.upstream.contains(&job.step(step).unwrap()),
            "{step} is not before publish_audited"
        );
    }
    let result = execute_job::<audited>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
}

// --- a schedule on an op job, with config per tick ----------------------------------------

#[op]
fn limited(ctx: &OpContext, #[config] cfg: &FetchConfig) -> u32 {
    ctx.log().info(format!("limit {}", cfg.limit));
    cfg.limit
}

#[job]
fn scheduled_limit() {
    limited();
}

schedule!(
    hourly_config,
    job = scheduled_limit,
    cron = "0 * * * *",
    timezone = "UTC",
    decide = limit_by_hour
);

fn limit_by_hour(ctx: &ScheduleContext) -> Result<ScheduleDecision, BoxError> {
    let hour = ctx.scheduled().hour();
    let config = RunConfig::parse(&format!("[ops.limited]\nlimit = {hour}"))?;
    Ok(ScheduleDecision::runs([SensorRun::new().config(config)]))
}

#[test]
fn a_schedule_on_an_op_job_queues_each_tick_with_its_own_config() {
    use orch::automation::{TickOutcome, automation, request_tick};
    let automation = automation().unwrap();
    let (schedule, _) = automation.schedule("hourly_config").unwrap();
    let instance = orch::testing::ephemeral_instance();
    let at: orch::jiff::Timestamp = "2026-02-10T07:00:00Z".parse().unwrap();
    let TickOutcome::Requested(ids) =
        request_tick(&instance, automation, schedule, at, None).unwrap()
    else {
        panic!("the tick requested no run");
    };
    let queued = instance.storage().run(ids[0].as_str()).unwrap();
    assert_eq!(queued.target, "job:scheduled_limit");
    assert_eq!(queued.tags["orch/job"], "scheduled_limit");
    let request = queued.request().unwrap();
    assert_eq!(
        request.run_config().unwrap().op("limited").unwrap()["limit"],
        7
    );
    // Started as the daemon starts it: from the queue, with the config kept in the store.
    let result = instance
        .launch_queued(ids[0].as_str())
        .unwrap()
        .wait()
        .unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    let logs = &result.outcome("scheduled_limit/limited").unwrap().logs;
    assert_eq!(logs[0].message, "limit 7");
}

#[test]
fn a_schedule_without_decide_on_an_op_job_that_needs_config_is_a_startup_error() {
    let graph = orch::definitions().unwrap();
    let schedule = |name: &'static str, job: &'static str| -> &'static orch::ScheduleDef {
        Box::leak(Box::new(orch::ScheduleDef::from_parts(
            orch::__private::ScheduleParts {
                name,
                target: orch::ScheduleTarget::Job(job),
                cron: "0 * * * *",
                timezone: "UTC",
                default_status: orch::DefaultStatus::Stopped,
                description: None,
                catchup: 5,
                skip_if_running: false,
                location: orch::__private::SourceLocation {
                    module: "m",
                    file: "f.rs",
                    line: 1,
                },
                decide: None,
                decide_timeout_ms: 60_000,
            },
        )))
    };
    // `with_config`'s `configured` needs a config; `fan` needs none.
    let errors = orch::automation::Automation::check(
        graph,
        Vec::new(),
        vec![
            schedule("hourly_config", "with_config"),
            schedule("hourly_fan", "fan"),
        ],
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.starts_with("schedule `hourly_config` (at f.rs:1 (m)) runs op job `with_config`, whose config it cannot give:"),
        "{text}"
    );
    assert!(
        text.contains("configured") && text.contains("`decide` function"),
        "{text}"
    );
}
