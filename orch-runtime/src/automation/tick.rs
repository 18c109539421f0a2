//! One schedule tick, evaluated at most once. The tick is stored first (one row per schedule
//! and instant); then its runs are recorded as queued, the tick ended and the schedule's
//! cursor moved, in one transaction. A process killed before that transaction leaves a tick
//! the next evaluation finishes; after it, the queue holds the runs, and starting a queued run
//! is itself exactly once. So a tick never launches its runs twice, and never loses them.

use jiff::Timestamp;
use orch_core::{RunId, ScheduleDef};

use super::{Automation, SCHEDULE_TAG, TickDecision};
use crate::instance::Instance;
use crate::run::Trigger;
use crate::storage::{RunRecord, StorageError, TickCommit, TickRecord, TickStatus};

/// The tag a tick's run carries: `NAME@INSTANT` (the scheduled instant in UTC, RFC 3339).
pub const TICK_TAG: &str = "orch/tick";

/// How a tick went.
#[derive(Debug)]
#[non_exhaustive]
pub enum TickOutcome {
    /// Its runs were queued (with the tick and the cursor, atomically); the daemon's queue
    /// (or the caller) starts them.
    Requested(Vec<RunId>),
    /// The tick had already been evaluated (by this process or another): nothing was queued.
    AlreadyDone(TickRecord),
    /// Skipped on purpose (the reason; recorded).
    Skipped(String),
    /// Its `decide` function returned an error or panicked (the reason; recorded as a failed
    /// tick, which is not tried again).
    Failed(String),
}

/// Why a tick could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TickError {
    /// The store could not be read or written.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Evaluates the tick of `schedule` scheduled at `scheduled`, at most once per (schedule,
/// instant) across processes and restarts: queues its run, or records why it skipped, and
/// stores `cursor` (`(name, value)`) in the same transaction.
pub fn request_tick(
    instance: &Instance,
    automation: &Automation,
    schedule: &ScheduleDef,
    scheduled: Timestamp,
    cursor: Option<(&str, Option<&str>)>,
) -> Result<TickOutcome, TickError> {
    request_tick_after(instance, automation, schedule, scheduled, cursor, &[])
}

/// [`request_tick`], where `queued_now` are runs this schedule's earlier catch-up ticks
/// queued in the same evaluation: `skip_if_running` does not count them (each missed
/// partition gets its run).
pub(super) fn request_tick_after(
    instance: &Instance,
    automation: &Automation,
    schedule: &ScheduleDef,
    scheduled: Timestamp,
    cursor: Option<(&str, Option<&str>)>,
    queued_now: &[RunId],
) -> Result<TickOutcome, TickError> {
    let store = instance.storage();
    let name = schedule.name();
    let at = std::time::SystemTime::from(scheduled);
    let (tick, _created) = store.begin_tick(name, at)?;
    if tick.status != TickStatus::Started {
        return Ok(TickOutcome::AlreadyDone(tick));
    }
    let commit = |status, reason: Option<&str>, runs: &[RunRecord]| {
        store.commit_tick(&TickCommit {
            instigator: name,
            scheduled: at,
            status,
            reason,
            runs,
            cursor,
        })
    };
    let already = || -> Result<TickOutcome, TickError> {
        let (tick, _) = store.begin_tick(name, at)?;
        Ok(TickOutcome::AlreadyDone(tick))
    };
    if schedule.skip_if_running()
        && let Some(run) = super::still_going(&**store, SCHEDULE_TAG, name, queued_now)?
    {
        let reason = format!(
            "skip_if_running: run {} of this schedule is still {}",
            run.id.short(),
            run.status.as_str()
        );
        if commit(TickStatus::Skipped, Some(&reason), &[])?.is_none() {
            return already();
        }
        return Ok(TickOutcome::Skipped(reason));
    }
    let requests = match automation.decide_tick(schedule, scheduled) {
        TickDecision::Run(requests) => requests,
        TickDecision::Skip(reason) => {
            if commit(TickStatus::Skipped, Some(&reason), &[])?.is_none() {
                return already();
            }
            return Ok(TickOutcome::Skipped(reason));
        }
        TickDecision::Fail(reason) => {
            if commit(TickStatus::Failure, Some(&reason), &[])?.is_none() {
                return already();
            }
            return Ok(TickOutcome::Failed(reason));
        }
    };
    let runs: Vec<RunRecord> = requests
        .into_iter()
        .map(|request| {
            let request = request
                .tag(TICK_TAG, format!("{name}@{scheduled}"))
                .with_trigger(Trigger::Schedule {
                    name: name.to_owned(),
                });
            RunRecord::queued(RunId::new(), &request)
        })
        .collect();
    match commit(TickStatus::Success, None, &runs)? {
        Some(queued) => Ok(TickOutcome::Requested(queued)),
        None => already(),
    }
}
