//! Schedules: their ticks are Dagster's (checked against ticks Dagster 1.13 generated, in
//! `tests/data/cron/`), asset jobs and schedules register like assets, and the CLI lists them.

use orch::CronSchedule;
use orch::jiff;
use orch::prelude::*;

/// One generated case: a cron string, a zone, the instant ticks come after, and Dagster's ticks.
struct Case {
    cron: String,
    zone: String,
    after: jiff::Timestamp,
    ticks: Vec<jiff::Timestamp>,
}

fn dagster_cases() -> Vec<Case> {
    let text = include_str!("data/cron/dagster_ticks.txt");
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix("case ") {
            let parts: Vec<&str> = header.split('|').collect();
            cases.push(Case {
                cron: parts[0].to_owned(),
                zone: parts[1].to_owned(),
                after: parts[2].parse().expect("an RFC 3339 instant"),
                ticks: Vec::new(),
            });
        } else {
            let tick = line.parse().expect("an RFC 3339 instant");
            cases.last_mut().expect("a case first").ticks.push(tick);
        }
    }
    cases
}

/// The one known difference: Dagster's single-minute hourly schedules step one hour of
/// elapsed time per tick, and in Lord Howe (whose clocks move by 30 minutes) they drift to the
/// other half hour at each change; which half they start on even depends on the day Dagster
/// runs (`has_nonzero_minute_offset` reads the zone's offset *now*). orch keeps the wall-clock
/// minute the cron string names.
fn dagster_drifts(case: &Case) -> bool {
    case.zone == "Australia/Lord_Howe"
        && matches!(case.cron.as_str(), "0 * * * *" | "30 * * * *" | "@hourly")
}

