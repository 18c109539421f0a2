//! The parallel executor: runs a planned subgraph on tokio, each asset as soon as its upstreams
//! are done, each exactly once, sharing every output with all its consumers through one `Arc`.
//!
//! One coordinating task owns all run state (no locks on the hot path). Workers send a message
//! when an attempt ends; the coordinator records it, emits events, and starts what became ready.
//! Sync assets run on the blocking pool, at most `jobs` at a time; async assets run on the
//! workers. A failure (an `Err` or a panic) is retried per `retries`, then skips the asset's
//! downstream while independent branches go on.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::__private::{Compute, Value};
use orch_core::{AssetContext, AssetGraph, AssetId, AssetKey, LogLine, MetadataValue, RunId};
use tokio::sync::mpsc;

use crate::events::{EventSink, RunEvent};
use crate::plan::Plan;
use crate::result::{AssetFailure, AssetOutcome, AssetStatus, RunResult};

/// How to run.
pub(crate) struct ExecOptions {
    pub(crate) jobs: usize,
    pub(crate) keep_outputs: bool,
}

enum Msg {
    Retrying {
        id: AssetId,
        attempt: u32,
        failure: AssetFailure,
    },
    Done {
        id: AssetId,
        attempts: u32,
        duration: Duration,
        result: Result<Value, AssetFailure>,
        logs: Vec<LogLine>,
        metadata: Vec<(String, MetadataValue)>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
}

/// Runs `plan` to the end and returns what happened. Never fails: asset failures are outcomes.
pub(crate) async fn execute(
    graph: &'static AssetGraph,
    plan: Plan,
    mut injected: Vec<(AssetId, Value)>,
    opts: ExecOptions,
    sink: &mut dyn EventSink,
) -> RunResult {
    let started = Instant::now();
    let run_id = RunId::new();
    let n = graph.len();
    let jobs = opts.jobs.max(1);

    let planned_keys: Vec<&AssetKey> = plan.order.iter().map(|&id| &graph.node(id).key).collect();
    sink.on_event(&RunEvent::RunStarted {
        run_id: &run_id,
        planned: &planned_keys,
    });

    let mut values: Vec<Option<Value>> = vec![None; n];
    let mut outcomes: Vec<AssetOutcome> = Vec::with_capacity(plan.order.len() + injected.len());
    for (id, value) in injected.drain(..) {
        values[id] = Some(value);
        outcomes.push(AssetOutcome {
            key: graph.node(id).key.clone(),
            status: AssetStatus::Injected,
            attempts: 0,
            duration: Duration::ZERO,
            metadata: Vec::new(),
            logs: Vec::new(),
        });
    }

    // Per planned asset: upstreams still to finish; per value: consumers still to start.
    let mut pending = vec![0usize; n];
    let mut state = vec![State::Done; n];
    let mut consumers_left = vec![0usize; n];
    for &id in &plan.order {
        state[id] = State::Waiting;
    }
    for &id in &plan.order {
        let node = graph.node(id);
        pending[id] = node
            .upstream
            .iter()
            .filter(|&&up| state[up] == State::Waiting)
            .count();
        for &up in &node.inputs {
            consumers_left[up] += 1;
        }
    }

    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut ready_sync: Vec<AssetId> = Vec::new();
    let mut ready: Vec<AssetId> = plan
        .order
        .iter()
        .copied()
        .filter(|&id| pending[id] == 0)
        .collect();
    let mut running_sync = 0usize;
    let mut in_flight = 0usize;
    let mut remaining = plan.order.len();

    while remaining > 0 {
        // Start everything that is ready: async assets at once, sync ones up to `jobs`.
        for id in ready.drain(..) {
            match graph.node(id).def.compute {
                Compute::Async(_) => {
                    start(
                        graph,
                        id,
                        &run_id,
                        &mut values,
                        &mut consumers_left,
                        &opts,
                        &tx,
                        sink,
                    );
                    state[id] = State::Running;
                    in_flight += 1;
                }
                Compute::Sync(_) => ready_sync.push(id),
            }
        }
        while running_sync < jobs {
            let Some(id) = ready_sync.pop() else { break };
            start(
                graph,
                id,
                &run_id,
                &mut values,
                &mut consumers_left,
                &opts,
                &tx,
                sink,
            );
            state[id] = State::Running;
            running_sync += 1;
            in_flight += 1;
        }
        if in_flight == 0 {
            // Nothing runs and nothing can start: the rest was skipped (handled below) or the
            // plan is inconsistent. Never hang.
            break;
        }
        let Some(msg) = rx.recv().await else { break };
        match msg {
            Msg::Retrying {
                id,
                attempt,
                failure,
            } => {
                let key = &graph.node(id).key;
                sink.on_event(&RunEvent::AssetRetrying {
                    key,
                    attempt,
                    error: &failure,
                });
                sink.on_event(&RunEvent::AssetStarted {
                    key,
                    attempt: attempt + 1,
                });
            }
            Msg::Done {
                id,
                attempts,
                duration,
                result,
                logs,
                metadata,
            } => {
                in_flight -= 1;
                if !graph.node(id).def.is_async() {
                    running_sync -= 1;
                }
                state[id] = State::Done;
                remaining -= 1;
                let node = graph.node(id);
                let status = match result {
                    Ok(value) => {
                        sink.on_event(&RunEvent::AssetSucceeded {
                            key: &node.key,
                            duration,
                            metadata: &metadata,
                            logs: &logs,
                        });
                        if opts.keep_outputs || consumers_left[id] > 0 {
                            values[id] = Some(value);
                        }
                        for &down in &node.downstream {
                            if state[down] == State::Waiting {
                                pending[down] -= 1;
                                if pending[down] == 0 {
                                    ready.push(down);
                                }
                            }
                        }
                        AssetStatus::Succeeded
                    }
                    Err(failure) => {
                        sink.on_event(&RunEvent::AssetFailed {
                            key: &node.key,
                            duration,
                            error: &failure,
                            logs: &logs,
                        });
                        // Skip everything downstream that has not run.
                        let mut stack: Vec<AssetId> = node.downstream.clone();
                        while let Some(down) = stack.pop() {
                            if state[down] != State::Waiting {
                                continue;
                            }
                            state[down] = State::Done;
                            remaining -= 1;
                            let down_key = &graph.node(down).key;
                            sink.on_event(&RunEvent::AssetSkipped {
                                key: down_key,
                                because_of: &node.key,
                            });
                            outcomes.push(AssetOutcome {
                                key: down_key.clone(),
                                status: AssetStatus::Skipped {
                                    because_of: node.key.clone(),
                                },
                                attempts: 0,
                                duration: Duration::ZERO,
                                metadata: Vec::new(),
                                logs: Vec::new(),
                            });
                            stack.extend(graph.node(down).downstream.iter().copied());
                        }
                        AssetStatus::Failed(failure)
                    }
                };
                outcomes.push(AssetOutcome {
                    key: node.key.clone(),
                    status,
                    attempts,
                    duration,
                    metadata,
                    logs,
                });
            }
        }
    }

    let duration = started.elapsed();
    let result = RunResult {
        run_id,
        graph,
        outcomes,
        outputs: if opts.keep_outputs {
            values
        } else {
            Vec::new()
        },
        duration,
    };
    sink.on_event(&RunEvent::RunFinished {
        run_id: &result.run_id,
        success: result.success(),
        duration,
    });
    result
}

/// Hands the asset's inputs to a worker and emits `AssetStarted`.
#[allow(clippy::too_many_arguments)]
fn start(
    graph: &'static AssetGraph,
    id: AssetId,
    run_id: &RunId,
    values: &mut [Option<Value>],
    consumers_left: &mut [usize],
    opts: &ExecOptions,
    tx: &mpsc::UnboundedSender<Msg>,
    sink: &mut dyn EventSink,
) {
    let node = graph.node(id);
    let mut inputs: Vec<Value> = Vec::with_capacity(node.inputs.len());
    for &up in &node.inputs {
        // The planner guarantees every input is computed or injected before this runs.
        if let Some(value) = &values[up] {
            inputs.push(Arc::clone(value));
        }
        consumers_left[up] -= 1;
        if consumers_left[up] == 0 && !opts.keep_outputs {
            values[up] = None;
        }
    }
    sink.on_event(&RunEvent::AssetStarted {
        key: &node.key,
        attempt: 1,
    });
    let task = Task {
        id,
        key: node.key.clone(),
        run_id: run_id.clone(),
        retries: node.def.retries,
        inputs,
        tx: tx.clone(),
    };
    match node.def.compute {
        Compute::Sync(f) => {
            tokio::task::spawn_blocking(move || task.run_sync(f));
        }
        Compute::Async(f) => {
            tokio::spawn(task.run_async(f));
        }
    }
}

struct Task {
    id: AssetId,
    key: AssetKey,
    run_id: RunId,
    retries: u32,
    inputs: Vec<Value>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Task {
    fn run_sync(self, f: fn(&AssetContext, &[Value]) -> Result<Value, orch_core::BoxError>) {
        let mut logs = Vec::new();
        let mut attempt = 1;
        loop {
            let ctx = AssetContext::new(self.key.clone(), self.run_id.clone(), None, attempt);
            let span = crate::capture::asset_span(&ctx);
            let t0 = Instant::now();
            let outcome = span
                .in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(&ctx, &self.inputs))));
            let duration = t0.elapsed();
            let result = match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(AssetFailure::from_error(&*error)),
                Err(payload) => Err(AssetFailure::from_panic(&*payload)),
            };
            if self.finish_attempt(&ctx, attempt, duration, result, &mut logs) {
                return;
            }
            attempt += 1;
        }
    }

    async fn run_async(self, f: fn(AssetContext, Vec<Value>) -> orch_core::__private::BoxFuture) {
        use tracing::Instrument;
        let mut logs = Vec::new();
        let mut attempt = 1;
        loop {
            let ctx = AssetContext::new(self.key.clone(), self.run_id.clone(), None, attempt);
            let span = crate::capture::asset_span(&ctx);
            let t0 = Instant::now();
            // A panic in the asset's future ends its own task, not the executor.
            let fut = f(ctx.clone(), self.inputs.clone()).instrument(span);
            let outcome = tokio::spawn(fut).await;
            let duration = t0.elapsed();
            let result = match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(AssetFailure::from_error(&*error)),
                Err(join) => match join.try_into_panic() {
                    Ok(payload) => Err(AssetFailure::from_panic(&*payload)),
                    Err(_) => Err(AssetFailure {
                        chain: vec!["the asset's task was cancelled".to_owned()],
                        panicked: false,
                    }),
                },
            };
            if self.finish_attempt(&ctx, attempt, duration, result, &mut logs) {
                return;
            }
            attempt += 1;
        }
    }

    /// Reports the attempt; returns whether the task is done (success or out of retries).
    fn finish_attempt(
        &self,
        ctx: &AssetContext,
        attempt: u32,
        duration: Duration,
        result: Result<Value, AssetFailure>,
        logs: &mut Vec<LogLine>,
    ) -> bool {
        let (mut new_logs, metadata) = ctx.take_captured();
        logs.append(&mut new_logs);
        match result {
            Err(failure) if attempt <= self.retries => {
                // A closed channel means the run was abandoned; nothing to report to.
                let _ = self.tx.send(Msg::Retrying {
                    id: self.id,
                    attempt,
                    failure,
                });
                false
            }
            result => {
                let _ = self.tx.send(Msg::Done {
                    id: self.id,
                    attempts: attempt,
                    duration,
                    result,
                    logs: std::mem::take(logs),
                    metadata,
                });
                true
            }
        }
    }
}
