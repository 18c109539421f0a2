//! One schedule tick, run at most once: the tick is stored (one row per schedule and
//! instant) before its run is launched, and its run carries the tag `orch/tick=NAME@INSTANT`,
//! so a tick whose process died is resumed without launching its run twice.

use jiff::Timestamp;
use orch_core::{RunId, ScheduleDef};

use super::{Automation, SCHEDULE_TAG};
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::result::RunResult;
use crate::storage::{RunFilter, RunStatus, StorageError, TickRecord, TickStatus};

/// The tag a tick's run carries: `NAME@INSTANT` (the scheduled instant in UTC, RFC 3339).
pub const TICK_TAG: &str = "orch/tick";

/// How a tick went.
#[derive(Debug)]
#[non_exhaustive]
pub enum TickOutcome {
    /// This call launched the tick's run and waited for it.
    Ran {
        /// The run.
        run_id: RunId,
        /// How it ended, or why it could not start.
        result: Result<RunResult, MaterializeError>,
    },
    /// The tick had already run (or been skipped): nothing was launched.
    AlreadyDone(TickRecord),
    /// A tick begun by a process that died had launched its run: recorded, nothing launched.
    Resumed(TickRecord),
    /// Skipped on purpose (the reason; recorded).
    Skipped(String),
}

/// Why a tick could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TickError {
    /// The store could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The schedule's target does not resolve (a job that is not registered).
    #[error("schedule `{0}`: its target does not resolve to a run")]
    Target(String),
}

fn system_time(t: Timestamp) -> std::time::SystemTime {
    std::time::SystemTime::from(t)
}

/// Runs the tick of `schedule` scheduled at `scheduled`, at most once per (schedule,
/// instant) across processes and restarts, and waits for its run. Blocking: call it from
/// synchronous code.
pub fn run_tick(
    instance: &Instance,
    automation: &Automation,
    schedule: &ScheduleDef,
    scheduled: Timestamp,
) -> Result<TickOutcome, TickError> {
    let store = instance.storage();
    let name = schedule.name();
    let at = system_time(scheduled);
    let (tick, _created) = store.begin_tick(name, at)?;
    if tick.status != TickStatus::Started {
        return Ok(TickOutcome::AlreadyDone(tick));
    }
    // Begun before (its process died, or it is being resumed): its run may exist already.
    let key = format!("{name}@{scheduled}");
    let launched = store.runs(&RunFilter::default().tag(TICK_TAG, key.as_str()))?;
    if !launched.is_empty() {
        let ids: Vec<RunId> = launched.iter().map(|r| r.id.clone()).collect();
        store.end_tick(name, at, TickStatus::Success, &ids, None)?;
        let (tick, _) = store.begin_tick(name, at)?;
        return Ok(TickOutcome::Resumed(tick));
    }
    if schedule.skip_if_running() {
        let going = RunFilter::default()
            .tag(SCHEDULE_TAG, name)
            .status(RunStatus::Queued)
            .status(RunStatus::Starting)
            .status(RunStatus::Running);
        if let Some(run) = store.runs(&going)?.first() {
            let reason = format!(
                "skip_if_running: run {} of this schedule is still going",
                run.id.short()
            );
            store.end_tick(name, at, TickStatus::Skipped, &[], Some(&reason))?;
            return Ok(TickOutcome::Skipped(reason));
        }
    }
    let request = automation
        .schedule_request(schedule)
        .ok_or_else(|| TickError::Target(name.to_owned()))?
        .tag(TICK_TAG, key);
    let run = instance.submit(request);
    let run_id = run.run_id().clone();
    let result = run.wait();
    // Recorded once the run is over (it is in the store from its start, tagged with the tick,
    // so a process that dies before this line leaves a tick the next call resumes).
    match &result {
        Err(e) => store.end_tick(name, at, TickStatus::Failure, &[], Some(&e.to_string()))?,
        Ok(_) => store.end_tick(
            name,
            at,
            TickStatus::Success,
            std::slice::from_ref(&run_id),
            None,
        )?,
    }
    Ok(TickOutcome::Ran { run_id, result })
}