#[test]
fn ticks_are_the_instants_dagster_computes_across_daylight_saving_changes() {
    let cases = dagster_cases();
    assert!(cases.len() > 300, "the fixture has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let schedule = CronSchedule::new(&case.cron, &case.zone).unwrap();
        let ours: Vec<jiff::Timestamp> = schedule
            .ticks_after(case.after)
            .take(case.ticks.len())
            .map(|z| z.timestamp())
            .collect();
        if dagster_drifts(case) {
            // orch keeps the minute the cron string names, on the wall clock.
            let minute = if case.cron.starts_with("30") { 30 } else { 0 };
            for t in &ours {
                assert_eq!(t.to_zoned(schedule.zone().clone()).minute(), minute);
            }
            continue;
        }
        compared += ours.len();
        if ours != case.ticks {
            let at = ours
                .iter()
                .zip(&case.ticks)
                .position(|(a, b)| a != b)
                .unwrap_or(ours.len().min(case.ticks.len()));
            let show = |t: Option<&jiff::Timestamp>| {
                t.map_or("none".to_owned(), |t| {
                    t.to_zoned(schedule.zone().clone())
                        .strftime("%Y-%m-%dT%H:%M%:z")
                        .to_string()
                })
            };
            failures.push(format!(
                "`{}` in {} after {}: tick {at} is {} (Dagster: {})",
                case.cron,
                case.zone,
                case.after,
                show(ours.get(at)),
                show(case.ticks.get(at)),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Dagster ({compared} ticks compared):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[asset(group = "sources")]
fn orders_raw() -> u32 {
    3
}

#[asset(group = "transforms")]
fn orders_cleaned(orders_raw: &u32) -> u32 {
    orders_raw * 2
}

#[asset(group = "reports")]
fn report(orders_cleaned: &u32) -> String {
    orders_cleaned.to_string()
}

asset_job!(
    /// Sources and transforms.
    daily_refresh,
    "group:sources | group:transforms"
);

schedule!(
    nightly,
    job = daily_refresh,
    cron = "30 2 * * *",
    timezone = "Europe/Paris"
);
schedule!(
    reports,
    select = "report",
    cron = "0 * * * *",
    default_status = running,
    catchup = 2
);

#[test]
fn jobs_and_schedules_register_like_assets_and_make_tagged_run_requests() {
    use orch::automation::{JOB_TAG, SCHEDULE_TAG, automation};
    let automation = automation().unwrap();
    let job = automation.job("daily_refresh").unwrap();
    assert_eq!(job.selection(), "group:sources | group:transforms");
    assert_eq!(job.description(), Some("Sources and transforms."));
    assert!(job.location().file.ends_with("schedules.rs"));

    let (nightly, cron) = automation.schedule("nightly").unwrap();
    assert_eq!(nightly.target(), orch::ScheduleTarget::Job("daily_refresh"));
    assert_eq!(nightly.default_status(), orch::DefaultStatus::Stopped);
    assert_eq!(nightly.catchup(), 5);
    // Its ticks are wall-clock 02:30 in Paris, and the spring gap runs at 03:00.
    let after: jiff::Timestamp = "2026-03-27T12:00:00Z".parse().unwrap();
    let ticks: Vec<String> = cron
        .ticks_after(after)
        .take(3)
        .map(|t| t.strftime("%d %H:%M").to_string())
        .collect();
    assert_eq!(ticks, ["28 02:30", "29 03:00", "30 02:30"]);

    let (reports, _) = automation.schedule("reports").unwrap();
    assert_eq!(reports.default_status(), orch::DefaultStatus::Running);
    assert_eq!(reports.catchup(), 2);

    // A tick's run request: the job's selection, tagged with the job and the schedule.
    let request = automation
        .schedule_request(nightly, jiff::Timestamp::now())
        .unwrap();
    assert_eq!(
        request.target().to_string(),
        "group:sources or group:transforms"
    );
    assert_eq!(
        request.tags().get(JOB_TAG).map(String::as_str),
        Some("daily_refresh")
    );
    assert_eq!(
        request.tags().get(SCHEDULE_TAG).map(String::as_str),
        Some("nightly")
    );
    // It runs what the job selects, and nothing else.
    let result = Instance::ephemeral().submit(request).wait().unwrap();
    let ran: Vec<&str> = result.outcomes().iter().map(|o| o.key.name()).collect();
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert!(result.outcome("orders_cleaned").is_some() && result.outcome("report").is_none());
}

schedule!(
    careful,
    select = "orders_raw",
    cron = "0 6 * * *",
    skip_if_running = true
);

/// A tick whose process died after storing the tick is finished by the next evaluation: its
/// run is queued once, with the tick and the cursor, and starting a queued run is once too.
#[test]
fn a_tick_queues_its_run_once_and_the_run_starts_once() {
    use orch::automation::{TICK_TAG, TickOutcome, automation, request_tick};
    use orch::storage::{RunFilter, RunRecord, RunStatus, StorageError, TickStatus};
    let automation = automation().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let store = instance.storage();
    let (nightly, _) = automation.schedule("nightly").unwrap();
    let tick_runs = |at: jiff::Timestamp| {
        store
            .runs(&RunFilter::default().tag(TICK_TAG, format!("nightly@{at}")))
            .unwrap()
    };

    // Died after storing the tick, before committing it: the next evaluation queues its run,
    // once, and moves the cursor in the same transaction.
    let first: jiff::Timestamp = "2026-03-28T01:30:00Z".parse().unwrap();
    store.begin_tick("nightly", first.into()).unwrap();
    let outcome = request_tick(
        &instance,
        automation,
        nightly,
        first,
        Some(("schedule:nightly", Some("c1"))),
    )
    .unwrap();
    let TickOutcome::Requested(ids) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(ids.len(), 1);
    assert_eq!(
        store.cursor("schedule:nightly").unwrap().as_deref(),
        Some("c1")
    );
    let queued = tick_runs(first);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].status, RunStatus::Queued);
    assert_eq!(queued[0].trigger.to_string(), "schedule nightly");
    let again = request_tick(&instance, automation, nightly, first, None).unwrap();
    assert!(matches!(again, TickOutcome::AlreadyDone(_)), "{again:?}");
    assert_eq!(tick_runs(first).len(), 1);

    // The queued run starts once: of two launchers racing, one runs it and the other is
    // refused (at once, or when it tries to record the start).
    let results: Vec<_> = [
        instance.launch_queued(ids[0].as_str()),
        instance.launch_queued(ids[0].as_str()),
    ]
    .into_iter()
    .map(|launched| launched.and_then(orch::RunHandle::wait))
    .collect();
    let ran = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(orch::MaterializeError::Storage(
                    StorageError::NotQueued { .. }
                ))
            )
        })
        .count();
    assert_eq!((ran, refused), (1, 1), "{results:?}");
    assert!(results.iter().flatten().all(orch::RunResult::success));
    assert_eq!(tick_runs(first)[0].status, RunStatus::Succeeded);

    // skip_if_running: a run of the schedule still going (or queued) skips the tick, with
    // the reason.
    let (careful, _) = automation.schedule("careful").unwrap();
    let going = automation
        .schedule_request(careful, jiff::Timestamp::now())
        .unwrap();
    store
        .begin_run(&RunRecord::new(orch::RunId::new(), &going, 1), &[])
        .unwrap();
    let outcome = request_tick(&instance, automation, careful, first, None).unwrap();
    let TickOutcome::Skipped(reason) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.starts_with("skip_if_running: run "), "{reason}");
    assert_eq!(
        store.ticks("careful", 1).unwrap()[0].status,
        TickStatus::Skipped
    );
}

