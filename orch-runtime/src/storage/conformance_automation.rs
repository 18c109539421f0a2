//! The storage conformance suite's automation part: what schedules, sensors, declarative
//! automation, checks, freshness and the daemon's lease need of a backend (see
//! `conformance.rs`, which runs these with the rest).

use std::time::{Duration, SystemTime};

use orch_core::RunId;

use super::{
    EventKind, EventRecord, LeaseOutcome, RunFilter, RunRecord, RunStatus, Storage, TickCommit,
    TickStatus,
};
use crate::run::RunRequest;

use super::conformance::{asset_event, begin};

pub(super) fn automation_state_is_kept(store: &dyn Storage) {
    use super::InstigatorStatus::{Running, Stopped};
    assert!(store.instigator_states().unwrap().is_empty());
    store
        .set_instigator_status("nightly", "schedule", Running)
        .unwrap();
    store
        .set_instigator_status("hourly", "schedule", Stopped)
        .unwrap();
    store
        .set_instigator_status("nightly", "schedule", Stopped)
        .unwrap();
    let states = store.instigator_states().unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(states["nightly"].status, Stopped);
    assert_eq!(states["nightly"].kind, "schedule");
    assert_eq!(states["hourly"].status, Stopped);
    assert!(!store.automation_paused().unwrap());
    store.set_automation_paused(true).unwrap();
    assert!(store.automation_paused().unwrap());
    store.set_automation_paused(false).unwrap();
    assert!(!store.automation_paused().unwrap());
}

pub(super) fn a_tick_is_stored_once(store: &dyn Storage) {
    use super::TickStatus;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let (tick, created) = store.begin_tick("nightly", at).unwrap();
    assert!(created);
    assert_eq!(tick.status, TickStatus::Started);
    assert_eq!(tick.scheduled, at);
    // The same instant again: the stored tick, not a new one.
    let (again, created) = store.begin_tick("nightly", at).unwrap();
    assert!(!created);
    assert_eq!(again.started, tick.started);
    store
        .end_tick(
            "nightly",
            at,
            TickStatus::Success,
            &[RunId::from("r1")],
            None,
        )
        .unwrap();
    let later = at + Duration::from_secs(86_400);
    store.begin_tick("nightly", later).unwrap();
    store
        .end_tick(
            "nightly",
            later,
            TickStatus::Skipped,
            &[],
            Some("a run is going"),
        )
        .unwrap();
    store.begin_tick("hourly", at).unwrap();
    let ticks = store.ticks("nightly", 10).unwrap();
    assert_eq!(ticks.len(), 2);
    assert_eq!(ticks[0].scheduled, later);
    assert_eq!(ticks[0].status, TickStatus::Skipped);
    assert_eq!(ticks[0].reason.as_deref(), Some("a run is going"));
    assert_eq!(ticks[1].status, TickStatus::Success);
    assert_eq!(ticks[1].run_ids, [RunId::from("r1")]);
    assert!(ticks[1].ended.is_some());
    assert_eq!(
        store.begin_tick("nightly", at).unwrap().0.status,
        TickStatus::Success
    );
}

pub(super) fn cursors_are_kept(store: &dyn Storage) {
    assert_eq!(store.cursor("schedule:nightly").unwrap(), None);
    store.set_cursor("schedule:nightly", Some("a")).unwrap();
    store.set_cursor("schedule:nightly", Some("b")).unwrap();
    store.set_cursor("sensor:files", Some("c")).unwrap();
    assert_eq!(
        store.cursor("schedule:nightly").unwrap().as_deref(),
        Some("b")
    );
    store.set_cursor("schedule:nightly", None).unwrap();
    assert_eq!(store.cursor("schedule:nightly").unwrap(), None);
    assert_eq!(store.cursor("sensor:files").unwrap().as_deref(), Some("c"));
}

