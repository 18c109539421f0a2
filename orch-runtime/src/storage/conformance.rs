//! The storage conformance suite: what every [`Storage`] backend must do, written once
//! against `&dyn Storage`. The SQLite store runs it on a file and in memory
//! (`sqlite_tests.rs`); a later PostgreSQL store runs the same functions.
//!
//! Each check takes a fresh, empty store from the factory. Liveness (claims held by a live
//! owner) is backend-specific and tested beside each backend.

use std::time::{Duration, SystemTime};

use orch_core::{AssetKey, MetadataValue, RunId};

use super::{
    EventKind, EventRecord, Retention, RunCursor, RunFilter, RunRecord, RunStatus, Storage,
    StorageError, TickStatus,
};
use crate::run::{PartitionScope, RunRequest, Trigger};

use super::conformance_automation as automation;

/// A fresh, empty store.
pub(crate) type Factory<'a> = &'a dyn Fn() -> Box<dyn Storage>;

/// Every check, each on its own fresh store.
pub(crate) fn run_all(factory: Factory<'_>) {
    run_ids_resolve_by_unique_prefix(&*factory());
    a_run_request_round_trips(&*factory());
    run_events_bracket_the_asset_events(&*factory());
    timings_are_kept(&*factory());
    events_are_read_incrementally_by_sequence(&*factory());
    runs_filter_and_page(&*factory());
    materializations_and_partitions_are_kept(&*factory());
    dynamic_partitions_keep_their_order(&*factory());
    heartbeats_are_recorded(&*factory());
    retention_keeps_what_staleness_reads(&*factory());
    automation::automation_state_is_kept(&*factory());
    automation::a_tick_is_stored_once(&*factory());
    automation::cursors_are_kept(&*factory());
    a_queued_run_starts_once(&*factory());
    automation::a_tick_commits_its_runs_and_cursor_at_once(&*factory());
    automation::a_lease_has_one_holder_until_it_lapses(&*factory());
    automation::a_run_key_is_launched_once_ever(&*factory());
    automation::check_results_are_read_latest_per_check(&*factory());
    automation::freshness_changes_keep_each_assets_latest(&*factory());
    automation::an_automation_commit_queues_and_stores_at_once(&*factory());
    log_lines_page_forward_and_back(&*factory());
    a_cancel_request_ends_a_queued_run_and_reaches_a_running_one(&*factory());
}

