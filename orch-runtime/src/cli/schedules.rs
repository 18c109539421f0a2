//! `jobs`, `schedules` and `schedule next`: the registered asset jobs and schedules, and when
//! a schedule ticks.

use clap::Subcommand;
use jiff::Timestamp;

use super::table::print_rows;
use super::{EXIT_ASSET_FAILED, EXIT_OK, Env, fail_usage};
use crate::automation::{Automation, TickDecision, TickOutcome, automation, target_text};
use crate::materialize::definitions;
use crate::storage::InstigatorStatus;

/// `schedule ...`.
#[derive(Subcommand, Debug)]
pub(super) enum ScheduleCommand {
    /// The next ticks of a schedule, one RFC 3339 instant (in its time zone) per line.
    Next {
        /// The schedule's name.
        name: String,
        /// How many ticks.
        #[arg(long, short = 'n', default_value_t = 5)]
        count: usize,
        /// Ticks after this instant (RFC 3339, e.g. `2026-03-28T12:00:00Z`; default now).
        #[arg(long)]
        after: Option<String>,
    },
    /// Start a schedule: its ticks run (persisted in the run store; the daemon reads it).
    Start {
        /// The schedule's name.
        name: String,
    },
    /// Stop a schedule: its ticks do not run.
    Stop {
        /// The schedule's name.
        name: String,
    },
    /// Run one tick now and record it: the latest tick at or before `--at` (default now). A
    /// tick runs at most once: again, it says what it launched before.
    Tick {
        /// The schedule's name.
        name: String,
        /// The tick is the latest one at or before this instant (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// The schedule's recorded ticks, newest first: instant, status, runs, reason.
    History {
        /// The schedule's name.
        name: String,
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
    },
    /// What the schedule's next tick after `--at` would run: the run request and its plan.
    /// Launches nothing.
    Preview {
        /// The schedule's name.
        name: String,
        /// The tick considered is the first one after this instant (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
    },
}

/// `automation ...`.
#[derive(Subcommand, Debug)]
pub(super) enum AutomationCommand {
    /// Pause every schedule, sensor and automation condition, store-wide.
    Pause,
    /// Resume them.
    Resume,
    /// Why declarative automation did or did not request an asset: its condition's tree as
    /// the latest evaluation found it.
    Explain {
        /// The asset key.
        asset: String,
    },
}

/// The checked jobs and schedules, or the startup errors (asset definitions first).
pub(super) fn checked() -> Result<&'static Automation, String> {
    if let Err(errors) = definitions() {
        return Err(errors.to_string());
    }
    automation().map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })
}

/// "`NAME` is not a schedule (did you mean `X`?); `schedules` lists them".
pub(super) fn unknown(kind: &str, name: &str, names: &[&str], list: &str) -> String {
    match orch_core::__private::closest(name, names) {
        Some(near) => {
            format!("`{name}` is not {kind}: did you mean `{near}`? (`{list}` lists them)")
        }
        None => format!("`{name}` is not {kind}; `{list}` lists them"),
    }
}

/// `jobs`: each asset job, its selection, how many assets it selects, its description.
pub(super) fn print_jobs() -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    let graph = definitions().expect("checked above");
    if automation.jobs().is_empty() {
        if crate::jobs::op_jobs().is_ok_and(<[_]>::is_empty) {
            println!(
                "no jobs: declare an asset job with `asset_job!(name, \"selection\")`, or an op job with `#[job]`"
            );
        }
        return EXIT_OK;
    }
    let mut rows = vec![vec![
        "JOB".to_owned(),
        "SELECTION".to_owned(),
        "ASSETS".to_owned(),
        "SCHEDULES".to_owned(),
        "DESCRIPTION".to_owned(),
    ]];
    for job in automation.jobs() {
        let assets = job
            .selection()
            .parse::<orch_core::AssetSelection>()
            .ok()
            .and_then(|s| s.resolve(graph).ok())
            .map_or(0, |ids| ids.len());
        let schedules: Vec<&str> = automation
            .schedules()
            .iter()
            .filter(|(s, _)| s.target() == orch_core::ScheduleTarget::Job(job.name()))
            .map(|(s, _)| s.name())
            .collect();
        rows.push(vec![
            job.name().to_owned(),
            job.selection().to_owned(),
            assets.to_string(),
            if schedules.is_empty() {
                "-".to_owned()
            } else {
                schedules.join(", ")
            },
            job.description().unwrap_or("").to_owned(),
        ]);
    }
    print_rows(&rows);
    EXIT_OK
}