pub(super) fn a_tick_commits_its_runs_and_cursor_at_once(store: &dyn Storage) {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let request = RunRequest::all().tag("orch/schedule", "nightly");
    let runs = [
        RunRecord::queued(RunId::from("t1"), &request),
        RunRecord::queued(RunId::from("t2"), &request),
    ];
    let commit = TickCommit {
        instigator: "nightly",
        scheduled: at,
        status: TickStatus::Success,
        reason: None,
        runs: &runs,
        cursor: Some(("schedule:nightly", Some("c1"))),
    };
    // No started tick: nothing is committed.
    assert_eq!(store.commit_tick(&commit).unwrap(), None);
    assert!(store.runs(&RunFilter::default()).unwrap().is_empty());

    store.begin_tick("nightly", at).unwrap();
    assert_eq!(
        store.commit_tick(&commit).unwrap(),
        Some(vec![RunId::from("t1"), RunId::from("t2")])
    );
    let tick = &store.ticks("nightly", 1).unwrap()[0];
    assert_eq!(tick.status, TickStatus::Success);
    assert_eq!(tick.run_ids, [RunId::from("t1"), RunId::from("t2")]);
    assert_eq!(
        store.cursor("schedule:nightly").unwrap().as_deref(),
        Some("c1")
    );
    let queued = store
        .runs(&RunFilter::default().status(RunStatus::Queued))
        .unwrap();
    assert_eq!(queued.len(), 2);

    // Committed once: a second commit (another process, or a retry) changes nothing.
    let late = [RunRecord::queued(RunId::from("t3"), &request)];
    let twice = TickCommit {
        runs: &late,
        cursor: Some(("schedule:nightly", Some("c2"))),
        ..commit
    };
    assert_eq!(store.commit_tick(&twice).unwrap(), None);
    assert_eq!(store.runs(&RunFilter::default()).unwrap().len(), 2);
    assert_eq!(
        store.cursor("schedule:nightly").unwrap().as_deref(),
        Some("c1")
    );
}

pub(super) fn a_lease_has_one_holder_until_it_lapses(store: &dyn Storage) {
    let long = Duration::from_secs(60);
    assert_eq!(store.lease("daemon").unwrap(), None);
    assert_eq!(
        store
            .acquire_lease("daemon", "a", "daemon a", long)
            .unwrap(),
        LeaseOutcome::Acquired
    );
    // Held: the second holder is told who holds it.
    match store
        .acquire_lease("daemon", "b", "daemon b", long)
        .unwrap()
    {
        LeaseOutcome::Held(holder) => {
            assert_eq!(holder.id, "a");
            assert_eq!(holder.description, "daemon a");
        }
        other => panic!("{other:?}"),
    }
    // The holder renews it; the other cannot.
    assert!(store.renew_lease("daemon", "a", long).unwrap());
    assert!(!store.renew_lease("daemon", "b", long).unwrap());
    // Lapsed (a zero-length renewal): the next one takes it over, and the old holder learns
    // it lost it at its next renewal.
    assert!(store.renew_lease("daemon", "a", Duration::ZERO).unwrap());
    std::thread::sleep(Duration::from_millis(2));
    assert_eq!(
        store
            .acquire_lease("daemon", "b", "daemon b", long)
            .unwrap(),
        LeaseOutcome::Acquired
    );
    assert!(!store.renew_lease("daemon", "a", long).unwrap());
    assert_eq!(store.lease("daemon").unwrap().unwrap().id, "b");
    // Released by its holder only.
    store.release_lease("daemon", "a").unwrap();
    assert!(store.lease("daemon").unwrap().is_some());
    store.release_lease("daemon", "b").unwrap();
    assert_eq!(store.lease("daemon").unwrap(), None);
}

pub(super) fn a_run_key_is_launched_once_ever(store: &dyn Storage) {
    let keyed = |id: &str, key: &str| {
        RunRecord::queued(
            RunId::from(id),
            &RunRequest::all().tag(super::RUN_KEY_TAG, key),
        )
    };
    let tick = |n: u64, runs: &[RunRecord]| {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + n);
        store.begin_tick("files", at).unwrap();
        store
            .commit_tick(&TickCommit {
                instigator: "files",
                scheduled: at,
                status: TickStatus::Success,
                reason: None,
                runs,
                cursor: None,
            })
            .unwrap()
            .unwrap()
    };
    assert_eq!(
        tick(0, &[keyed("k1", "a.csv"), keyed("k2", "b.csv")]),
        [RunId::from("k1"), RunId::from("k2")]
    );
    // `a.csv` again (and a new file): only the new one.
    assert_eq!(
        tick(1, &[keyed("k3", "a.csv"), keyed("k4", "c.csv")]),
        [RunId::from("k4")]
    );
    // Even after its run is gone (retention), the key stays launched.
    store
        .apply_retention(super::Retention {
            logs: Duration::ZERO,
            runs: Duration::ZERO,
        })
        .unwrap();
    assert!(tick(2, &[keyed("k5", "a.csv")]).is_empty());
    // Another instigator's keys are its own.
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    store.begin_tick("other", at).unwrap();
    let other = [keyed("k6", "a.csv")];
    let queued = store
        .commit_tick(&TickCommit {
            instigator: "other",
            scheduled: at,
            status: TickStatus::Success,
            reason: None,
            runs: &other,
            cursor: None,
        })
        .unwrap();
    assert_eq!(queued, Some(vec![RunId::from("k6")]));
}