fn log_lines_page_forward_and_back(store: &dyn Storage) {
    use super::{LogPage, LogRecord};
    begin(store, "r1", &RunRequest::all());
    begin(store, "r2", &RunRequest::all());
    let line = |run: &str, i: usize| {
        (
            run.to_owned(),
            LogRecord {
                asset: "a".into(),
                time: SystemTime::now(),
                level: orch_core::LogLevel::Info,
                message: format!("{run} line {i}"),
            },
        )
    };
    // Two runs' lines interleaved: each run pages through its own.
    let lines: Vec<(String, LogRecord)> = (0..10)
        .flat_map(|i| [line("r1", i), line("r2", i)])
        .collect();
    store.append(&[], &lines).unwrap();
    let text = |page: Vec<(u64, LogRecord)>| -> Vec<String> {
        page.into_iter().map(|(_, l)| l.message).collect()
    };
    let all = store
        .logs_page("r1", LogPage::After { id: 0, limit: 0 })
        .unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ids increase");
    assert_eq!(store.logs("r1").unwrap().len(), 10);
    let after = store
        .logs_page(
            "r1",
            LogPage::After {
                id: all[2].0,
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(text(after), ["r1 line 3", "r1 line 4"]);
    let last = store
        .logs_page(
            "r1",
            LogPage::Before {
                id: u64::MAX,
                limit: 3,
            },
        )
        .unwrap();
    assert_eq!(text(last), ["r1 line 7", "r1 line 8", "r1 line 9"]);
    let before = store
        .logs_page(
            "r1",
            LogPage::Before {
                id: all[7].0,
                limit: 0,
            },
        )
        .unwrap();
    assert_eq!(before.len(), 7);
    assert_eq!(before[0].1.message, "r1 line 0");
}

fn a_cancel_request_ends_a_queued_run_and_reaches_a_running_one(store: &dyn Storage) {
    use super::CancelOutcome;
    store
        .enqueue_run(&RunRecord::queued(
            RunId::from("queued"),
            &RunRequest::all(),
        ))
        .unwrap();
    assert_eq!(
        store.request_cancel("queued").unwrap(),
        CancelOutcome::Canceled
    );
    assert_eq!(store.run("queued").unwrap().status, RunStatus::Canceled);
    begin(store, "running", &RunRequest::all());
    assert!(!store.cancel_requested("running").unwrap());
    assert_eq!(
        store.request_cancel("runn").unwrap(),
        CancelOutcome::Requested,
        "by prefix"
    );
    assert!(store.cancel_requested("running").unwrap());
    // Asked twice: still one request, still running until its process stops it.
    assert_eq!(
        store.request_cancel("running").unwrap(),
        CancelOutcome::Requested
    );
    assert_eq!(store.run("running").unwrap().status, RunStatus::Running);
    store
        .end_run("running", RunStatus::Canceled, SystemTime::now())
        .unwrap();
    assert_eq!(
        store.request_cancel("running").unwrap(),
        CancelOutcome::AlreadyEnded(RunStatus::Canceled)
    );
    assert!(matches!(
        store.request_cancel("nope"),
        Err(StorageError::NoSuchRun(_))
    ));
    assert!(!store.cancel_requested("nope").unwrap());
}

pub(super) fn begin(store: &dyn Storage, id: &str, request: &RunRequest) -> RunRecord {
    let run = RunRecord::new(RunId::from(id), request, 1);
    store.begin_run(&run, &[]).unwrap();
    run
}

pub(super) fn asset_event(run: &str, asset: &str, kind: EventKind) -> EventRecord {
    EventRecord::new(
        RunId::from(run),
        Some(asset.parse::<AssetKey>().unwrap()),
        kind,
    )
}

fn timings_are_kept(store: &dyn Storage) {
    use crate::events::{AssetTimings, RunTimings};
    let ms = Duration::from_millis;
    begin(store, "t1", &RunRequest::all());
    let mut done = asset_event("t1", "a", EventKind::Materialized);
    done.timings = Some(AssetTimings::new(ms(1), ms(20), Duration::from_micros(300)));
    let mut behind = asset_event("t1", "c", EventKind::Materialized);
    behind.timings = Some(AssetTimings::new(ms(0), ms(5), ms(900)).in_background());
    let started = asset_event("t1", "b", EventKind::Started);
    store
        .append(&[done.clone(), started, behind.clone()], &[])
        .unwrap();
    let phases = RunTimings {
        plan: ms(2),
        execute: ms(30),
        sync: ms(4),
        record_background: ms(1),
        ..RunTimings::default()
    };
    store
        .end_run_timed("t1", RunStatus::Succeeded, SystemTime::now(), Some(&phases))
        .unwrap();
    assert_eq!(store.run("t1").unwrap().timings, Some(phases));
    let events = store.events("t1").unwrap();
    let timed: Vec<_> = events.iter().map(|e| e.timings).collect();
    // Run started, a (timed), b started (not), c (timed, stored in the background), run ended.
    assert_eq!(timed, [None, done.timings, None, behind.timings, None]);
    assert!(timed[3].unwrap().background && !timed[1].unwrap().background);
    // A run ended without them has none.
    begin(store, "t2", &RunRequest::all());
    store
        .end_run("t2", RunStatus::Failed, SystemTime::now())
        .unwrap();
    assert_eq!(store.run("t2").unwrap().timings, None);
}

fn run_ids_resolve_by_unique_prefix(store: &dyn Storage) {
    for id in ["abc1", "abc2", "def"] {
        begin(store, id, &RunRequest::all());
    }
    assert_eq!(store.run("d").unwrap().id, "def");
    assert_eq!(store.run("abc2").unwrap().id, "abc2");
    let err = store.run("abc").unwrap_err().to_string();
    assert!(err.contains("matches several runs"), "{err}");
    let err = store.run("x").unwrap_err().to_string();
    assert!(err.contains("no run has the id `x`"), "{err}");
}

fn a_run_request_round_trips(store: &dyn Storage) {
    // Static partitions in definition order, which is not text order.
    let request = RunRequest::select("+report and not group:slow")
        .unwrap()
        .partition_range(["eu", "us", "apac"])
        .tag("team", "data")
        .tag("ticket", "OPS-1")
        .with_trigger(Trigger::Backfill {
            backfill_id: "b1".into(),
        })
        .parent(RunId::from("parent-run"))
        .only_stale();
    begin(store, "r1", &request);
    let run = store.run("r1").unwrap();
    assert_eq!(run.request().unwrap(), request);
    assert_eq!(
        run.partitions,
        PartitionScope::Range(vec!["eu".into(), "us".into(), "apac".into()])
    );
    assert_eq!(run.status, RunStatus::Running);
    assert!(run.owner.is_some());
    assert_eq!(
        run.describe(),
        "stale in (+report and not group:slow) partitions eu..apac"
    );
    begin(store, "r2", &RunRequest::all().partition("2024-01-05"));
    assert_eq!(
        store.run("r2").unwrap().partitions,
        PartitionScope::Key("2024-01-05".into())
    );
}

fn run_events_bracket_the_asset_events(store: &dyn Storage) {
    begin(store, "r1", &RunRequest::all());
    store
        .append(&[asset_event("r1", "a", EventKind::Started)], &[])
        .unwrap();
    store
        .end_run("r1", RunStatus::Canceled, SystemTime::now())
        .unwrap();
    let kinds: Vec<EventKind> = store
        .events("r1")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::RunStarted,
            EventKind::Started,
            EventKind::RunEnded(RunStatus::Canceled)
        ]
    );
    let run = store.run("r1").unwrap();
    assert_eq!(run.status, RunStatus::Canceled);
    assert!(run.ended.is_some());
    let ended = store.events("r1").unwrap().pop().unwrap();
    assert_eq!(ended.asset, None);
    assert!(ended.duration.is_some());
}

