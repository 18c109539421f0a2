//! Declarative automation through the daemon, in process: `eager()` along a chain (one run
//! from empty, one more run downstream after the root is re-materialized, never a second
//! request for the same update), `on_missing()`, `on_cron()`, the recorded reasons, the global
//! pause, and a restart that does not request again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::{Timestamp, ToSpan};
use orch::FreshnessState;
use orch::automation::{AutomationEvaluator, ConditionNode};
use orch::daemon::{Daemon, DaemonOptions};
use orch::prelude::*;
use orch::storage::RunStatus;

static RUNS_A: AtomicUsize = AtomicUsize::new(0);
static RUNS_B: AtomicUsize = AtomicUsize::new(0);
static RUNS_C: AtomicUsize = AtomicUsize::new(0);
/// One test at a time: they count the chain's runs, and every evaluation requests what is
/// missing, so parallel tests would run the same assets at once (and wait for each other).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[asset(automation = eager())]
fn chain_a() -> u32 {
    RUNS_A.fetch_add(1, Ordering::SeqCst) as u32
}

#[asset(automation = eager())]
fn chain_b(chain_a: &u32) -> u32 {
    RUNS_B.fetch_add(1, Ordering::SeqCst);
    chain_a + 1
}

#[asset(automation = eager())]
fn chain_c(chain_b: &u32) -> u32 {
    RUNS_C.fetch_add(1, Ordering::SeqCst);
    chain_b + 1
}

/// No condition: materialized by hand in the tests.
#[asset]
fn landing() -> u32 {
    1
}

#[asset(automation = on_missing())]
fn first_load(landing: &u32) -> u32 {
    *landing
}

#[asset(automation = on_cron("0 * * * *"))]
fn hourly_report(landing: &u32) -> u32 {
    *landing
}

/// No condition; fresh within an hour, warned after half of it.
#[asset(freshness = freshness::window("1h").warn("30m"))]
fn exchange_rates() -> f64 {
    1.08
}

fn daemon(instance: &Instance) -> Daemon {
    Daemon::new(
        instance.clone(),
        orch::automation::automation().unwrap(),
        DaemonOptions::default(),
    )
}

/// One `daemon --once` as of `at`: the assets it requested (in one run), after that run
/// ended.
fn once(instance: &Instance, at: Timestamp) -> Vec<String> {
    let report = daemon(instance).once(at, &mut |_| {}).unwrap();
    assert!(report.success(), "{report:?}");
    let requested: Vec<String> = report
        .automation
        .requested
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(report.automation.run.is_some(), !requested.is_empty());
    if let Some(run) = &report.automation.run {
        assert_eq!(report.runs, [(run.clone(), RunStatus::Succeeded)]);
    }
    requested
}

fn materialize(instance: &Instance, selection: &str) {
    let result = instance
        .materialize(RunRequest::select(selection).unwrap())
        .run()
        .unwrap();
    assert!(result.success());
}

/// The stored reasons of `asset`'s latest evaluation.
fn reasons(instance: &Instance, asset: &str) -> (bool, ConditionNode) {
    let record = instance.storage().automation_asset(asset).unwrap().unwrap();
    (record.result, serde_json::from_str(&record.tree).unwrap())
}

fn search<'a>(node: &'a ConditionNode, label: &str) -> Option<&'a ConditionNode> {
    match node.label == label {
        true => Some(node),
        false => node.children.iter().find_map(|c| search(c, label)),
    }
}

fn find<'a>(node: &'a ConditionNode, label: &str) -> &'a ConditionNode {
    search(node, label).unwrap_or_else(|| panic!("no `{label}` in\n{}", node.render()))
}

fn only_chain(requested: Vec<String>) -> Vec<String> {
    requested
        .into_iter()
        .filter(|k| k.starts_with("chain_"))
        .collect()
}

