//! One evaluation of every schedule as of an instant: what the daemon does on each wake-up
//! (and `daemon --once --at T` once). Each running schedule requests the latest tick due
//! since its last evaluation (missed ones are not caught up, as Dagster does for
//! unpartitioned schedules); a tick is evaluated at most once ([`request_tick`]), and its runs
//! are queued, not started: the daemon's queue starts them.

use jiff::{Timestamp, Zoned};
use orch_core::DefaultStatus;

use super::{Automation, TickError, TickOutcome, request_tick};
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
    /// A tick was due: the latest one was evaluated (at most once), earlier missed ones were
    /// not.
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

/// Evaluates every schedule as of `at`, in name order, queuing the runs of due ticks.
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
        let evaluated = if paused {
            Evaluated::Paused
        } else if !running {
            // Restarted later, it counts its ticks from then, not from before it stopped.
            store.set_cursor(&key, None)?;
            Evaluated::Stopped
        } else {
            let since = store
                .cursor(&key)?
                .and_then(|c| c.parse::<Timestamp>().ok());
            match since {
                None => Evaluated::Started {
                    next: cron.next_after(at),
                },
                Some(since) => {
                    let due: Vec<Zoned> = cron
                        .ticks_after(since)
                        .take_while(|t| t.timestamp() <= at)
                        .collect();
                    match due.last() {
                        None => Evaluated::NothingDue {
                            next: cron.next_after(at),
                        },
                        Some(tick) => {
                            let cursor = at.to_string();
                            Evaluated::Ticked {
                                tick: tick.clone(),
                                missed: due.len() - 1,
                                outcome: request_tick(
                                    instance,
                                    automation,
                                    schedule,
                                    tick.timestamp(),
                                    Some((&key, Some(&cursor))),
                                )?,
                            }
                        }
                    }
                }
            }
        };
        let committed = matches!(
            evaluated,
            Evaluated::Ticked {
                outcome: TickOutcome::Requested(_) | TickOutcome::Skipped(_),
                ..
            }
        );
        if !paused && running && !committed {
            // A tick moved the cursor in its own transaction; otherwise it moves here. A
            // process that dies before this line evaluates the same instants again, which
            // the stored ticks turn into "already done".
            store.set_cursor(&key, Some(&at.to_string()))?;
        }
        done.push(ScheduleEvaluation {
            schedule: name,
            evaluated,
        });
    }
    Ok(done)
}