/// `schedules`: each schedule, what it runs, its cron string and zone, its default status and
/// its next tick in its zone.
pub(super) fn print_schedules(env: &Env<'_>) -> u8 {
    let automation = match checked() {
        Ok(a) => a,
        Err(e) => return fail_usage(&e),
    };
    // The stored statuses, if there is a store (listing never creates one).
    let stored = env.existing().and_then(|found| match found {
        Some(i) => {
            let s = i.storage();
            Ok((
                s.instigator_states().map_err(|e| e.to_string())?,
                s.automation_paused().map_err(|e| e.to_string())?,
            ))
        }
        None => Ok(Default::default()),
    });
    let (states, paused) = match stored {
        Ok(found) => found,
        Err(e) => return fail_usage(&e),
    };
    if automation.schedules().is_empty() {
        println!(
            "no schedules: declare one with `schedule!(name, job = JOB, cron = \"0 2 * * *\")`"
        );
        return EXIT_OK;
    }
    let now = Timestamp::now();
    let mut rows = vec![vec![
        "SCHEDULE".to_owned(),
        "TARGET".to_owned(),
        "CRON".to_owned(),
        "TIMEZONE".to_owned(),
        "STATUS".to_owned(),
        "NEXT TICK".to_owned(),
    ]];
    for (schedule, cron) in automation.schedules() {
        let next = cron.next_after(now).map_or("never".to_owned(), |t| {
            t.strftime("%Y-%m-%d %H:%M %Z").to_string()
        });
        let status = match states.get(schedule.name()) {
            Some(state) => state.status.as_str().to_owned(),
            None => match schedule.default_status() {
                orch_core::DefaultStatus::Running => "running (default)".to_owned(),
                orch_core::DefaultStatus::Stopped => "stopped (default)".to_owned(),
            },
        };
        rows.push(vec![
            schedule.name().to_owned(),
            target_text(schedule),
            schedule.cron().to_owned(),
            schedule.timezone().to_owned(),
            status,
            next,
        ]);
    }
    print_rows(&rows);
    if paused {
        println!("automation is paused: no schedule runs (`automation resume` resumes them)");
    }
    EXIT_OK
}

/// `schedule next | start | stop | preview | tick | history NAME`.
pub(super) fn schedule(env: &Env<'_>, command: ScheduleCommand) -> u8 {
    schedule_command(env, command).unwrap_or_else(|e| fail_usage(&e))
}

