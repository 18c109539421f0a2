//! The service-ready core: an `Instance` submits runs in the background, broadcasts their
//! events, cancels them, keeps run requests in structured form and re-executes them exactly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use orch::prelude::*;
use orch::storage::{EventKind, RunFilter, RunRecord, RunStatus, Storage};
use orch::{AssetStatus, PartitionScope, Reexecution, RunRequest, Trigger};

/// Tests that run the `cancel` group take turns (they share its flags).
static CANCEL_TURN: Mutex<()> = Mutex::new(());
/// How many of the `cancel` group's first assets have started.
static CANCEL_STARTED: AtomicUsize = AtomicUsize::new(0);
/// Set by `cancel_slow` when it saw the run canceled.
static SAW_CANCEL: AtomicBool = AtomicBool::new(false);

/// Waits (yielding, not timing) until `n` of the group's first assets have started.
fn wait_started(n: usize) {
    while CANCEL_STARTED.load(Ordering::SeqCst) < n {
        std::thread::yield_now();
    }
}

/// A long sync asset that checks for cancellation between chunks of work.
#[asset(group = "cancel")]
fn cancel_slow(ctx: &AssetContext) -> u32 {
    CANCEL_STARTED.fetch_add(1, Ordering::SeqCst);
    while !ctx.is_cancelled() {
        std::thread::yield_now();
    }
    SAW_CANCEL.store(true, Ordering::SeqCst);
    7
}

/// An async asset that never finishes by itself: cancellation drops it at its await.
#[asset(group = "cancel")]
async fn cancel_pending() -> u32 {
    CANCEL_STARTED.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await;
    unreachable!("a pending future never resumes")
}

/// Waits for `cancel_slow`: never starts once the run is canceled.
#[asset(group = "cancel")]
fn cancel_after(cancel_slow: &u32) -> u32 {
    cancel_slow + 1
}