#[test]
fn a_job_whose_selection_selects_nothing_is_a_startup_error() {
    let graph = orch::definitions().unwrap();
    let job: &'static orch::JobDef = Box::leak(Box::new(orch::__private::JobDef::new(
        "empty",
        "group:nothing_here",
        None,
        orch::__private::SourceLocation {
            module: "m",
            file: "f.rs",
            line: 1,
        },
    )));
    let errors =
        orch::automation::Automation::check(graph, vec![job, job], Vec::new()).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text[0].starts_with("asset job `empty` is declared twice"),
        "{text:?}"
    );
    assert!(
        text[1].starts_with("asset job `empty` (at f.rs:1 (m)): "),
        "{text:?}"
    );
}

// ---- partitioned schedules ------------------------------------------------------------------

#[asset(group = "events", partitions = daily("2026-03-01"))]
fn daily_events(ctx: &AssetContext) -> String {
    ctx.partition_key().unwrap_or_default().to_owned()
}

#[asset(group = "regions", partitions = static_partitions(["eu", "us"]))]
fn regional() -> u32 {
    1
}

schedule!(
    events_at_one,
    select = "daily_events",
    cron = "0 1 * * *",
    default_status = running,
    catchup = 3
);

/// A schedule over daily partitions runs, at each tick, the day that ended last; after
/// downtime it catches up on its `catchup` latest ticks (each its own partition, oldest
/// first), and passes over the rest.
#[test]
fn a_partitioned_schedule_runs_the_partition_that_ended_and_catches_up_to_its_limit() {
    use orch::automation::{Evaluated, TickOutcome, automation, evaluate_schedules};
    use orch::storage::RunFilter;
    let automation = automation().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap();
    let ours = |evaluations: Vec<orch::automation::ScheduleEvaluation>| {
        evaluations
            .into_iter()
            .filter(|e| e.schedule == "events_at_one")
            .map(|e| e.evaluated)
            .collect::<Vec<_>>()
    };
    let queued_keys = || {
        let mut runs = instance
            .storage()
            .runs(&RunFilter::default().tag("orch/schedule", "events_at_one"))
            .unwrap();
        runs.reverse();
        runs.iter()
            .map(|r| r.partitions.keys().join(","))
            .collect::<Vec<_>>()
    };

    // Before its first partition ended: the tick is skipped, saying why.
    let first =
        ours(evaluate_schedules(&instance, automation, at("2026-02-28T12:00:00Z")).unwrap());
    assert!(matches!(first[..], [Evaluated::Started { .. }]));
    let early =
        ours(evaluate_schedules(&instance, automation, at("2026-03-01T12:00:00Z")).unwrap());
    let [
        Evaluated::Ticked {
            outcome: TickOutcome::Skipped(why),
            ..
        },
    ] = &early[..]
    else {
        panic!("{early:?}")
    };
    assert!(
        why.starts_with("no partition of its assets (daily from 2026-03-01"),
        "{why}"
    );

    // The next morning: yesterday's partition.
    ours(evaluate_schedules(&instance, automation, at("2026-03-02T01:00:00Z")).unwrap());
    assert_eq!(queued_keys(), ["2026-03-01"]);

    // Down for five days: five ticks due (the 3rd to the 7th), the latest three run.
    let caught =
        ours(evaluate_schedules(&instance, automation, at("2026-03-07T12:00:00Z")).unwrap());
    assert_eq!(caught.len(), 3, "{caught:?}");
    for e in &caught {
        assert!(
            matches!(
                e,
                Evaluated::Ticked {
                    missed: 2,
                    outcome: TickOutcome::Requested(_),
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(
        queued_keys(),
        ["2026-03-01", "2026-03-04", "2026-03-05", "2026-03-06"]
    );
    // Evaluated again as of the same instant: nothing more.
    let again =
        ours(evaluate_schedules(&instance, automation, at("2026-03-07T12:00:00Z")).unwrap());
    assert!(
        matches!(again[..], [Evaluated::NothingDue { .. }]),
        "{again:?}"
    );
    assert_eq!(queued_keys().len(), 4);
}

#[test]
fn a_schedule_over_static_partitions_is_a_startup_error() {
    let graph = orch::definitions().unwrap();
    let schedule: &'static orch::ScheduleDef = Box::leak(Box::new(orch::ScheduleDef::from_parts(
        orch::__private::ScheduleParts {
            name: "regions_hourly",
            target: orch::ScheduleTarget::Selection("regional"),
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
    )));
    let errors =
        orch::automation::Automation::check(graph, Vec::new(), vec![schedule]).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.starts_with("schedule `regions_hourly` (at f.rs:1 (m)): asset `regional` has static: eu, us partitions, and a tick cannot choose which to run"),
        "{text}"
    );
}

/// A schedule with logic: decides per tick (Dagster's `@schedule` function).
fn decide_by_hour(ctx: &ScheduleContext) -> Result<ScheduleDecision, BoxError> {
    let hour = ctx.scheduled().hour();
    match hour {
        9 => Ok(ScheduleDecision::skip(
            "the warehouse is loading until 10:00",
        )),
        13 => panic!("a bug at lunch"),
        15 => Err("the holiday calendar is unreachable".into()),
        // Two runs at 17:00, each once per key ever; one at every other hour.
        17 => Ok(ScheduleDecision::runs([
            orch::SensorRun::keyed(format!("eu-{}", ctx.scheduled().date())).tag("region", "eu"),
            orch::SensorRun::keyed(format!("us-{}", ctx.scheduled().date())).tag("region", "us"),
        ])),
        _ => Ok(ScheduleDecision::run()),
    }
}

schedule!(
    decided,
    select = "orders_raw",
    cron = "0 * * * *",
    timezone = "Europe/Paris",
    decide = decide_by_hour
);

#[test]
fn a_schedule_with_logic_decides_each_tick_and_its_failures_are_failed_ticks() {
    use orch::automation::{TICK_TAG, TickOutcome, automation, request_tick};
    use orch::storage::{RunFilter, TickStatus};
    let automation = automation().unwrap();
    let (schedule, _) = automation.schedule("decided").unwrap();
    assert!(schedule.decide().is_some());
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::open(dir.path()).unwrap();
    // Paris wall-clock hours in winter (UTC+1).
    let tick = |paris: &str| {
        let at: jiff::Timestamp = format!("2026-02-10T{paris}+01:00").parse().unwrap();
        request_tick(&instance, automation, schedule, at, None).unwrap()
    };
    let ran = |outcome: &TickOutcome| match outcome {
        TickOutcome::Requested(ids) => ids.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ran(&tick("08:00:00")), 1);
    assert!(
        matches!(tick("09:00:00"), TickOutcome::Skipped(r) if r == "the warehouse is loading until 10:00")
    );
    match tick("13:00:00") {
        TickOutcome::Failed(reason) => {
            assert_eq!(reason, "its decide function panicked: a bug at lunch")
        }
        other => panic!("{other:?}"),
    }
    match tick("15:00:00") {
        TickOutcome::Failed(reason) => assert_eq!(
            reason,
            "its decide function returned an error: the holiday calendar is unreachable"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(ran(&tick("17:00:00")), 2);
    // A failed tick is recorded as failed and not evaluated again.
    let store = instance.storage();
    let failed: Vec<_> = store
        .ticks("decided", 100)
        .unwrap()
        .into_iter()
        .filter(|t| t.status == TickStatus::Failure)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(matches!(tick("13:00:00"), TickOutcome::AlreadyDone(_)));
    // The 17:00 runs carry their tags, run keys and the tick; the keys are launched once.
    let runs = store
        .runs(&RunFilter::default().tag(TICK_TAG, "decided@2026-02-10T16:00:00Z"))
        .unwrap();
    let mut regions: Vec<&str> = runs.iter().map(|r| r.tags["region"].as_str()).collect();
    regions.sort();
    assert_eq!(regions, ["eu", "us"]);
    assert!(
        runs.iter()
            .all(|r| r.tags["orch/run_key"].ends_with("-2026-02-10"))
    );
    // Another tick in the same hour asks for the same keys: nothing is launched again.
    assert_eq!(ran(&tick("17:30:00")), 0, "run keys are once, ever");
}

fn hangs(_ctx: &ScheduleContext) -> ScheduleDecision {
    std::thread::sleep(std::time::Duration::from_secs(30));
    ScheduleDecision::run()
}

schedule!(
    stuck,
    select = "orders_raw",
    cron = "0 * * * *",
    decide = hangs,
    timeout = "100ms"
);

/// A `decide` function that hangs fails its tick after its time-out, and the caller (the
/// daemon) goes on.
#[test]
fn a_decide_function_that_hangs_fails_its_tick_after_its_time_out() {
    use orch::automation::{TickOutcome, automation, request_tick};
    let automation = automation().unwrap();
    let (schedule, _) = automation.schedule("stuck").unwrap();
    let instance = Instance::ephemeral();
    let at: jiff::Timestamp = "2026-02-10T08:00:00Z".parse().unwrap();
    // (It sleeps 30 s: a tick that waited for it would not fail with this reason.)
    match request_tick(&instance, automation, schedule, at, None).unwrap() {
        TickOutcome::Failed(reason) => assert_eq!(
            reason,
            "its decide function did not return within its time-out of 100ms (set `timeout` on the schedule)"
        ),
        other => panic!("{other:?}"),
    }
}