fn schedule_command(env: &Env<'_>, command: ScheduleCommand) -> Result<u8, String> {
    let automation = checked()?;
    let find = |name: &str| {
        automation.schedule(name).ok_or_else(|| {
            let names: Vec<&str> = automation
                .schedules()
                .iter()
                .map(|(s, _)| s.name())
                .collect();
            unknown("a schedule", name, &names, "schedules")
        })
    };
    match command {
        ScheduleCommand::Start { name } => {
            find(&name)?;
            Ok(set_status(env, &name, InstigatorStatus::Running))
        }
        ScheduleCommand::Stop { name } => {
            find(&name)?;
            Ok(set_status(env, &name, InstigatorStatus::Stopped))
        }
        ScheduleCommand::Preview { name, at } => {
            let (schedule, cron) = find(&name)?;
            let at = instant_or_now(at.as_deref())?;
            let Some(tick) = cron.next_after(at) else {
                println!("schedule `{name}` has no tick after {at}");
                return Ok(EXIT_OK);
            };
            let when = tick.strftime("%Y-%m-%dT%H:%M:%S%:z");
            let requests = match automation.decide_tick(schedule, tick.timestamp()) {
                TickDecision::Run(requests) => requests,
                TickDecision::Skip(reason) => {
                    println!("schedule `{name}`: the tick at {when} would run nothing: {reason}");
                    return Ok(EXIT_OK);
                }
                TickDecision::Fail(reason) => {
                    println!("schedule `{name}`: the tick at {when} would fail: {reason}");
                    return Ok(EXIT_ASSET_FAILED);
                }
            };
            // The plan of each run, against the store if there is one (never creating it).
            let instance = match env.existing()? {
                Some(instance) => instance,
                None => env.app.ephemeral_instance(env.config.clone()),
            };
            for request in &requests {
                let tags: Vec<String> = request
                    .tags()
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "schedule `{name}`: the tick at {when} would run `{request}` (tags: {}); nothing runs now",
                    tags.join(", ")
                );
                let plan = instance.plan(request).map_err(|e| e.to_string())?;
                print!("{plan}");
            }
            Ok(EXIT_OK)
        }
        ScheduleCommand::Tick { name, at } => {
            let (schedule, cron) = find(&name)?;
            let at = instant_or_now(at.as_deref())?;
            let Some(tick) = cron.latest_at_or_before(at) else {
                return Err(format!("schedule `{name}` has no tick at or before {at}"));
            };
            Ok(tick_now(env, automation, schedule, &tick))
        }
        ScheduleCommand::History { name, limit } => {
            let (_, cron) = find(&name)?;
            Ok(print_history(env, &name, cron, limit))
        }
        ScheduleCommand::Next { name, count, after } => {
            let (_, cron) = find(&name)?;
            let after = instant_or_now(after.as_deref())?;
            for tick in cron.ticks_after(after).take(count) {
                println!("{}", tick.strftime("%Y-%m-%dT%H:%M:%S%:z"));
            }
            Ok(EXIT_OK)
        }
    }
}

/// `schedule tick`: evaluates the tick `tick` of `schedule` (at most once), starts the runs
/// it queued in this process (past the queue's limits: someone asked for it now), and reports
/// them.
fn tick_now(
    env: &Env<'_>,
    automation: &Automation,
    schedule: &orch_core::ScheduleDef,
    tick: &jiff::Zoned,
) -> u8 {
    let instance = match env.open() {
        Ok(instance) => instance,
        Err(e) => return fail_usage(&e),
    };
    let name = schedule.name();
    let when = tick.strftime("%Y-%m-%dT%H:%M:%S%:z");
    let runs = |ids: &[orch_core::RunId]| -> String {
        let ids: Vec<&str> = ids.iter().map(orch_core::RunId::short).collect();
        ids.join(", ")
    };
    let outcome =
        crate::automation::request_tick(&instance, automation, schedule, tick.timestamp(), None);
    match outcome {
        Ok(TickOutcome::Requested(ids)) => {
            super::daemon::run_here(&instance, &ids, &format!("tick {when} of `{name}`: "))
        }
        Ok(TickOutcome::AlreadyDone(record)) => {
            println!(
                "tick {when} of `{name}` already ran ({}{}); nothing launched",
                record.status.as_str(),
                match (record.run_ids.is_empty(), &record.reason) {
                    (false, _) => format!(": run {}", runs(&record.run_ids)),
                    (true, Some(reason)) => format!(": {reason}"),
                    (true, None) => String::new(),
                }
            );
            EXIT_OK
        }
        Ok(TickOutcome::Skipped(reason)) => {
            println!("tick {when} of `{name}` skipped: {reason}");
            EXIT_OK
        }
        Ok(TickOutcome::Failed(reason)) => {
            eprintln!("tick {when} of `{name}` failed: {reason}");
            EXIT_ASSET_FAILED
        }
        Err(e) => fail_usage(&e),
    }
}