#[test]
fn eager_runs_a_chain_once_from_empty_and_once_more_after_its_root_is_updated() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let (a0, b0, c0) = (
        RUNS_A.load(Ordering::SeqCst),
        RUNS_B.load(Ordering::SeqCst),
        RUNS_C.load(Ordering::SeqCst),
    );
    let counts = || {
        (
            RUNS_A.load(Ordering::SeqCst) - a0,
            RUNS_B.load(Ordering::SeqCst) - b0,
            RUNS_C.load(Ordering::SeqCst) - c0,
        )
    };

    // From empty: all three missing, requested together (an upstream requested in the same
    // evaluation is neither missing nor in the way), in one run.
    let now = Timestamp::now();
    assert_eq!(
        only_chain(once(&instance, now)),
        ["chain_a", "chain_b", "chain_c"]
    );
    assert_eq!(counts(), (1, 1, 1));
    // Each materialized after its upstream: nothing more to do, however often it evaluates
    // (each `once` is a new daemon: the state comes from the store).
    assert!(only_chain(once(&instance, now)).is_empty());
    assert!(only_chain(once(&instance, now)).is_empty());
    let (requested, tree) = reasons(&instance, "chain_b");
    assert!(!requested);
    assert!(
        !find(&tree, "any_deps_updated()").passed,
        "{}",
        tree.render()
    );

    // The root updated by hand: exactly one more run, of the two downstream assets.
    materialize(&instance, "chain_a");
    assert_eq!(counts(), (2, 1, 1));
    assert_eq!(only_chain(once(&instance, now)), ["chain_b", "chain_c"]);
    assert_eq!(counts(), (2, 2, 2));
    assert!(only_chain(once(&instance, now)).is_empty());
    assert_eq!(counts(), (2, 2, 2));

    // Why `chain_b` was requested is what `automation explain` prints.
    let record = instance
        .storage()
        .automation_asset("chain_b")
        .unwrap()
        .unwrap();
    assert!(record.requested_run.is_some());
    assert_eq!(record.condition, "eager()");

    // Paused: nothing is evaluated, even with the root updated; resumed: the run comes.
    materialize(&instance, "chain_a");
    instance.storage().set_automation_paused(true).unwrap();
    let report = daemon(&instance).once(now, &mut |_| {}).unwrap();
    assert!(report.automation.paused);
    assert!(report.runs.is_empty());
    instance.storage().set_automation_paused(false).unwrap();
    assert_eq!(only_chain(once(&instance, now)), ["chain_b", "chain_c"]);
}

#[test]
fn eager_waits_while_its_upstream_is_in_progress_and_records_why() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    // A queued run of `chain_a` (nobody starts it: the evaluator only reads the queue).
    let queued = instance
        .enqueue(RunRequest::select("chain_a").unwrap())
        .unwrap();
    let automation = orch::automation::automation().unwrap();
    let mut evaluator = AutomationEvaluator::new();
    let done = evaluator
        .evaluate(&instance, automation, Timestamp::now())
        .unwrap();
    // `chain_a` is in progress, so nothing of the chain is requested: `chain_b` waits for it.
    assert!(only_chain(done.requested.iter().map(ToString::to_string).collect()).is_empty());
    let (requested, tree) = reasons(&instance, "chain_b");
    assert!(!requested);
    let blocked = find(&tree, "!any_deps_in_progress()");
    assert!(!blocked.passed);
    assert!(
        blocked
            .detail
            .as_deref()
            .unwrap()
            .contains(&format!("chain_a (run {})", queued.short())),
        "{}",
        tree.render()
    );
    let rendered = tree.render();
    assert!(rendered.starts_with("✗ eager()\n"), "{rendered}");
}

#[test]
fn on_missing_requests_once_after_its_upstream_arrives() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let now = Timestamp::now();
    let mentions = |requested: &[String], key: &str| requested.iter().any(|k| k == key);

    // `landing` is missing and nothing requests it: `first_load` waits.
    assert!(!mentions(&once(&instance, now), "first_load"));
    let (_, tree) = reasons(&instance, "first_load");
    let waiting = find(&tree, "!any_deps_missing()");
    assert_eq!(waiting.detail.as_deref(), Some("missing: landing"));

    materialize(&instance, "landing");
    assert!(mentions(&once(&instance, now), "first_load"));
    // Materialized now: never again, whatever its upstream does.
    materialize(&instance, "landing");
    assert!(!mentions(&once(&instance, now), "first_load"));
}

#[test]
fn on_cron_requests_after_a_tick_once_every_upstream_has_updated_since() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let now = Timestamp::now();
    let hour = Timestamp::from_second(now.as_second() / 3600 * 3600).unwrap();
    let mentions = |requested: &[String]| requested.iter().any(|k| k == "hourly_report");

    // First evaluated half an hour before the latest tick: ticks before that do not count.
    assert!(!mentions(&once(&instance, hour - 30.minutes())));
    // The tick passed, but `landing` has not updated since: not yet.
    assert!(!mentions(&once(&instance, now)));
    let (_, tree) = reasons(&instance, "hourly_report");
    assert!(
        find(&tree, "cron_tick_passed(\"0 * * * *\")").passed,
        "{}",
        tree.render()
    );
    assert!(!find(&tree, "all_deps_updated_since_cron(\"0 * * * *\")").passed);

    // `landing` updated after the tick: requested, once for this tick.
    materialize(&instance, "landing");
    assert!(mentions(&once(&instance, now)));
    assert!(!mentions(&once(&instance, now)));
    let (_, tree) = reasons(&instance, "hourly_report");
    assert!(
        !find(&tree, "cron_tick_passed(\"0 * * * *\")").passed,
        "{}",
        tree.render()
    );
}