pub(super) fn check_results_are_read_latest_per_check(store: &dyn Storage) {
    use super::CheckRecord;
    let check = |run: &str, asset: &str, name: &str, passed: bool| EventRecord {
        check: Some(Box::new(CheckRecord {
            name: name.to_owned(),
            passed,
            severity: orch_core::CheckSeverity::Error,
            blocking: true,
        })),
        message: Some(format!("{name} in {run}")),
        metadata: vec![("rows".to_owned(), orch_core::MetadataValue::Int(3))],
        ..asset_event(run, asset, EventKind::CheckEvaluated)
    };
    let request = RunRequest::all();
    begin(store, "c1", &request);
    begin(store, "c2", &request);
    store
        .append(
            &[
                check("c1", "orders", "positive", true),
                check("c1", "orders", "unique", true),
                check("c1", "users", "positive", true),
            ],
            &[],
        )
        .unwrap();
    store
        .append(&[check("c2", "orders", "positive", false)], &[])
        .unwrap();
    let latest = store.check_results(Some("orders"), true, 0).unwrap();
    let seen: Vec<(&str, bool, &str)> = latest
        .iter()
        .map(|e| {
            let c = e.check.as_ref().unwrap();
            (c.name.as_str(), c.passed, e.run_id.as_str())
        })
        .collect();
    assert_eq!(seen, [("positive", false, "c2"), ("unique", true, "c1")]);
    assert_eq!(latest[0].message.as_deref(), Some("positive in c2"));
    assert_eq!(latest[0].metadata.len(), 1);
    assert_eq!(store.check_results(None, true, 0).unwrap().len(), 3);
    let history = store.check_results(Some("orders"), false, 2).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].run_id.as_str(), "c2", "newest first");
}

pub(super) fn freshness_changes_keep_each_assets_latest(store: &dyn Storage) {
    use super::FreshnessChange;
    use orch_core::FreshnessState::{Fail, Pass, Warn};
    let change = |asset: &str, previous, state, secs: u64| FreshnessChange {
        asset: asset.to_owned(),
        state,
        previous,
        detail: format!("{asset} {state}"),
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
    };
    store
        .record_freshness(&[change("a", None, Pass, 10), change("b", None, Pass, 10)])
        .unwrap();
    store
        .record_freshness(&[change("a", Some(Pass), Warn, 20)])
        .unwrap();
    store
        .record_freshness(&[change("a", Some(Warn), Fail, 30)])
        .unwrap();
    let now = store.freshness().unwrap();
    assert_eq!(now["a"].state, Fail);
    assert_eq!(now["a"].previous, Some(Warn));
    assert_eq!(now["b"].state, Pass);
    let a: Vec<_> = store
        .freshness_changes(Some("a"), 0)
        .unwrap()
        .iter()
        .map(|c| c.state)
        .collect();
    assert_eq!(a, [Fail, Warn, Pass]);
    // Retention drops old changes but each asset's latest, its current state.
    store
        .apply_retention(super::Retention {
            logs: Duration::ZERO,
            runs: Duration::ZERO,
        })
        .unwrap();
    assert_eq!(store.freshness_changes(Some("a"), 0).unwrap().len(), 1);
    assert_eq!(store.freshness().unwrap()["a"].state, Fail);
    assert_eq!(store.freshness().unwrap()["b"].state, Pass);
}

pub(super) fn an_automation_commit_queues_and_stores_at_once(store: &dyn Storage) {
    use super::{AUTOMATION_TICKS, AutomationAssetRecord, AutomationCommit};
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let record = |asset: &str, run: Option<&str>| AutomationAssetRecord {
        asset: asset.to_owned(),
        condition: "eager()".to_owned(),
        since_seq: 1,
        since: at,
        requested_seq: run.map(|_| 7),
        requested: run.map(|_| at),
        requested_run: run.map(RunId::from),
        evaluated: at,
        result: run.is_some(),
        tree: "{}".to_owned(),
    };
    let runs = [RunRecord::queued(RunId::from("auto1"), &RunRequest::all())];
    let assets = [record("b", Some("auto1")), record("c", None)];
    store
        .commit_automation(&AutomationCommit {
            evaluated: at,
            runs: &runs,
            assets: &assets,
        })
        .unwrap();
    assert_eq!(store.run("auto1").unwrap().status, RunStatus::Queued);
    assert_eq!(store.automation_asset("b").unwrap().unwrap(), assets[0]);
    assert_eq!(store.automation_assets().unwrap().len(), 2);
    // A second evaluation as of the same instant shares its tick.
    let more = [RunRecord::queued(RunId::from("auto2"), &RunRequest::all())];
    store
        .commit_automation(&AutomationCommit {
            evaluated: at,
            runs: &more,
            assets: &[record("c", Some("auto2"))],
        })
        .unwrap();
    let ticks = store.ticks(AUTOMATION_TICKS, 10).unwrap();
    assert_eq!(ticks.len(), 1);
    assert_eq!(
        ticks[0].run_ids,
        [RunId::from("auto1"), RunId::from("auto2")]
    );
    assert!(store.automation_asset("c").unwrap().unwrap().result);
}
