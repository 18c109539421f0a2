//! What the pages show, read from the instance and the store: one function per view, each
//! returning a serializable value that `/api/...` sends as JSON and the HTML pages render.
//! Nothing here writes.

mod assets;
mod automation;
mod runs;

pub(crate) use assets::*;
pub(crate) use automation::*;
pub(crate) use runs::*;

use std::collections::HashMap;
use std::time::SystemTime;

use jiff::Timestamp;
use serde::Serialize;

use crate::automation::JOB_TAG;
use crate::daemon::DAEMON_LEASE;
use crate::storage::{InstigatorStatus, RunFilter, RunRecord, RunStatus};
use crate::web::{Ui, WebError};

/// An instant as RFC 3339 (UTC, milliseconds).
pub(super) fn instant(t: SystemTime) -> String {
    Timestamp::try_from(t)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Milliseconds since the epoch (for plots and timelines).
fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One run, as lists show it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct RunSummary {
    pub(crate) id: String,
    pub(crate) short: String,
    pub(crate) status: &'static str,
    pub(crate) finished: bool,
    pub(crate) target: String,
    pub(crate) trigger: String,
    pub(crate) job: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) started: String,
    pub(crate) started_ms: i64,
    pub(crate) ended: Option<String>,
    pub(crate) duration_ms: Option<i64>,
    pub(crate) planned: u32,
    pub(crate) materialized: u32,
    pub(crate) failed: u32,
    pub(crate) skipped: u32,
    pub(crate) parent: Option<String>,
}

impl RunSummary {
    pub(crate) fn of(run: &RunRecord) -> RunSummary {
        RunSummary {
            id: run.id.to_string(),
            short: run.id.short().to_owned(),
            status: run.status.as_str(),
            finished: run.status.is_finished(),
            target: run.describe(),
            trigger: run.trigger.to_string(),
            job: run.tags.get(JOB_TAG).cloned(),
            tags: run
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            started: instant(run.started),
            started_ms: millis(run.started),
            ended: run.ended.map(instant),
            duration_ms: run.ended.map(|e| millis(e) - millis(run.started)),
            planned: run.planned,
            materialized: run.counts.0,
            failed: run.counts.1,
            skipped: run.counts.2,
            parent: run.parent.as_ref().map(ToString::to_string),
        }
    }
}

/// The overview: what is running, what failed, the assets' health, what ticks next and
/// whether a daemon is alive.
#[derive(Serialize, Debug)]
pub(crate) struct Overview {
    pub(crate) in_progress: Vec<RunSummary>,
    pub(crate) recent_failures: Vec<RunSummary>,
    pub(crate) recent_runs: Vec<RunSummary>,
    pub(crate) health: Health,
    pub(crate) next_ticks: Vec<NextTick>,
    pub(crate) daemon: Option<DaemonStatus>,
    pub(crate) paused: bool,
}

/// Counts of assets by state.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Health {
    pub(crate) assets: usize,
    pub(crate) materialized: usize,
    pub(crate) never: usize,
    pub(crate) failed: usize,
    pub(crate) stale: usize,
    pub(crate) fresh: usize,
    pub(crate) freshness_warn: usize,
    pub(crate) freshness_fail: usize,
    pub(crate) checks_failed: usize,
}

/// A schedule's next tick.
#[derive(Serialize, Debug)]
pub(crate) struct NextTick {
    pub(crate) schedule: &'static str,
    pub(crate) at: String,
    pub(crate) running: bool,
}

/// Who holds the daemon lease, and whether it is alive.
#[derive(Serialize, Debug)]
pub(crate) struct DaemonStatus {
    pub(crate) holder: String,
    pub(crate) heartbeat: String,
    pub(crate) alive: bool,
}

pub(crate) fn overview(ui: &Ui) -> Result<Overview, WebError> {
    let store = &**ui.instance.storage();
    let summaries = asset_summaries(ui)?;
    let mut health = Health {
        assets: summaries.len(),
        ..Health::default()
    };
    for a in summaries.iter() {
        match a.status {
            "materialized" => health.materialized += 1,
            "failed" => health.failed += 1,
            "never" => health.never += 1,
            _ => {}
        }
        if a.stale.is_some() {
            health.stale += 1;
        }
        match a.freshness {
            Some("pass") => health.fresh += 1,
            Some("warn") => health.freshness_warn += 1,
            Some("fail") => health.freshness_fail += 1,
            _ => {}
        }
        if a.checks.failed > 0 {
            health.checks_failed += 1;
        }
    }
    let in_progress = store
        .runs(
            &RunFilter::recent(20)
                .status(RunStatus::Queued)
                .status(RunStatus::Starting)
                .status(RunStatus::Running),
        )?
        .iter()
        .map(RunSummary::of)
        .collect();
    let recent_failures = store
        .runs(
            &RunFilter::recent(5)
                .status(RunStatus::Failed)
                .status(RunStatus::Crashed),
        )?
        .iter()
        .map(RunSummary::of)
        .collect();
    let recent_runs = store
        .runs(&RunFilter::recent(10))?
        .iter()
        .map(RunSummary::of)
        .collect();
    let states = store.instigator_states()?;
    let now = Timestamp::now();
    let mut next_ticks: Vec<(Timestamp, NextTick)> = ui
        .automation
        .schedules()
        .iter()
        .filter_map(|(s, cron)| {
            let next = cron.next_after(now)?;
            Some((
                next.timestamp(),
                NextTick {
                    schedule: s.name(),
                    at: next.strftime("%Y-%m-%d %H:%M %Z").to_string(),
                    running: status_of(&states, s.name(), s.default_status())
                        == InstigatorStatus::Running,
                },
            ))
        })
        .collect();
    next_ticks.sort_by_key(|(t, _)| *t);
    let daemon = store.lease(DAEMON_LEASE)?.map(|l| DaemonStatus {
        holder: l.description,
        heartbeat: instant(l.heartbeat),
        alive: l.expires > SystemTime::now(),
    });
    Ok(Overview {
        in_progress,
        recent_failures,
        recent_runs,
        health,
        next_ticks: next_ticks.into_iter().take(5).map(|(_, t)| t).collect(),
        daemon,
        paused: store.automation_paused()?,
    })
}

/// A schedule's or sensor's status: as set in the store, or its declared default.
pub(crate) fn status_of(
    states: &HashMap<String, crate::storage::InstigatorState>,
    name: &str,
    default: orch_core::DefaultStatus,
) -> InstigatorStatus {
    match states.get(name) {
        Some(state) => state.status,
        None => match default {
            orch_core::DefaultStatus::Running => InstigatorStatus::Running,
            orch_core::DefaultStatus::Stopped => InstigatorStatus::Stopped,
        },
    }
}