/// `schedule history`: the recorded ticks, newest first.
fn print_history(env: &Env<'_>, name: &str, cron: &orch_core::CronSchedule, limit: usize) -> u8 {
    let ticks = match env.existing() {
        Ok(Some(instance)) => match instance.storage().ticks(name, limit) {
            Ok(ticks) => ticks,
            Err(e) => return fail_usage(&e),
        },
        Ok(None) => Vec::new(),
        Err(e) => return fail_usage(&e),
    };
    if ticks.is_empty() {
        println!("schedule `{name}` has no recorded tick");
        return EXIT_OK;
    }
    let mut rows = vec![vec![
        "TICK".to_owned(),
        "STATUS".to_owned(),
        "RUNS".to_owned(),
        "REASON".to_owned(),
    ]];
    for tick in ticks {
        let when = Timestamp::try_from(tick.scheduled)
            .map(|t| {
                t.to_zoned(cron.zone().clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_default();
        let ids: Vec<&str> = tick.run_ids.iter().map(orch_core::RunId::short).collect();
        rows.push(vec![
            when,
            tick.status.as_str().to_owned(),
            if ids.is_empty() {
                "-".to_owned()
            } else {
                ids.join(", ")
            },
            tick.reason.unwrap_or_default(),
        ]);
    }
    print_rows(&rows);
    EXIT_OK
}

/// Stores schedule `name`'s status.
fn set_status(env: &Env<'_>, name: &str, status: InstigatorStatus) -> u8 {
    let result = env.open().and_then(|instance| {
        let store = instance.storage();
        store
            .set_instigator_status(name, "schedule", status)
            .map_err(|e| e.to_string())?;
        store.automation_paused().map_err(|e| e.to_string())
    });
    match result {
        Ok(paused) => {
            println!("schedule `{name}` is {}", status.as_str());
            if paused && status == InstigatorStatus::Running {
                println!("note: automation is paused; `automation resume` lets it run");
            }
            EXIT_OK
        }
        Err(e) => fail_usage(&e),
    }
}

/// `automation pause | resume`.
pub(super) fn automation_command(env: &Env<'_>, command: AutomationCommand) -> u8 {
    if let AutomationCommand::Explain { asset } = &command {
        return super::conditions::explain(env, asset);
    }
    let paused = matches!(command, AutomationCommand::Pause);
    match env.open().and_then(|i| {
        i.storage()
            .set_automation_paused(paused)
            .map_err(|e| e.to_string())
    }) {
        Ok(()) if paused => {
            println!(
                "automation is paused: no schedule, sensor or automation condition runs until `automation resume`"
            );
            EXIT_OK
        }
        Ok(()) => {
            println!(
                "automation resumed: running schedules, sensors and conditions evaluate again"
            );
            EXIT_OK
        }
        Err(e) => fail_usage(&e),
    }
}

/// `text` as an RFC 3339 instant, or now.
pub(super) fn instant_or_now(text: Option<&str>) -> Result<Timestamp, String> {
    text.map_or_else(|| Ok(Timestamp::now()), parse_instant)
}

/// An RFC 3339 instant (`2026-03-28T12:00:00Z`, `2026-03-28T13:00:00+01:00`).
pub(super) fn parse_instant(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("`{text}` is not an RFC 3339 instant ({e}); write e.g. `2026-03-28T12:00:00Z` or `2026-03-28T13:00:00+01:00`")
    })
}

/// The run request of job `name`, or why there is none (with "did you mean").
pub(super) fn job_request(name: &str) -> Result<crate::run::RunRequest, String> {
    let automation = checked()?;
    automation.job_request(name).ok_or_else(|| {
        let names: Vec<&str> = automation.jobs().iter().map(|j| j.name()).collect();
        unknown("an asset job", name, &names, "jobs")
    })
}