fn events_are_read_incrementally_by_sequence(store: &dyn Storage) {
    begin(store, "r1", &RunRequest::all());
    begin(store, "r2", &RunRequest::all());
    for i in 0..5 {
        let run = if i % 2 == 0 { "r1" } else { "r2" };
        let mut e = asset_event(run, &format!("a{i}"), EventKind::Materialized);
        e.metadata = vec![("rows".into(), MetadataValue::Int(i))];
        e.inputs = vec![("up".into(), Some(format!("v{i}")))];
        store.append(&[e], &[]).unwrap();
    }
    let all = store.events_since(0, 0).unwrap();
    assert_eq!(all.len(), 7, "two run starts and five asset events");
    let seqs: Vec<u64> = all.iter().map(|e| e.seq.unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // Following from the third event on, two at a time.
    let page = store.events_since(seqs[2], 2).unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(),
        seqs[3..5]
    );
    // One run's events after a sequence number.
    let r1: Vec<EventRecord> = store.events("r1").unwrap();
    assert_eq!(r1.len(), 4);
    let rest = store.events_after("r1", r1[1].seq.unwrap(), 0).unwrap();
    assert_eq!(rest, r1[2..]);
    assert_eq!(
        rest[0].metadata,
        [("rows".to_owned(), MetadataValue::Int(2))]
    );
    assert_eq!(rest[0].inputs, [("up".to_owned(), Some("v2".to_owned()))]);
    assert!(store.events_since(seqs[6], 0).unwrap().is_empty());
}

fn runs_filter_and_page(store: &dyn Storage) {
    let t0 = SystemTime::now() - Duration::from_secs(100);
    for i in 0..6u64 {
        let mut request = RunRequest::all();
        if i % 2 == 0 {
            request = request.tag("kind", "even");
        }
        if i == 5 {
            request = request.with_trigger(Trigger::Reexecution);
        }
        let mut run = RunRecord::new(RunId::from(format!("run{i}")), &request, 1);
        run.started = t0 + Duration::from_secs(i);
        store.begin_run(&run, &[]).unwrap();
    }
    store
        .end_run("run1", RunStatus::Failed, SystemTime::now())
        .unwrap();
    let ids = |filter: &RunFilter| -> Vec<String> {
        store
            .runs(filter)
            .unwrap()
            .into_iter()
            .map(|r| r.id.to_string())
            .collect()
    };
    assert_eq!(
        ids(&RunFilter::default()),
        ["run5", "run4", "run3", "run2", "run1", "run0"]
    );
    assert_eq!(ids(&RunFilter::recent(2)), ["run5", "run4"]);
    let cursor = |id: &str| RunCursor::of(&store.run(id).unwrap());
    assert_eq!(
        ids(&RunFilter::recent(2).after(cursor("run4"))),
        ["run3", "run2"]
    );
    // A cursor is text in URLs, and reads back as itself.
    let text = cursor("run4").to_string();
    assert_eq!(text.parse::<RunCursor>(), Ok(cursor("run4")));
    assert!("run4".parse::<RunCursor>().is_err());
    assert!("12-".parse::<RunCursor>().is_err());
    assert_eq!(
        ids(&RunFilter::default().tag("kind", "even")),
        ["run4", "run2", "run0"]
    );
    assert_eq!(
        ids(&RunFilter::default().status(RunStatus::Failed)),
        ["run1"]
    );
    assert_eq!(ids(&RunFilter::default().trigger("reexecution")), ["run5"]);
    let window = RunFilter {
        since: Some(t0 + Duration::from_secs(2)),
        before: Some(t0 + Duration::from_secs(4)),
        ..RunFilter::default()
    };
    assert_eq!(ids(&window), ["run3", "run2"]);
    // The page after a run that retention has since deleted goes on where it left off.
    let after_run2 = cursor("run2");
    store
        .end_run("run2", RunStatus::Succeeded, SystemTime::now())
        .unwrap();
    let deleted = store
        .apply_retention(Retention {
            logs: Duration::from_secs(97),
            runs: Duration::from_secs(97),
        })
        .unwrap();
    assert!(deleted >= 2, "run1 and run2 are old and ended");
    assert!(store.run("run2").is_err());
    assert_eq!(ids(&RunFilter::default().after(after_run2)), ["run0"]);
    assert_eq!(
        store
            .run("run0")
            .unwrap()
            .tags
            .get("kind")
            .map(String::as_str),
        Some("even")
    );
}

