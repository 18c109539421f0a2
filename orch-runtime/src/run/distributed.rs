//! A run executed by workers (`executor = "workers"`): the coordinator (the process that
//! asked for the run) plans it and claims its assets as for any run, puts its steps on the
//! store's queue, and follows the run's events in the store until the last step's completion
//! ends it. Progress, the summary and the exit code come from those events, so they read the
//! same as for a run executed in process.
//!
//! The coordinator holds nothing the run needs: if it stops waiting (Ctrl-C cancels the
//! run; a killed or detached coordinator does not), workers finish the run and the last
//! completion records its end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orch_core::{AssetGraph, AssetKey, RunId};
use tokio_util::sync::CancellationToken;

use crate::events::{AssetFailure, AssetTimings, EventSink, RunEvent};
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::plan::Plan;
use crate::result::{AssetOutcome, AssetStatus, RunResult};
use crate::storage::{
    DEFAULT_QUEUE, EventKind, EventRecord, QUEUE_TAG, RunStatus, StepQueue, StepSpec,
};

/// How often the coordinator reads the run's new events.
const POLL: Duration = Duration::from_millis(20);

/// How long a step may wait for a worker before the coordinator says so: a third of the
/// run's lease, at most this.
const WAITING: Duration = Duration::from_secs(10);

/// Why a run cannot go to workers, checked before anything is recorded.
pub(crate) fn check(instance: &Instance, injected: bool) -> Result<(), MaterializeError> {
    let refuse = |why: &str| Err(MaterializeError::Workers(why.to_owned()));
    if instance.storage().step_queue().is_none() {
        return refuse(
            "the run store has no step queue; workers share a PostgreSQL store: set [store] url (ORCH_STORE_URL) to postgres://...",
        );
    }
    if injected {
        return refuse(
            "values injected in code live in this process only; run in process, or make them assets",
        );
    }
    Ok(())
}

/// Which run goes to workers, and how.
pub(crate) struct OnWorkers<'a> {
    pub(crate) run_id: &'a RunId,
    /// The run's queue (its `orch/queue` tag), for its steps whose asset names none.
    pub(crate) queue: Option<&'a str>,
    pub(crate) cancel: CancellationToken,
    /// Return once the steps are queued.
    pub(crate) detach: bool,
}

