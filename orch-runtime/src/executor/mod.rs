//! The parallel executor: runs a planned subgraph on tokio, each asset as soon as its upstreams
//! are done, each exactly once, sharing every output with all its consumers through one `Arc`.
//!
//! The run's bookkeeping lives in one [`State`] behind a mutex, held only for a few
//! microseconds at a time. A worker that finishes an asset records the outcome, starts what
//! became ready and, if it is a sync worker, runs one ready sync asset itself: a chain of sync
//! assets then costs no thread hand-off per step. Events are queued in the state and emitted to
//! the sink by the caller's task, so a slow sink never holds up a worker.
//!
//! Sync assets run on the blocking pool, at most `jobs` at a time; async assets run on the
//! workers. A failure (an `Err` or a panic) is retried per `retries`, then skips the asset's
//! downstream while independent branches go on.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orch_core::__private::{BoxFuture, Compute, Value};
use orch_core::{AssetContext, AssetGraph, AssetId, AssetKey, LogLine, MetadataValue, RunId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::events::{AssetTimings, EventSink, RunEvent};
use crate::io::{IoManagers, OutputContext, Stored, WriteBehind};
use crate::plan::Plan;
use crate::result::{AssetFailure, AssetOutcome, AssetStatus, RunResult};

mod store;
pub(crate) use store::STORE_UNAVAILABLE;
mod task;

use store::Deferred;
use task::Task;

/// A value the run starts with instead of computing it.
pub(crate) struct Provided {
    pub(crate) id: AssetId,
    pub(crate) value: Value,
    /// Loaded from storage (`true`) or injected by the caller.
    pub(crate) loaded: bool,
    /// A step output loaded from the runs a re-execution repeats: the index, in
    /// [`ExecOptions::reexecutes`], of the run that stored it.
    pub(crate) stored_by: Option<usize>,
    pub(crate) data_version: Option<String>,
}

/// How to run.
pub(crate) struct ExecOptions {
    pub(crate) jobs: usize,
    pub(crate) keep_outputs: bool,
    pub(crate) run_id: RunId,
    /// Whatever proves the run's owner alive (the store's run lock): kept until the last task
    /// of the run has ended, even if the caller stops waiting (drops the future), so the run
    /// is never taken for dead early. The executor only holds it; it knows no store.
    pub(crate) liveness: Option<Arc<dyn Send + Sync>>,
    /// Where outputs are stored; `None` keeps them in memory for this run only.
    pub(crate) io: Option<Arc<IoManagers>>,
    /// The partition the run's partitioned assets materialize.
    pub(crate) partition: Option<String>,
    /// Or the range of partitions they materialize, each asset once over all of them.
    pub(crate) range: Option<Arc<[String]>>,
    /// What `#[resource]` parameters receive.
    pub(crate) resources: Arc<orch_core::Resources>,
    /// The run store's dynamic partitions, for `ctx.add_dynamic_partitions` (recorded runs).
    pub(crate) dynamic: Option<Arc<dyn orch_core::DynamicPartitionsStore>>,
    /// Cancels the run: nothing new starts, async assets are dropped at their next await.
    pub(crate) cancel: CancellationToken,
    /// Where log lines go as assets write them (the run store, for recorded runs).
    pub(crate) live_log: Option<orch_core::LiveLog>,
    /// Outputs are stored per run (the steps of an op job), not per asset.
    pub(crate) run_scoped_outputs: bool,
    /// The run config ops' `#[config]` parameters read.
    pub(crate) config: Option<Arc<orch_core::RunConfig>>,
    /// How much may be written in the background while consumers run.
    pub(crate) write_behind: WriteBehind,
    /// The runs this one re-executes, nearest first, as far as they ran with this run's config
    /// (op jobs): where a mapped step finds the outputs of elements that succeeded before.
    pub(crate) reexecutes: Arc<[RunId]>,
}

/// What happened, queued for the sink (owned, so workers never wait for it). Every asset
/// queues one `Finished`, so it stays unboxed: an allocation per asset would cost more than
/// the queue's few slots of padding.
#[allow(clippy::large_enum_variant)]
enum Queued {
    Started {
        id: AssetId,
        attempt: u32,
    },
    Retrying {
        id: AssetId,
        attempt: u32,
        failure: AssetFailure,
    },
    Finished(AssetOutcome),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NodeState {
    /// Not in the plan, or finished.
    Done,
    Waiting,
    Running,
}

struct State {
    values: Vec<Option<Value>>,
    /// Per planned asset: upstreams still to finish.
    pending: Vec<usize>,
    node: Vec<NodeState>,
    /// Per value: planned consumers that have not started yet (the value is dropped at 0
    /// unless outputs are kept).
    consumers_left: Vec<usize>,
    /// Sync assets that are ready but wait for a job slot.
    ready_sync: Vec<AssetId>,
    running_sync: usize,
    in_flight: usize,
    /// Planned assets whose outcome is not recorded yet (an asset whose output is stored
    /// after its consumers started is recorded when the store ends).
    remaining: usize,
    queue: Vec<Queued>,
    /// Per asset: the data version of its value in this run (computed, loaded or injected).
    versions: Vec<Option<Arc<str>>>,
    /// The stores that end after their consumers started (see [`store`]).
    stores: store::Stores,
}

impl State {
    /// A running asset has a result: it frees its place (and its job slot if it is sync).
    /// Its outcome is recorded separately (`remaining`).
    fn task_ended(&mut self, id: AssetId, sync: bool) {
        self.in_flight -= 1;
        self.node[id] = NodeState::Done;
        if sync {
            self.running_sync -= 1;
        }
    }
}

struct Shared {
    graph: &'static AssetGraph,
    run_id: RunId,
    jobs: usize,
    keep_outputs: bool,
    state: Mutex<State>,
    /// Wakes the caller's task when events are queued or the run ends.
    wake: Notify,
    runtime: tokio::runtime::Handle,
    _liveness: Option<Arc<dyn Send + Sync>>,
    io: Option<Arc<IoManagers>>,
    write_behind: WriteBehind,
    /// Set once a store is deferred in this run: until then no asset has an upstream store
    /// to wait for, and deciding how to store takes no lock.
    any_deferred: AtomicBool,
    /// Notified (with the state's mutex) whenever a deferred store ends.
    store_ended: Condvar,
    run_scoped_outputs: bool,
    /// See [`ExecOptions::reexecutes`].
    reexecutes: Arc<[RunId]>,
    /// Per step loaded from the runs this one re-executes: which of them stored it.
    stored_by: Vec<Option<usize>>,
    partition: Option<String>,
    range: Option<Arc<[String]>>,
    resources: Arc<orch_core::Resources>,
    dynamic: Option<Arc<dyn orch_core::DynamicPartitionsStore>>,
    /// The run's token: async assets and retry waits await it.
    cancel: CancellationToken,
    /// Set (by the watcher task) once the token is cancelled: what the scheduler and the
    /// assets' contexts read, an atomic load instead of the token's mutex.
    cancelled: Arc<AtomicBool>,
    /// What every asset's context shares, made once per run: the run id, and the
    /// cancellation check (which reads `cancelled`).
    scope: orch_core::RunScope,
}

impl Shared {
    /// Whether the run was canceled (as the scheduler saw it: nothing starts after this).
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// The partition `id` materializes in this run (`None` for unpartitioned assets, and in
    /// a run over a range).
    fn partition_of(&self, id: AssetId) -> Option<&str> {
        self.graph.node(id).partitions.as_ref()?;
        self.partition.as_deref()
    }

    /// The range of partitions `id` materializes in this run, in a run over a range.
    fn range_of(&self, id: AssetId) -> Option<&Arc<[String]>> {
        self.graph.node(id).partitions.as_ref()?;
        self.range.as_ref()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Asset code never runs under this lock, so poisoning means a bug in the executor;
        // the state is still consistent enough to finish reporting.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The run's job slots and runtime, lent to the threads a step starts (a mapped op's
/// helpers): a helper takes a free slot or does not start, and gives it back when it ends,
/// which may start a waiting sync asset.
struct Slots {
    run: std::sync::Weak<Shared>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slots")
    }
}

impl orch_core::StepThreads for Slots {
    fn try_take_slot(&self) -> bool {
        let Some(shared) = self.run.upgrade() else {
            return false;
        };
        let mut state = shared.lock();
        let free = state.running_sync < shared.jobs;
        if free {
            state.running_sync += 1;
        }
        free
    }

    fn give_back_slot(&self) {
        let Some(shared) = self.run.upgrade() else {
            return;
        };
        let mut state = shared.lock();
        state.running_sync -= 1;
        let inline = dispatch(&shared, &mut state, Vec::new(), false);
        debug_assert!(inline.is_none());
    }

    fn enter(&self, f: &mut dyn FnMut()) {
        let _inside = self.runtime.enter();
        f()
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `plan` to the end and returns what happened. Never fails: asset failures are outcomes.
pub(crate) async fn execute(
    graph: &'static AssetGraph,
    plan: Plan,
    injected: Vec<Provided>,
    opts: ExecOptions,
    sink: &mut dyn EventSink,
) -> RunResult {
    let started = Instant::now();
    let run_id = opts.run_id;
    let n = graph.len();

    let planned_keys: Vec<&AssetKey> = plan.order.iter().map(|&id| &graph.node(id).key).collect();
    sink.on_event(&RunEvent::RunStarted {
        run_id: &run_id,
        planned: &planned_keys,
    });

    let mut outcomes: Vec<AssetOutcome> = Vec::with_capacity(plan.order.len() + injected.len());
    let mut values: Vec<Option<Value>> = vec![None; n];
    let mut versions: Vec<Option<Arc<str>>> = vec![None; n];
    let mut stored_by = vec![None; n];
    for provided in injected {
        stored_by[provided.id] = provided.stored_by;
        values[provided.id] = Some(provided.value);
        versions[provided.id] = provided.data_version.map(Arc::from);
        outcomes.push(AssetOutcome::decided(
            graph.node(provided.id).key.clone(),
            if provided.loaded {
                AssetStatus::Loaded
            } else {
                AssetStatus::Injected
            },
        ));
    }
    let mut state = State {
        values,
        pending: vec![0; n],
        node: vec![NodeState::Done; n],
        consumers_left: vec![0; n],
        ready_sync: Vec::new(),
        running_sync: 0,
        in_flight: 0,
        remaining: plan.order.len(),
        queue: Vec::new(),
        versions,
        stores: store::Stores::new(n),
    };
    for &id in &plan.order {
        state.node[id] = NodeState::Waiting;
    }
    let mut ready = Vec::new();
    for &id in &plan.order {
        let node = graph.node(id);
        state.pending[id] = node
            .upstream
            .iter()
            .filter(|&&up| state.node[up] == NodeState::Waiting)
            .count();
        for &up in &node.inputs {
            state.consumers_left[up] += 1;
        }
        if state.pending[id] == 0 {
            ready.push(id);
        }
    }
    // The first ready asset in plan order should start first; `ready_sync` is a stack.
    ready.reverse();

    let cancelled = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let shared = Arc::new_cyclic(|run: &std::sync::Weak<Shared>| Shared {
        graph,
        run_id: run_id.clone(),
        jobs: opts.jobs.max(1),
        keep_outputs: opts.keep_outputs,
        state: Mutex::new(state),
        wake: Notify::new(),
        runtime: runtime.clone(),
        _liveness: opts.liveness,
        io: opts.io,
        write_behind: opts.write_behind,
        any_deferred: AtomicBool::new(false),
        store_ended: Condvar::new(),
        run_scoped_outputs: opts.run_scoped_outputs,
        reexecutes: opts.reexecutes,
        stored_by,
        partition: opts.partition,
        range: opts.range,
        resources: opts.resources,
        dynamic: opts.dynamic,
        cancelled: Arc::clone(&cancelled),
        scope: orch_core::RunScope::new(
            run_id,
            Some(orch_core::Cancellation::new(move || {
                cancelled.load(Ordering::Acquire)
            })),
        )
        .with_live_log(opts.live_log)
        .with_config(opts.config)
        .with_parallelism(opts.jobs.max(1))
        .with_threads(Arc::new(Slots {
            run: run.clone(),
            runtime,
        })),
        cancel: opts.cancel,
    });
    // A run canceled before it starts starts nothing.
    if shared.cancel.is_cancelled() {
        shared.cancelled.store(true, Ordering::Release);
    }
    // Watches the token: on cancellation, nothing new starts and what waits is canceled.
    // Holds the run only weakly, and is aborted when the run ends (or its caller drops it).
    let _watcher = {
        let run = Arc::downgrade(&shared);
        let token = shared.cancel.clone();
        AbortOnDrop(shared.runtime.spawn(async move {
            token.cancelled().await;
            if let Some(shared) = run.upgrade() {
                let mut state = shared.lock();
                shared.cancelled.store(true, Ordering::Release);
                cancel_waiting(&shared, &mut state);
            }
        }))
    };
    {
        let mut state = shared.lock();
        let inline = dispatch(&shared, &mut state, ready, false);
        debug_assert!(inline.is_none());
    }

    // Emit queued events until every planned asset is decided.
    let mut queue = Vec::new();
    loop {
        let wake = shared.wake.notified();
        let (finished, stuck) = {
            let mut state = shared.lock();
            std::mem::swap(&mut queue, &mut state.queue);
            (
                state.remaining == 0,
                state.in_flight == 0 && state.ready_sync.is_empty() && state.stores.idle(),
            )
        };
        for item in queue.drain(..) {
            emit(graph, item, sink, &mut outcomes);
        }
        if finished || stuck {
            // `stuck` (nothing running, nothing ready, assets left) cannot happen with a valid
            // plan; ending beats hanging.
            break;
        }
        wake.await;
    }

    let values = std::mem::take(&mut shared.lock().values);
    let duration = started.elapsed();
    let canceled = outcomes
        .iter()
        .any(|o| matches!(o.status, AssetStatus::Canceled));
    let result = RunResult {
        run_id: shared.run_id.clone(),
        graph,
        outcomes,
        outputs: if opts.keep_outputs {
            values
        } else {
            Vec::new()
        },
        duration,
        storage_error: None,
        timings: None,
        canceled,
        detached: false,
    };
    sink.on_event(&RunEvent::RunFinished {
        run_id: &result.run_id,
        success: result.success(),
        duration,
    });
    result
}

fn emit(
    graph: &AssetGraph,
    item: Queued,
    sink: &mut dyn EventSink,
    outcomes: &mut Vec<AssetOutcome>,
) {
    match item {
        Queued::Started { id, attempt } => sink.on_event(&RunEvent::AssetStarted {
            key: &graph.node(id).key,
            attempt,
        }),
        Queued::Retrying {
            id,
            attempt,
            failure,
        } => sink.on_event(&RunEvent::AssetRetrying {
            key: &graph.node(id).key,
            attempt,
            error: &failure,
        }),
        Queued::Finished(outcome) => {
            let key = &outcome.key;
            match &outcome.status {
                AssetStatus::Succeeded => {
                    sink.on_event(&RunEvent::AssetSucceeded {
                        key,
                        duration: outcome.duration,
                        metadata: &outcome.metadata,
                        logs: &outcome.logs,
                        data_version: outcome.data_version.as_deref(),
                        input_versions: &outcome.input_versions,
                        partitions: &outcome.partitions,
                        timings: outcome.timings,
                    });
                    for check in &outcome.checks {
                        sink.on_event(&RunEvent::CheckEvaluated { key, check });
                    }
                }
                AssetStatus::Failed(error) => sink.on_event(&RunEvent::AssetFailed {
                    key,
                    duration: outcome.duration,
                    error,
                    logs: &outcome.logs,
                    timings: outcome.timings,
                }),
                AssetStatus::Skipped { because_of, check } => {
                    sink.on_event(&RunEvent::AssetSkipped {
                        key,
                        because_of,
                        check: *check,
                    })
                }
                AssetStatus::Canceled => sink.on_event(&RunEvent::AssetCanceled { key }),
                AssetStatus::NotRequired { because_of } => {
                    sink.on_event(&RunEvent::AssetNotRequired { key, because_of })
                }
                AssetStatus::Injected | AssetStatus::Loaded => {}
            }
            outcomes.push(outcome);
        }
    }
}

/// Starts `ready` assets: async ones at once, sync ones while job slots are free. With
/// `may_inline` (the caller is a sync worker whose slot just freed), the first sync asset to
/// start is returned for the caller to run itself instead of being handed to another thread.
fn dispatch(
    shared: &Arc<Shared>,
    state: &mut State,
    ready: Vec<AssetId>,
    may_inline: bool,
) -> Option<Task> {
    if shared.is_cancelled() {
        // Nothing new starts; what was about to is canceled with everything still waiting.
        cancel_waiting(shared, state);
        return None;
    }
    for id in ready {
        match shared.graph.node(id).def.compute() {
            Compute::Async(f) => {
                let task = start(shared, state, id);
                shared.runtime.spawn(task.run_async(f));
            }
            Compute::Sync(_) => state.ready_sync.push(id),
        }
    }
    let mut inline = None;
    while state.running_sync < shared.jobs {
        let Some(id) = state.ready_sync.pop() else {
            break;
        };
        state.running_sync += 1;
        let task = start(shared, state, id);
        if may_inline && inline.is_none() {
            inline = Some(task);
        } else {
            shared.runtime.spawn_blocking(move || task.run_sync());
        }
    }
    inline
}

/// Marks `id` running, takes its inputs and queues `AssetStarted`.
fn start(shared: &Arc<Shared>, state: &mut State, id: AssetId) -> Task {
    let node = shared.graph.node(id);
    state.node[id] = NodeState::Running;
    state.in_flight += 1;
    let mut inputs: Vec<Value> = Vec::with_capacity(node.inputs.len());
    let mut missing = None;
    for &up in &node.inputs {
        // The planner provides every input (computed, loaded or injected) before this runs;
        // if one is absent anyway, the asset fails naming it, rather than receiving its other
        // inputs shifted into the wrong parameters.
        match &state.values[up] {
            Some(value) => inputs.push(Arc::clone(value)),
            None => {
                missing.get_or_insert(up);
                inputs.push(Arc::new(()));
            }
        }
        state.consumers_left[up] -= 1;
        if state.consumers_left[up] == 0 && !shared.keep_outputs {
            state.values[up] = None;
        }
    }
    state.queue.push(Queued::Started { id, attempt: 1 });
    Task {
        shared: Arc::clone(shared),
        id,
        inputs,
        // Nothing to load unless an input is mapped.
        mapped_loaded: node
            .def
            .input_partitions()
            .iter()
            .all(|m| *m == orch_core::PartitionMapping::Identity),
        sync: matches!(node.def.compute(), Compute::Sync(_)),
        // Adapted outside the run's lock (an adapter copies values).
        adapted: node.def.input_adapters().iter().all(|a| a.is_empty()),
        finished: false,
        missing_input: missing,
        load_time: Duration::ZERO,
        reserved: None,
    }
}

/// Decides waiting asset `id` without running it (skipped or canceled): it leaves the run's
/// count, lets go of the values only it would have consumed, and its outcome is queued.
fn decide_waiting(shared: &Shared, state: &mut State, id: AssetId, status: AssetStatus) {
    state.node[id] = NodeState::Done;
    state.remaining -= 1;
    for &up in &shared.graph.node(id).inputs {
        state.consumers_left[up] -= 1;
        if state.consumers_left[up] == 0 && !shared.keep_outputs {
            state.values[up] = None;
        }
    }
    let key = shared.graph.node(id).key.clone();
    state
        .queue
        .push(Queued::Finished(AssetOutcome::decided(key, status)));
}

/// Marks every asset that has not started as canceled (the run was asked to stop), and lets
/// go of the values only they would have consumed.
fn cancel_waiting(shared: &Shared, state: &mut State) {
    let graph = shared.graph;
    state.ready_sync.clear();
    for id in 0..graph.len() {
        if state.node[id] == NodeState::Waiting {
            decide_waiting(shared, state, id, AssetStatus::Canceled);
        }
    }
    shared.wake.notify_one();
}

/// Marks every waiting step downstream of `id`, whose optional output was `None`, as not
/// required (the run goes on, and succeeds without them).
fn not_required_downstream(shared: &Shared, state: &mut State, id: AssetId) {
    let because_of = &shared.graph.node(id).key;
    decide_downstream(shared, state, id, || AssetStatus::NotRequired {
        because_of: because_of.clone(),
    });
}

/// Decides every waiting asset downstream of `id` with `status()` (and lets go of the values
/// only they would have consumed).
fn decide_downstream(
    shared: &Shared,
    state: &mut State,
    id: AssetId,
    status: impl Fn() -> AssetStatus,
) {
    let graph = shared.graph;
    let mut stack: Vec<AssetId> = graph.node(id).downstream.clone();
    while let Some(down) = stack.pop() {
        if state.node[down] != NodeState::Waiting {
            continue;
        }
        decide_waiting(shared, state, down, status());
        stack.extend(graph.node(down).downstream.iter().copied());
    }
}

/// Marks every waiting asset downstream of `failed` as skipped, because of it or of its
/// blocking `check` (and lets go of the values only they would have consumed).
fn skip_downstream(
    shared: &Shared,
    state: &mut State,
    failed: AssetId,
    check: Option<&'static str>,
) {
    let because_of = &shared.graph.node(failed).key;
    decide_downstream(shared, state, failed, || AssetStatus::Skipped {
        because_of: because_of.clone(),
        check,
    });
}