fn materializations_and_partitions_are_kept(store: &dyn Storage) {
    begin(store, "r1", &RunRequest::all());
    let mut a = asset_event("r1", "raw/a", EventKind::Materialized);
    a.data_version = Some("v1".into());
    let mut p = asset_event("r1", "daily", EventKind::Materialized);
    p.partition = Some("2024-01-01".into());
    p.data_version = Some("p1".into());
    let mut f = asset_event("r1", "daily", EventKind::Failed);
    f.partition = Some("2024-01-02".into());
    store.append(&[a, p, f], &[]).unwrap();
    let latest = store.latest_materializations().unwrap();
    assert_eq!(latest["raw/a"].data_version.as_deref(), Some("v1"));
    assert_eq!(store.materializations("raw/a", 5).unwrap()[0].run_id, "r1");
    let mut statuses = store.partition_statuses("daily").unwrap();
    statuses.sort_by(|x, y| x.partition.cmp(&y.partition));
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[0].kind, EventKind::Materialized);
    assert_eq!(statuses[0].data_version.as_deref(), Some("p1"));
    assert_eq!(statuses[1].kind, EventKind::Failed);
    let states = store.asset_states().unwrap();
    assert!(states["raw/a"].last_materialized.is_some());
    // The latest materialization of each partition, with what it consumed; a failed
    // partition has none.
    let mut p2 = asset_event("r1", "daily", EventKind::Materialized);
    p2.partition = Some("2024-01-01".into());
    p2.data_version = Some("p1-again".into());
    p2.code_version = Some("c2".into());
    p2.inputs = vec![("raw/a".into(), Some("v1".into()))];
    store.append(&[p2], &[]).unwrap();
    let latest = store.partition_materializations("daily").unwrap();
    assert_eq!(latest.len(), 1);
    let day = &latest["2024-01-01"];
    assert_eq!(day.data_version.as_deref(), Some("p1-again"));
    assert_eq!(day.code_version.as_deref(), Some("c2"));
    assert_eq!(day.inputs, [("raw/a".to_owned(), Some("v1".to_owned()))]);
}

fn dynamic_partitions_keep_their_order(store: &dyn Storage) {
    let keys = |k: &[&str]| k.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["zed", "amy"]))
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .add_dynamic_partitions("customers", &keys(&["amy", "bob"]))
            .unwrap(),
        1
    );
    assert_eq!(
        store.dynamic_partitions("customers").unwrap(),
        keys(&["zed", "amy", "bob"])
    );
}

fn heartbeats_are_recorded(store: &dyn Storage) {
    let mut run = RunRecord::new(RunId::from("r1"), &RunRequest::all(), 1);
    run.heartbeat = Some(SystemTime::now() - Duration::from_secs(3600));
    store.begin_run(&run, &[]).unwrap();
    let before = store.run("r1").unwrap().heartbeat.unwrap();
    store.heartbeat("r1").unwrap();
    let after = store.run("r1").unwrap().heartbeat.unwrap();
    assert!(after > before + Duration::from_secs(3000));
}