#[test]
fn canceling_a_run_lets_running_assets_finish_and_marks_the_rest_canceled() {
    let _turn = CANCEL_TURN.lock().unwrap_or_else(|p| p.into_inner());
    CANCEL_STARTED.store(0, Ordering::SeqCst);
    SAW_CANCEL.store(false, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let run = instance.submit(RunRequest::select("group:cancel").unwrap());
    let run_id = run.run_id().clone();
    wait_started(2);
    run.cancel();
    let result = run.wait().unwrap();

    assert!(result.canceled());
    assert!(!result.success());
    assert!(SAW_CANCEL.load(Ordering::SeqCst), "the sync asset saw it");
    let status = |key: &str| result.outcome(key).map(|o| o.status.clone());
    // The sync asset observed the cancellation and returned: its output counts.
    assert_eq!(status("cancel_slow"), Some(AssetStatus::Succeeded));
    assert_eq!(status("cancel_pending"), Some(AssetStatus::Canceled));
    assert_eq!(status("cancel_after"), Some(AssetStatus::Canceled));

    let store = instance.storage();
    let record = store.run(run_id.as_str()).unwrap();
    assert_eq!(record.status, RunStatus::Canceled);
    let events = store.events(run_id.as_str()).unwrap();
    let canceled: Vec<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::Canceled)
        .filter_map(|e| e.asset.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(canceled.len(), 2, "{canceled:?}");
    assert!(canceled.contains(&"cancel_pending".to_owned()));
    assert!(canceled.contains(&"cancel_after".to_owned()));
    assert_eq!(
        events.last().unwrap().kind,
        EventKind::RunEnded(RunStatus::Canceled)
    );
    // Nothing holds the assets: a new run may take them.
    assert!(
        store
            .runs(&RunFilter::default().status(RunStatus::Running))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_canceled_materialize_runs_nothing_new() {
    let _turn = CANCEL_TURN.lock().unwrap_or_else(|p| p.into_inner());
    // Canceled before it starts: every planned asset is canceled, none runs.
    let token = orch::CancellationToken::new();
    token.cancel();
    CANCEL_STARTED.store(0, Ordering::SeqCst);
    let result = Materialize::select("group:cancel")
        .cancel_token(token)
        .run()
        .unwrap();
    assert!(result.canceled());
    assert_eq!(CANCEL_STARTED.load(Ordering::SeqCst), 0);
    assert!(
        result
            .outcomes()
            .iter()
            .all(|o| o.status == AssetStatus::Canceled),
        "{result:?}"
    );
}

#[asset(group = "feed")]
fn feed_source() -> u32 {
    1
}

#[asset(group = "feed")]
fn feed_sink(feed_source: &u32) -> u32 {
    feed_source + 1
}

#[test]
fn subscribers_see_every_event_of_a_submitted_run_in_order() {
    let instance = Instance::ephemeral();
    let mut feed = instance.subscribe();
    let run = instance.submit(RunRequest::select("group:feed").unwrap().tag("via", "test"));
    let run_id = run.run_id().clone();
    assert!(run.wait().unwrap().success());
    let mut seen = Vec::new();
    while let Ok(event) = feed.try_recv() {
        assert_eq!(event.run_id, run_id);
        assert_eq!(event.seq, None, "the live feed runs ahead of the store");
        seen.push((
            event.asset.map(|a| a.to_string()).unwrap_or_default(),
            event.kind,
        ));
    }
    assert_eq!(
        seen,
        [
            (String::new(), EventKind::RunStarted),
            ("feed_source".to_owned(), EventKind::Started),
            ("feed_source".to_owned(), EventKind::Materialized),
            ("feed_sink".to_owned(), EventKind::Started),
            ("feed_sink".to_owned(), EventKind::Materialized),
            (String::new(), EventKind::RunEnded(RunStatus::Succeeded)),
        ]
    );
    // The same events, committed, with sequence numbers, in the ephemeral store.
    let stored = instance.storage().events(run_id.as_str()).unwrap();
    assert_eq!(stored.len(), 6);
    assert!(stored.iter().all(|e| e.seq.is_some()));
    let record = instance.storage().run(run_id.as_str()).unwrap();
    assert_eq!(record.tags.get("via").map(String::as_str), Some("test"));
    assert_eq!(record.trigger, Trigger::Manual);
}

#[test]
fn an_ephemeral_instance_keeps_outputs_between_its_runs() {
    let instance = Instance::ephemeral();
    assert!(instance.is_ephemeral());
    let first = instance
        .materialize(RunRequest::select("feed_source").unwrap())
        .run()
        .unwrap();
    assert!(first.success());
    // `feed_source` is not selected: it is loaded from the instance's in-memory storage.
    let second = instance
        .materialize(RunRequest::select("feed_sink").unwrap())
        .run()
        .unwrap();
    assert_eq!(
        second.outcome("feed_source").unwrap().status,
        AssetStatus::Loaded
    );
    assert_eq!(*second.output::<feed_sink>(), 2);
    assert_eq!(
        instance
            .storage()
            .runs(&RunFilter::recent(10))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn two_submitted_runs_go_on_at_once() {
    let _turn = CANCEL_TURN.lock().unwrap_or_else(|p| p.into_inner());
    CANCEL_STARTED.store(0, Ordering::SeqCst);
    SAW_CANCEL.store(false, Ordering::SeqCst);
    let instance = Instance::ephemeral();
    // The first run holds `cancel_slow` until canceled; the second runs meanwhile.
    let slow = instance.submit(RunRequest::select("cancel_slow").unwrap());
    wait_started(1);
    let quick = instance.submit(RunRequest::select("group:feed").unwrap());
    assert_ne!(slow.run_id(), quick.run_id());
    assert!(quick.wait().unwrap().success());
    let running = instance
        .storage()
        .runs(&RunFilter::default().status(RunStatus::Running))
        .unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(&running[0].id, slow.run_id());
    slow.cancel();
    let slow = slow.wait().unwrap();
    // It had nothing left to cancel: its one asset saw the flag and returned.
    assert!(slow.success());
}

#[test]
fn a_run_that_cannot_start_says_why_from_wait() {
    let instance = Instance::ephemeral();
    let run = instance.submit(RunRequest::select("no_such_asset").unwrap());
    let err = run.wait().unwrap_err().to_string();
    assert!(
        err.contains("no asset has the key `no_such_asset`"),
        "{err}"
    );
}

#[test]
fn reexecution_keeps_the_partitions_in_the_definitions_order() {
    let graph = orch::definitions().unwrap();
    let store = orch::storage::SqliteStorage::in_memory().unwrap();
    // A run over static partitions whose order is not text order.
    let request = RunRequest::select("feed_source")
        .unwrap()
        .partition_range(["eu", "us", "apac"])
        .tag("team", "data");
    let parent = RunRecord::new(orch::RunId::new(), &request, 1);
    store.begin_run(&parent, &[]).unwrap();
    let again = Reexecution::of(&store, parent.id.as_str())
        .unwrap()
        .request(graph)
        .unwrap()
        .unwrap();
    assert_eq!(
        again.partition_scope(),
        &PartitionScope::Range(vec!["eu".into(), "us".into(), "apac".into()])
    );
    assert_eq!(again.trigger(), &Trigger::Reexecution);
    assert_eq!(again.parent_run(), Some(&parent.id));
    assert_eq!(again.tags().get("team").map(String::as_str), Some("data"));
    assert_eq!(again.target().to_string(), "feed_source");
}

#[test]
fn the_store_follows_runs_incrementally_from_another_handle() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    // Another process would open the same database; a second handle stands in for it.
    let follower = orch::storage::SqliteStorage::open(dir.path()).unwrap();
    let start = follower
        .events_since(0, 0)
        .unwrap()
        .last()
        .and_then(|e| e.seq)
        .unwrap_or(0);
    let result = instance
        .materialize(RunRequest::select("group:feed").unwrap())
        .run()
        .unwrap();
    let mut cursor = start;
    let mut kinds = Vec::new();
    loop {
        let page = follower.events_since(cursor, 2).unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().unwrap().seq.unwrap();
        kinds.extend(page.into_iter().map(|e| e.kind));
    }
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    assert_eq!(kinds[0], EventKind::RunStarted);
    assert_eq!(kinds[5], EventKind::RunEnded(RunStatus::Succeeded));
    let arc: Arc<dyn Storage> = Arc::new(follower);
    assert_eq!(
        arc.run(result.run_id().as_str()).unwrap().status,
        RunStatus::Succeeded
    );
}

#[test]
fn a_plan_says_what_would_run_and_load_without_running_anything() {
    let instance = Instance::ephemeral();
    let plan = instance
        .plan(&RunRequest::select("feed_sink").unwrap())
        .unwrap();
    let order: Vec<String> = plan.assets.iter().map(|a| a.key.to_string()).collect();
    assert_eq!(order, ["feed_sink"]);
    assert_eq!(plan.loads.len(), 1);
    assert_eq!(plan.loads[0].upstream, "feed_source");
    assert_eq!(plan.loads[0].reads, "the stored output");
    assert!(!plan.loads[0].stored, "nothing is stored yet");
    assert!(
        plan.to_string()
            .contains("(NOT STORED: the run would fail)"),
        "{plan}"
    );
    // Planning ran nothing and recorded nothing.
    assert!(
        instance
            .storage()
            .runs(&RunFilter::default())
            .unwrap()
            .is_empty()
    );

    let first = instance
        .materialize(RunRequest::select("group:feed").unwrap())
        .run()
        .unwrap();
    assert!(first.success());
    let plan = instance
        .plan(&RunRequest::select("feed_sink").unwrap())
        .unwrap();
    assert!(plan.loads[0].stored);
    // Everything is up to date: a stale plan runs nothing, and says so.
    let stale = instance
        .plan(&RunRequest::select("group:feed").unwrap().only_stale())
        .unwrap();
    assert!(stale.assets.is_empty());
    assert!(stale.to_string().contains("nothing would run"), "{stale}");
    // What would stop the run stops the plan.
    let err = instance
        .plan(
            &RunRequest::select("group:feed")
                .unwrap()
                .partition("2024-01-01"),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("no selected asset is partitioned"), "{err}");
}

static RETRY_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

/// Fails, and would wait an hour before each retry.
#[asset(group = "retry_cancel", retries = 3, retry_delay = "1h")]
fn cancel_during_backoff() -> Result<u32, String> {
    RETRY_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    Err("not yet".to_owned())
}

#[test]
fn canceling_stops_a_retry_that_is_waiting() {
    RETRY_ATTEMPTS.store(0, Ordering::SeqCst);
    let instance = Instance::ephemeral();
    let mut feed = instance.subscribe();
    let run = instance.submit(RunRequest::select("group:retry_cancel").unwrap());
    // The first attempt failed and the retry waits (an hour): cancel then.
    loop {
        let event = feed.blocking_recv().unwrap();
        if event.kind == EventKind::Retried {
            break;
        }
    }
    run.cancel();
    let result = run.wait().unwrap();
    assert!(result.canceled());
    assert_eq!(
        result.outcome("cancel_during_backoff").unwrap().status,
        AssetStatus::Canceled
    );
    assert_eq!(RETRY_ATTEMPTS.load(Ordering::SeqCst), 1, "no retry ran");
}