/// The long-running daemon keeps one evaluator: after the first evaluation it reads only new
/// events, skips assets whose inputs did not change, and rewrites no reasons that did not
/// change; an update still reaches everything downstream.
#[test]
fn one_evaluator_across_evaluations_sees_each_update_and_rewrites_only_what_changed() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let automation = orch::automation::automation().unwrap();
    let mut evaluator = AutomationEvaluator::new();
    let t0 = Timestamp::now();
    let requested = |e: &orch::automation::AutomationEvaluation| -> Vec<String> {
        only_chain(e.requested.iter().map(ToString::to_string).collect())
    };
    let first = evaluator.evaluate(&instance, automation, t0).unwrap();
    assert_eq!(requested(&first), ["chain_a", "chain_b", "chain_c"]);
    // Queued, not started: in progress, so nothing more is requested.
    let again = evaluator
        .evaluate(&instance, automation, t0 + 1.second())
        .unwrap();
    assert!(requested(&again).is_empty());
    // Run what was queued (the daemon's job), then evaluate: nothing new to request.
    let run = first.run.clone().unwrap();
    assert!(
        instance
            .launch_queued(run.as_str())
            .unwrap()
            .wait()
            .unwrap()
            .success()
    );
    let settled = evaluator
        .evaluate(&instance, automation, t0 + 2.seconds())
        .unwrap();
    assert!(requested(&settled).is_empty(), "{settled:?}");
    let stored = |key: &str| instance.storage().automation_asset(key).unwrap().unwrap();
    let before = stored("chain_c");
    // Nothing changed: the stored reasons are not rewritten.
    evaluator
        .evaluate(&instance, automation, t0 + 3.seconds())
        .unwrap();
    assert_eq!(stored("chain_c"), before);

    materialize(&instance, "chain_a");
    let after = evaluator
        .evaluate(&instance, automation, t0 + 4.seconds())
        .unwrap();
    assert_eq!(requested(&after), ["chain_b", "chain_c"]);
    assert_ne!(stored("chain_c"), before);
}

/// The daemon's freshness watch records each change of state, once: pass, warn, fail as the
/// materialization ages, pass again after a new one.
#[test]
fn freshness_changes_are_recorded_once_each_as_the_materialization_ages() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let automation = orch::automation::automation().unwrap();
    let mut monitor = orch::automation::FreshnessMonitor::new();
    let mut watch = |at: Timestamp| -> Vec<(String, Option<FreshnessState>, FreshnessState)> {
        monitor
            .evaluate(&instance, automation, at)
            .unwrap()
            .into_iter()
            .filter(|c| c.asset == "exchange_rates")
            .map(|c| (c.asset, c.previous, c.state))
            .collect()
    };
    let now = Timestamp::now();
    let change = |previous, state| vec![("exchange_rates".to_owned(), previous, state)];
    assert_eq!(watch(now), change(None, FreshnessState::Unknown));
    materialize(&instance, "exchange_rates");
    let done = Timestamp::now();
    assert_eq!(
        watch(done + 10.minutes()),
        change(Some(FreshnessState::Unknown), FreshnessState::Pass)
    );
    assert!(
        watch(done + 20.minutes()).is_empty(),
        "no change, nothing recorded"
    );
    assert_eq!(
        watch(done + 45.minutes()),
        change(Some(FreshnessState::Pass), FreshnessState::Warn)
    );
    assert_eq!(
        watch(done + 2.hours()),
        change(Some(FreshnessState::Warn), FreshnessState::Fail)
    );
    // What `health` reads: the states now, with the recorded change's time.
    let states =
        orch::automation::freshness_states(&instance, automation, done + 2.hours()).unwrap();
    let rates = states.iter().find(|f| f.asset == "exchange_rates").unwrap();
    assert_eq!(rates.state, FreshnessState::Fail);
    assert!(rates.detail.contains("more than 1h"), "{}", rates.detail);
    let history = instance
        .storage()
        .freshness_changes(Some("exchange_rates"), 0)
        .unwrap();
    let states: Vec<FreshnessState> = history.iter().map(|c| c.state).collect();
    use FreshnessState::*;
    assert_eq!(states, [Fail, Warn, Pass, Unknown], "newest first");
    // A new monitor (the daemon restarted) starts from what was recorded.
    let mut restarted = orch::automation::FreshnessMonitor::new();
    assert!(
        restarted
            .evaluate(&instance, automation, done + 3.hours())
            .unwrap()
            .iter()
            .all(|c| c.asset != "exchange_rates")
    );
}