fn retention_keeps_what_staleness_reads(store: &dyn Storage) {
    let old = SystemTime::now() - Duration::from_secs(400 * 86_400);
    // An old run that holds the latest materialization of one partition only, and an old run
    // whose every materialization was superseded.
    for (run, partition) in [("old-day", "2024-01-01"), ("old-gone", "2024-01-02")] {
        let mut record = RunRecord::new(RunId::from(run), &RunRequest::all(), 1);
        record.started = old;
        record.status = RunStatus::Succeeded;
        store.begin_run(&record, &[]).unwrap();
        let mut e = asset_event(run, "daily", EventKind::Materialized);
        e.partition = Some(partition.into());
        e.time = old;
        store.append(&[e], &[]).unwrap();
        store.end_run(run, RunStatus::Succeeded, old).unwrap();
    }
    begin(store, "new", &RunRequest::all());
    let mut e = asset_event("new", "daily", EventKind::Materialized);
    e.partition = Some("2024-01-02".into());
    store.append(&[e], &[]).unwrap();
    store.apply_retention(super::Retention::days(30)).unwrap();
    assert!(
        store.run("old-day").is_ok(),
        "it holds a partition's latest"
    );
    assert!(store.run("old-gone").is_err(), "superseded everywhere");
    let latest = store.partition_materializations("daily").unwrap();
    assert_eq!(latest["2024-01-01"].run_id, "old-day");
    assert_eq!(latest["2024-01-02"].run_id, "new");

    // Old ticks go too, except each instigator's latest and unfinished ones.
    let day = |n: u64| old + Duration::from_secs(n * 86_400);
    for n in 0..3 {
        store.begin_tick("often", day(n)).unwrap();
        store
            .end_tick("often", day(n), TickStatus::Skipped, &[], None)
            .unwrap();
    }
    store.begin_tick("stuck", day(0)).unwrap();
    store.begin_tick("stuck", day(1)).unwrap();
    store
        .end_tick("stuck", day(1), TickStatus::Skipped, &[], None)
        .unwrap();
    // A tick's age is when it was recorded (just now): keep nothing older than now.
    std::thread::sleep(Duration::from_millis(2));
    store
        .apply_retention(super::Retention {
            logs: Duration::ZERO,
            runs: Duration::ZERO,
        })
        .unwrap();
    let kept = |name: &str| -> Vec<SystemTime> {
        store
            .ticks(name, 10)
            .unwrap()
            .iter()
            .map(|t| t.scheduled)
            .collect()
    };
    assert_eq!(kept("often").len(), 1);
    assert_eq!(kept("stuck").len(), 2, "a started tick stays");
}

fn a_queued_run_starts_once(store: &dyn Storage) {
    let request = RunRequest::select("+b")
        .unwrap()
        .partition("2024-01-05")
        .tag("team", "data");
    let queued = RunRecord::queued(RunId::from("q1"), &request);
    store.enqueue_run(&queued).unwrap();
    let stored = store.run("q1").unwrap();
    assert_eq!(stored.status, RunStatus::Queued);
    assert_eq!(stored.owner, None);
    assert_eq!(stored.request().unwrap(), request);
    let waiting = RunFilter::default().status(RunStatus::Queued);
    assert_eq!(store.runs(&waiting).unwrap().len(), 1);

    // Started by its id: the stored request stays, the status and plan size change.
    let start = RunRecord::new(RunId::from("q1"), &request, 3);
    store.begin_run(&start, &["b".to_owned()]).unwrap();
    let stored = store.run("q1").unwrap();
    assert_eq!(stored.status, RunStatus::Running);
    assert_eq!(stored.planned, 3);
    assert_eq!(stored.tags.get("team").map(String::as_str), Some("data"));
    assert!(store.runs(&waiting).unwrap().is_empty());
    // A second launcher cannot start it again.
    let again = store.begin_run(&start, &[]).unwrap_err();
    assert!(
        matches!(again, StorageError::NotQueued { ref status, .. } if status == "running"),
        "{again}"
    );
    // Nor end it as if it were still waiting.
    assert!(
        !store
            .end_queued_run("q1", RunStatus::Canceled, "too late")
            .unwrap()
    );

    // A queued run that cannot start ends with the reason.
    store
        .enqueue_run(&RunRecord::queued(RunId::from("q2"), &request))
        .unwrap();
    assert!(
        store
            .end_queued_run("q2", RunStatus::Failed, "no asset `b`")
            .unwrap()
    );
    assert_eq!(store.run("q2").unwrap().status, RunStatus::Failed);
    let events = store.events("q2").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message.as_deref(), Some("no asset `b`"));
}