/// Puts the planned steps of a run (begun already) on the queue and follows the run to its
/// end.
pub(crate) async fn execute_on_workers(
    graph: &'static AssetGraph,
    plan: &Plan,
    instance: &Instance,
    on: OnWorkers<'_>,
    sink: &mut dyn EventSink,
) -> Result<RunResult, MaterializeError> {
    let OnWorkers {
        run_id,
        queue: run_queue,
        cancel,
        detach,
    } = on;
    let started = Instant::now();
    let storage = instance.storage();
    let queue = storage
        .step_queue()
        .ok_or_else(|| MaterializeError::Workers("the run store has no step queue".to_owned()))?;
    let planned: Vec<&AssetKey> = plan.order.iter().map(|&id| &graph.node(id).key).collect();
    sink.on_event(&RunEvent::RunStarted {
        run_id,
        planned: &planned,
    });
    let mut in_plan = vec![false; graph.len()];
    for &id in &plan.order {
        in_plan[id] = true;
    }
    let steps: Vec<StepSpec> = plan
        .order
        .iter()
        .map(|&id| {
            let node = graph.node(id);
            StepSpec {
                step: node.key.to_string(),
                code_version: node.def.code_version().to_owned(),
                upstream: node
                    .upstream
                    .iter()
                    .filter(|&&up| in_plan[up])
                    .map(|&up| graph.node(up).key.to_string())
                    .collect(),
                // The asset's queue, else the run's, else the default.
                queue: node
                    .def
                    .tags()
                    .iter()
                    .find(|(k, _)| *k == QUEUE_TAG)
                    .map(|(_, v)| *v)
                    .or(run_queue)
                    .unwrap_or(DEFAULT_QUEUE)
                    .to_owned(),
            }
        })
        .collect();
    if steps.is_empty() {
        return Err(MaterializeError::Workers(format!(
            "run {run_id} planned no step to queue"
        )));
    }
    queue.enqueue_steps(run_id.as_str(), &steps, instance.config().delivery())?;
    if detach {
        return Ok(RunResult {
            detached: true,
            duration: started.elapsed(),
            ..RunResult::nothing_to_do(graph, run_id.clone())
        });
    }

    let mut follow = Follow {
        outcomes: HashMap::new(),
        attempts: HashMap::new(),
        ended: None,
    };
    let mut poll = Poll {
        last_seq: 0,
        cancel_sent: false,
        last_sweep: Instant::now(),
        said_waiting: false,
        waiting_after: (instance.config().delivery().lease / 3).min(WAITING),
    };
    let mut outage: Option<Instant> = None;
    while follow.ended.is_none() {
        // The store may be unreachable for a while (a restart, a failover): the workers go on
        // or wait, and so does the coordinator, saying so once.
        match poll.once(&**storage, queue, run_id, &cancel, &mut follow, sink) {
            Ok(()) => {
                if let Some(since) = outage.take() {
                    tracing::warn!(
                        "run {run_id}: the run store is back after {}s",
                        since.elapsed().as_secs()
                    );
                }
            }
            Err(e) => {
                if outage.is_none() {
                    tracing::warn!("run {run_id}: cannot read the run store ({e}); trying again");
                    outage = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if follow.ended.is_some() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = cancel.cancelled(), if !poll.cancel_sent => {}
        }
    }
    let duration = started.elapsed();
    let outcomes: Vec<AssetOutcome> = plan
        .order
        .iter()
        .map(|&id| {
            let key = &graph.node(id).key;
            follow
                .outcomes
                .remove(key)
                .unwrap_or_else(|| AssetOutcome::decided(key.clone(), AssetStatus::Canceled))
        })
        .collect();
    let result = RunResult {
        run_id: run_id.clone(),
        graph,
        outcomes,
        outputs: Vec::new(),
        duration,
        storage_error: None,
        timings: None,
        canceled: follow.ended == Some(RunStatus::Canceled),
        detached: false,
    };
    sink.on_event(&RunEvent::RunFinished {
        run_id,
        success: result.success(),
        duration,
    });
    Ok(result)
}

/// Where the coordinator is in following its run.
struct Poll {
    last_seq: u64,
    cancel_sent: bool,
    last_sweep: Instant,
    said_waiting: bool,
    /// How long a ready step waits before the coordinator says so.
    waiting_after: Duration,
}

impl Poll {
    /// Reads the run's new events; passes a cancellation on; sweeps lost steps and says
    /// which steps wait for a worker, every second.
    fn once(
        &mut self,
        storage: &dyn crate::storage::Storage,
        queue: &dyn StepQueue,
        run_id: &RunId,
        cancel: &CancellationToken,
        follow: &mut Follow,
        sink: &mut dyn EventSink,
    ) -> Result<(), crate::storage::StorageError> {
        for event in storage.events_after(run_id.as_str(), self.last_seq, 0)? {
            self.last_seq = event.seq.unwrap_or(self.last_seq);
            follow.event(&event, sink);
        }
        if follow.ended.is_some() {
            return Ok(());
        }
        // Asked here (Ctrl-C) or through the store (the web UI, `run cancel`).
        let asked = cancel.is_cancelled()
            || (self.last_sweep.elapsed() >= Duration::from_secs(1)
                && storage.cancel_requested(run_id.as_str())?);
        if asked && !self.cancel_sent {
            // Steps not started end at once; running ones when their workers see the request.
            storage.request_cancel(run_id.as_str())?;
            queue.cancel_steps(run_id.as_str())?;
            self.cancel_sent = true;
        }
        if self.last_sweep.elapsed() >= Duration::from_secs(1) {
            self.last_sweep = Instant::now();
            // Steps whose workers were lost on every delivery fail here even with no worker
            // left to notice.
            queue.sweep()?;
            if !self.said_waiting {
                self.said_waiting = say_waiting(storage, queue, run_id, self.waiting_after)?;
            }
        }
        Ok(())
    }
}

/// Says (once) which steps wait for a worker with their code version, in this process's log
/// and in the run's (where `run show` and the web UI show it); returns whether it said
/// anything.
fn say_waiting(
    storage: &dyn crate::storage::Storage,
    queue: &dyn StepQueue,
    run_id: &RunId,
    after: Duration,
) -> Result<bool, crate::storage::StorageError> {
    let waiting = queue.waiting_steps(run_id.as_str(), after)?;
    if waiting.is_empty() {
        return Ok(false);
    }
    let lines: Vec<(String, crate::storage::LogRecord)> = waiting
        .iter()
        .map(|w| {
            (
                run_id.as_str().to_owned(),
                crate::storage::LogRecord {
                    asset: w.step.clone(),
                    time: std::time::SystemTime::now(),
                    level: orch_core::LogLevel::Warn,
                    message: format!(
                        "waiting for a worker with code version {} of `{}` (ready for {}s): no worker of this build claims it; start `worker` processes built from the code that planned this run",
                        w.code_version,
                        w.step,
                        w.waiting.as_secs()
                    ),
                },
            )
        })
        .collect();
    storage.append(&[], &lines)?;
    let list: Vec<String> = waiting
        .iter()
        .take(5)
        .map(|w| format!("`{}` (code version {})", w.step, w.code_version))
        .collect();
    tracing::warn!(
        "run {run_id}: {} step(s) ready for {}s with no worker to claim them: {}{}; start `orch worker` processes built from this code",
        waiting.len(),
        after.as_secs(),
        list.join(", "),
        if waiting.len() > 5 { ", ..." } else { "" },
    );
    Ok(true)
}

/// The outcomes read so far, and how the run ended.
struct Follow {
    outcomes: HashMap<AssetKey, AssetOutcome>,
    /// Each step's latest delivery.
    attempts: HashMap<AssetKey, u32>,
    ended: Option<RunStatus>,
}

impl Follow {
    /// Tells the sink what `event` says, and keeps the asset's outcome.
    fn event(&mut self, event: &EventRecord, sink: &mut dyn EventSink) {
        if let EventKind::RunEnded(status) = event.kind {
            self.ended = Some(status);
            return;
        }
        let Some(key) = &event.asset else { return };
        let timings = event
            .timings
            .unwrap_or_else(|| AssetTimings::new(Duration::ZERO, Duration::ZERO, Duration::ZERO));
        let duration = event.duration.unwrap_or_default();
        let failure = || AssetFailure {
            chain: vec![event.message.clone().unwrap_or_default()],
            panicked: false,
        };
        let attempts = self.attempts.get(key).copied().unwrap_or(0);
        let outcome = |status| AssetOutcome {
            attempts,
            duration,
            timings,
            ..AssetOutcome::decided(key.clone(), status)
        };
        match event.kind {
            EventKind::Started => {
                let attempt = event.attempt.unwrap_or(1);
                self.attempts.insert(key.clone(), attempt);
                sink.on_event(&RunEvent::AssetStarted { key, attempt });
            }
            EventKind::Retried => sink.on_event(&RunEvent::AssetRetrying {
                key,
                attempt: event.attempt.unwrap_or(1),
                error: &failure(),
            }),
            EventKind::Materialized => {
                let inputs: Vec<(AssetKey, Option<String>)> = event
                    .inputs
                    .iter()
                    .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
                    .collect();
                sink.on_event(&RunEvent::AssetSucceeded {
                    key,
                    duration,
                    metadata: &event.metadata,
                    logs: &[],
                    data_version: event.data_version.as_deref(),
                    input_versions: &inputs,
                    partitions: &[],
                    timings,
                });
                let mut done = outcome(AssetStatus::Succeeded);
                done.metadata = event.metadata.clone();
                done.data_version = event.data_version.clone();
                done.input_versions = inputs;
                self.outcomes.insert(key.clone(), done);
            }
            EventKind::Failed => {
                let error = failure();
                sink.on_event(&RunEvent::AssetFailed {
                    key,
                    duration,
                    error: &error,
                    logs: &[],
                    timings,
                });
                self.outcomes
                    .insert(key.clone(), outcome(AssetStatus::Failed(error)));
            }
            EventKind::Skipped => {
                // "upstream `X` failed", as the queue writes it.
                let because_of = event
                    .message
                    .as_deref()
                    .and_then(|m| m.split('`').nth(1))
                    .and_then(|k| k.parse().ok())
                    .unwrap_or_else(|| key.clone());
                sink.on_event(&RunEvent::AssetSkipped {
                    key,
                    because_of: &because_of,
                    check: None,
                });
                self.outcomes.insert(
                    key.clone(),
                    AssetOutcome::decided(
                        key.clone(),
                        AssetStatus::Skipped {
                            because_of,
                            check: None,
                        },
                    ),
                );
            }
            EventKind::Canceled => {
                sink.on_event(&RunEvent::AssetCanceled { key });
                self.outcomes.insert(
                    key.clone(),
                    AssetOutcome::decided(key.clone(), AssetStatus::Canceled),
                );
            }
            _ => {}
        }
    }
}
