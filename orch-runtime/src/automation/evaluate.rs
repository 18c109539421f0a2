//! One evaluation of every schedule as of an instant: what the daemon does on each wake-up
//! (and `daemon --once --at T` once). Each running schedule requests the latest tick due
//! since its last evaluation (missed ones are not caught up, as Dagster does for
//! unpartitioned schedules); a tick is evaluated at most once ([`request_tick`]), and its runs
//! are queued, not started: the daemon's queue starts them.
//!
//! [`request_tick`]: super::request_tick

use jiff::{Timestamp, Zoned};
use orch_core::DefaultStatus;

use super::tick::request_tick_after;
use super::{Automation, TickError, TickOutcome};
use crate::instance::Instance;
use crate::storage::InstigatorStatus;

/// What one evaluation did with one schedule.
#[derive(Debug)]
#[non_exhaustive]
pub enum Evaluated {
    /// All automation is paused (`automation pause`).
    Paused,
    /// The schedule is stopped.
    Stopped,
    /// First seen running: its ticks count from this evaluation on.
    Started {
        /// Its next tick.
        next: Option<Zoned>,
    },
    /// No tick since the last evaluation.
    NothingDue {
        /// Its next tick.
        next: Option<Zoned>,
    },
    /// A tick was due and was evaluated (at most once): the latest one, or for a partitioned
    /// schedule each of the latest `catchup` (one evaluation each); `missed` earlier ones
    /// were passed over.
    Ticked {
        /// The tick.
        tick: Zoned,
        /// How many earlier due ticks were passed over.
        missed: usize,
        /// What the tick did.
        outcome: TickOutcome,
    },
}

/// One schedule's evaluation.
#[derive(Debug)]
#[non_exhaustive]
pub struct ScheduleEvaluation {
    /// The schedule's name.
    pub schedule: &'static str,
    /// What happened.
    pub evaluated: Evaluated,
}

fn cursor_key(name: &str) -> String {
    format!("schedule:{name}")
}

/// Evaluates every schedule as of `at`, in name order, queuing the runs of due ticks. A
/// partitioned schedule catches up on up to `catchup` (default 5) of its latest missed ticks,
/// each running its own partition, oldest first: one evaluation per tick in the answer.
pub fn evaluate_schedules(
    instance: &Instance,
    automation: &Automation,
    at: Timestamp,
) -> Result<Vec<ScheduleEvaluation>, TickError> {
    let store = instance.storage();
    let paused = store.automation_paused()?;
    let states = store.instigator_states()?;
    let mut done = Vec::with_capacity(automation.schedules().len());
    for (schedule, cron) in automation.schedules() {
        let name = schedule.name();
        let running = match states.get(name) {
            Some(state) => state.status == InstigatorStatus::Running,
            None => schedule.default_status() == DefaultStatus::Running,
        };
        let key = cursor_key(name);
        let push = |done: &mut Vec<ScheduleEvaluation>, evaluated| {
            done.push(ScheduleEvaluation {
                schedule: name,
                evaluated,
            });
        };
        if paused {
            push(&mut done, Evaluated::Paused);
            continue;
        }
        if !running {
            // Restarted later, it counts its ticks from then, not from before it stopped.
            if store.cursor(&key)?.is_some() {
                store.set_cursor(&key, None)?;
            }
            push(&mut done, Evaluated::Stopped);
            continue;
        }
        let since = store
            .cursor(&key)?
            .and_then(|c| c.parse::<Timestamp>().ok());
        let Some(since) = since else {
            store.set_cursor(&key, Some(&at.to_string()))?;
            push(
                &mut done,
                Evaluated::Started {
                    next: cron.next_after(at),
                },
            );
            continue;
        };
        let due: Vec<Zoned> = cron
            .ticks_after(since)
            .take_while(|t| t.timestamp() <= at)
            .collect();
        if due.is_empty() {
            // The cursor stays: nothing was due since it, so nothing is lost by keeping it,
            // and a pass that finds nothing writes nothing.
            push(
                &mut done,
                Evaluated::NothingDue {
                    next: cron.next_after(at),
                },
            );
            continue;
        }
        // Unpartitioned: the latest tick only. Partitioned: the latest `catchup` of them.
        let run = match automation.schedule_partitions(name) {
            Some(_) => usize::try_from(schedule.catchup().max(1)).unwrap_or(usize::MAX),
            None => 1,
        }
        .min(due.len());
        let missed = due.len() - run;
        let cursor = at.to_string();
        let mut moved = false;
        let mut queued_now: Vec<orch_core::RunId> = Vec::new();
        for (i, tick) in due[missed..].iter().enumerate() {
            // The cursor moves with the last tick's commit: a process that dies between two
            // ticks evaluates the rest again (the done ones answer "already done").
            let last = i + 1 == run;
            let outcome = request_tick_after(
                instance,
                automation,
                schedule,
                tick.timestamp(),
                last.then_some((key.as_str(), Some(cursor.as_str()))),
                &queued_now,
            )?;
            if let TickOutcome::Requested(ids) = &outcome {
                queued_now.extend(ids.iter().cloned());
            }
            moved = last
                && matches!(
                    outcome,
                    TickOutcome::Requested(_) | TickOutcome::Skipped(_) | TickOutcome::Failed(_)
                );
            push(
                &mut done,
                Evaluated::Ticked {
                    tick: tick.clone(),
                    missed,
                    outcome,
                },
            );
        }
        if !moved {
            store.set_cursor(&key, Some(&cursor))?;
        }
    }
    Ok(done)
}
