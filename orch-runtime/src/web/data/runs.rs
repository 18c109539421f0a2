//! The runs' views: one run in full (its steps for the timeline, its events), its log lines,
//! a page of the runs list.

use serde::Serialize;

use crate::storage::{EventKind, EventRecord, LogPage, LogRecord, RunCursor, RunFilter};
use crate::web::{Ui, WebError};

use super::{RunSummary, instant, millis};

/// One run in full: its record, one step per asset (for the timeline) and its events.
#[derive(Serialize, Debug)]
pub(crate) struct RunDetail {
    pub(crate) run: RunSummary,
    pub(crate) steps: Vec<Step>,
    pub(crate) events: Vec<EventView>,
    /// The first failure's message (the error and its cause).
    pub(crate) error: Option<String>,
    pub(crate) cancel_requested: bool,
    /// Where the run's time went, phase by phase (once it ended), in microseconds.
    pub(crate) phases: Vec<Phase>,
}

/// One phase of a run (plan, load, begin, execute, record, sync), in microseconds.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) us: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One asset (and partition) of a run: when it started and ended, how.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct Step {
    pub(crate) asset: String,
    pub(crate) partition: Option<String>,
    pub(crate) status: &'static str,
    /// Milliseconds from the run's start.
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) attempts: u32,
    /// Its last attempt's loading of mapped partitions, its function and its output's
    /// storing, in microseconds (in a run over a range, on the first partition's row: the
    /// asset ran once for all of them).
    pub(crate) load_us: Option<u64>,
    pub(crate) compute_us: Option<u64>,
    pub(crate) store_us: Option<u64>,
    /// The output was stored after its consumers started (write-behind).
    pub(crate) store_background: bool,
}

/// One event, as the run page lists it.
#[derive(Serialize, Debug, Clone)]
pub(crate) struct EventView {
    pub(crate) seq: u64,
    pub(crate) at: String,
    pub(crate) asset: Option<String>,
    pub(crate) partition: Option<String>,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

pub(crate) fn event_view(e: &EventRecord) -> EventView {
    let message = e.detail();
    EventView {
        seq: e.seq.unwrap_or(0),
        at: instant(e.time),
        asset: e.asset.as_ref().map(ToString::to_string),
        partition: e.partition.clone(),
        kind: e.kind.as_str(),
        message,
    }
}

pub(crate) fn run_detail(ui: &Ui, id: &str) -> Result<RunDetail, WebError> {
    let store = &**ui.instance.storage();
    let run = store.run(id)?;
    let events = store.events(run.id.as_str())?;
    let start = millis(run.started);
    let mut steps: Vec<Step> = Vec::new();
    let mut error = None;
    for e in &events {
        let Some(asset) = &e.asset else { continue };
        if e.kind == EventKind::CheckEvaluated {
            continue;
        }
        let asset = asset.to_string();
        let at = millis(e.time) - start;
        let i = match steps
            .iter()
            .position(|s| s.asset == asset && s.partition == e.partition)
        {
            Some(i) => i,
            None => {
                steps.push(Step {
                    asset,
                    partition: e.partition.clone(),
                    status: "planned",
                    start_ms: None,
                    end_ms: None,
                    attempts: 0,
                    load_us: None,
                    compute_us: None,
                    store_us: None,
                    store_background: false,
                });
                steps.len() - 1
            }
        };
        if let Some(t) = e.timings {
            // One set of timings per asset and run: a range run's partitions share it.
            let shown = steps[..i]
                .iter()
                .any(|s| s.asset == steps[i].asset && s.compute_us.is_some());
            if !shown {
                steps[i].load_us = Some(micros(t.load));
                steps[i].compute_us = Some(micros(t.compute));
                steps[i].store_us = Some(micros(t.store));
                steps[i].store_background = t.background;
            }
        }
        let step = &mut steps[i];
        match e.kind {
            EventKind::Started => {
                step.start_ms.get_or_insert(at);
                step.status = "running";
                step.attempts = step.attempts.max(e.attempt.unwrap_or(1));
            }
            EventKind::Retried => step.status = "retrying",
            EventKind::Materialized => {
                step.status = "materialized";
                step.end_ms = Some(at);
            }
            EventKind::Failed => {
                step.status = "failed";
                step.end_ms = Some(at);
                if error.is_none() {
                    error = Some(format!(
                        "{}: {}",
                        step.asset,
                        e.message.as_deref().unwrap_or("failed")
                    ));
                }
            }
            EventKind::Skipped => step.status = "skipped",
            EventKind::Canceled => step.status = "canceled",
            _ => {}
        }
    }
    let phases = run.timings.map_or_else(Vec::new, |t| {
        t.phases()
            .into_iter()
            .map(|(name, _, d)| Phase {
                name,
                us: micros(d),
            })
            .collect()
    });
    Ok(RunDetail {
        phases,
        run: RunSummary::of(&run),
        steps,
        events: events.iter().map(event_view).collect(),
        error,
        cancel_requested: store.cancel_requested(run.id.as_str())?,
    })
}

/// One log line, with its id (what a follower resumes from).
#[derive(Serialize, Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) id: u64,
    pub(crate) at: String,
    pub(crate) asset: String,
    pub(crate) level: String,
    pub(crate) message: String,
}

pub(crate) fn log_line((id, l): (u64, LogRecord)) -> LogLine {
    LogLine {
        id,
        at: instant(l.time),
        asset: l.asset,
        level: l.level.to_string(),
        message: l.message,
    }
}

/// A page of a run's log lines: the last `limit` before `before` (default: the end).
pub(crate) fn log_page(
    ui: &Ui,
    run: &str,
    before: Option<u64>,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<LogLine>, WebError> {
    let store = &**ui.instance.storage();
    let run = store.run(run)?;
    let limit = limit.clamp(1, 5_000);
    let page = match (after, before) {
        (Some(id), _) => LogPage::After { id, limit },
        (None, before) => LogPage::Before {
            id: before.unwrap_or(u64::MAX),
            limit,
        },
    };
    Ok(store
        .logs_page(run.id.as_str(), page)?
        .into_iter()
        .map(log_line)
        .collect())
}

/// The runs list: one page, newest first, and the cursor of the next page.
#[derive(Serialize, Debug)]
pub(crate) struct RunsPage {
    pub(crate) runs: Vec<RunSummary>,
    pub(crate) next: Option<String>,
}

pub(crate) fn runs_page(ui: &Ui, filter: &RunFilter) -> Result<RunsPage, WebError> {
    let store = &**ui.instance.storage();
    let limit = filter.limit;
    let mut more = filter.clone();
    more.limit = limit + 1;
    let mut runs = store.runs(&more)?;
    let next = (runs.len() > limit).then(|| {
        runs.truncate(limit);
        runs.last().map(|r| RunCursor::of(r).to_string())
    });
    Ok(RunsPage {
        runs: runs.iter().map(RunSummary::of).collect(),
        next: next.flatten(),
    })
}
