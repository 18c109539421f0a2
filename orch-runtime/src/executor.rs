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
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orch_core::__private::{BoxFuture, Compute, Value};
use orch_core::{AssetContext, AssetGraph, AssetId, AssetKey, LogLine, MetadataValue, RunId};
use tokio::sync::Notify;

use crate::events::{EventSink, RunEvent};
use crate::io::{IoManagers, OutputContext, Stored};
use crate::plan::Plan;
use crate::result::{AssetFailure, AssetOutcome, AssetStatus, RunResult};

/// A value the run starts with instead of computing it.
pub(crate) struct Provided {
    pub(crate) id: AssetId,
    pub(crate) value: Value,
    /// Loaded from storage (`true`) or injected by the caller.
    pub(crate) loaded: bool,
    pub(crate) data_version: Option<String>,
}

/// How to run.
pub(crate) struct ExecOptions {
    pub(crate) jobs: usize,
    pub(crate) keep_outputs: bool,
    pub(crate) run_id: RunId,
    /// The recorded run's lock: kept until the last task of the run has ended, even if the
    /// caller stops waiting (drops the future), so the run is never taken for dead early.
    pub(crate) run_lock: Option<Arc<crate::storage::RunLock>>,
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
}

/// What happened, queued for the sink (owned, so workers never wait for it).
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
    remaining: usize,
    queue: Vec<Queued>,
    /// Per asset: the data version of its value in this run (computed, loaded or injected).
    versions: Vec<Option<Arc<str>>>,
}

impl State {
    /// A running asset is decided: it frees its place (and its job slot if it is sync).
    fn task_ended(&mut self, id: AssetId, sync: bool) {
        self.in_flight -= 1;
        self.remaining -= 1;
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
    _run_lock: Option<Arc<crate::storage::RunLock>>,
    io: Option<Arc<IoManagers>>,
    partition: Option<String>,
    range: Option<Arc<[String]>>,
    resources: Arc<orch_core::Resources>,
    dynamic: Option<Arc<dyn orch_core::DynamicPartitionsStore>>,
}

impl Shared {
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
    for provided in injected {
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

    let shared = Arc::new(Shared {
        graph,
        run_id,
        jobs: opts.jobs.max(1),
        keep_outputs: opts.keep_outputs,
        state: Mutex::new(state),
        wake: Notify::new(),
        runtime: tokio::runtime::Handle::current(),
        _run_lock: opts.run_lock,
        io: opts.io,
        partition: opts.partition,
        range: opts.range,
        resources: opts.resources,
        dynamic: opts.dynamic,
    });
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
                state.in_flight == 0 && state.ready_sync.is_empty(),
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
                AssetStatus::Succeeded => sink.on_event(&RunEvent::AssetSucceeded {
                    key,
                    duration: outcome.duration,
                    metadata: &outcome.metadata,
                    logs: &outcome.logs,
                    data_version: outcome.data_version.as_deref(),
                    input_versions: &outcome.input_versions,
                    partitions: &outcome.partitions,
                }),
                AssetStatus::Failed(error) => sink.on_event(&RunEvent::AssetFailed {
                    key,
                    duration: outcome.duration,
                    error,
                    logs: &outcome.logs,
                }),
                AssetStatus::Skipped { because_of } => {
                    sink.on_event(&RunEvent::AssetSkipped { key, because_of })
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
    for id in ready {
        match shared.graph.node(id).def.compute {
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
    for &up in &node.inputs {
        // The planner guarantees every input is computed or injected before this runs.
        if let Some(value) = &state.values[up] {
            inputs.push(Arc::clone(value));
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
            .input_partitions
            .iter()
            .all(|m| *m == orch_core::PartitionMapping::Identity),
        sync: matches!(node.def.compute, Compute::Sync(_)),
        finished: false,
    }
}

/// One asset's attempts. If it is dropped before [`Task::finish`] recorded its outcome (a
/// panic outside the asset function: while formatting its error, dropping a value, waiting to
/// retry), its `Drop` records the asset as failed, so the run ends instead of hanging.
struct Task {
    shared: Arc<Shared>,
    id: AssetId,
    inputs: Vec<Value>,
    /// Whether the inputs redirected by partition mappings are loaded.
    mapped_loaded: bool,
    /// Runs on the blocking pool (and holds a job slot).
    sync: bool,
    finished: bool,
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = &self.shared;
        let mut state = shared.lock();
        state.task_ended(self.id, self.sync);
        state.queue.push(Queued::Finished(AssetOutcome::decided(
            shared.graph.node(self.id).key.clone(),
            AssetStatus::Failed(AssetFailure {
                chain: vec![
                    "the asset's task ended unexpectedly: orch panicked outside the asset function (while reporting its error, storing or dropping a value, or waiting to retry)".to_owned(),
                ],
                panicked: true,
            }),
        )));
        skip_downstream(shared, &mut state, self.id);
        // The freed job slot may start a waiting sync asset.
        let inline = dispatch(shared, &mut state, Vec::new(), false);
        debug_assert!(inline.is_none());
        drop(state);
        shared.wake.notify_one();
    }
}

/// What storing an output gave the record: its data version, and per partition in a run
/// over a range.
#[derive(Default)]
struct Persisted {
    data_version: Option<String>,
    partitions: Vec<crate::io::StoredPartition>,
}

/// How one attempt ended.
struct Attempt {
    number: u32,
    duration: Duration,
    result: Result<Value, AssetFailure>,
}

impl Task {
    fn context(&self, attempt: u32) -> AssetContext {
        let node = self.shared.graph.node(self.id);
        let run_id = self.shared.run_id.clone();
        let ctx = match (
            &node.partitions,
            self.shared.partition_of(self.id),
            self.shared.range_of(self.id),
        ) {
            (Some(partitions), Some(partition), _) => AssetContext::for_partition(
                node.key.clone(),
                run_id,
                partitions,
                partition,
                attempt,
            ),
            (Some(partitions), None, Some(keys)) => AssetContext::for_partition_range(
                node.key.clone(),
                run_id,
                partitions,
                Arc::clone(keys),
                attempt,
            ),
            _ => AssetContext::new(node.key.clone(), run_id, None, attempt),
        };
        let ctx = match &self.shared.dynamic {
            Some(store) => ctx.with_dynamic_partitions(Arc::clone(store)),
            None => ctx,
        };
        if node.def.resources.is_empty() {
            ctx
        } else {
            ctx.with_resources(Arc::clone(&self.shared.resources))
        }
    }

    /// Replaces the inputs a partition mapping redirects (`#[partitions(offset = -1)]`,
    /// `#[partitions(last = 7)]`) by what the upstream's I/O manager stored for the mapped
    /// partitions. The upstream has finished by now, so a partition it wrote in this run is
    /// among them. Done once, before the first attempt.
    fn load_mapped_inputs(&mut self) -> Result<(), AssetFailure> {
        use orch_core::PartitionMapping;
        if self.mapped_loaded {
            return Ok(());
        }
        let graph = self.shared.graph;
        let node = graph.node(self.id);
        let Some(partition) = self.shared.partition_of(self.id) else {
            return Ok(());
        };
        for (i, &up) in node.inputs.iter().enumerate() {
            let mapping = node.input_mapping(i);
            if mapping == PartitionMapping::Identity {
                continue;
            }
            let upstream = graph.node(up);
            let fail = |why: String| AssetFailure {
                chain: vec![
                    format!(
                        "could not load input `{}` ({mapping} for partition {partition})",
                        upstream.key
                    ),
                    why,
                ],
                panicked: false,
            };
            let Some(io) = &self.shared.io else {
                return Err(fail("a partition mapping reads the upstream's stored partitions, and this run stores nothing; record the run (the command line always does)".to_owned()));
            };
            self.inputs[i] = crate::io::partitioned::load_mapped(io, upstream, partition, mapping)
                .map_err(fail)?;
        }
        self.mapped_loaded = true;
        Ok(())
    }

    fn retries(&self) -> u32 {
        self.shared.graph.node(self.id).def.retries
    }

    /// Hands a successful output to the asset's I/O manager; returns its data version. A failure
    /// to store fails the asset.
    fn persist(&self, value: &Value) -> Result<Stored, AssetFailure> {
        let Some(io) = &self.shared.io else {
            return Ok(Stored::default());
        };
        let node = self.shared.graph.node(self.id);
        let manager = io
            .for_asset(&node.key, node.def)
            .map_err(|e| AssetFailure::from_error(&e))?;
        let ctx = OutputContext {
            key: &node.key,
            run_id: &self.shared.run_id,
            partition: self.shared.partition_of(self.id),
            output_type: node.def.output_type,
            codec: node.def.codec,
        };
        let store = || match self.shared.range_of(self.id) {
            Some(keys) => crate::io::partitioned::store_range(node, manager, &ctx, value, keys),
            None => manager.handle_output(&ctx, value),
        };
        match std::panic::catch_unwind(AssertUnwindSafe(store)) {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(error)) => {
                let mut failure = AssetFailure::from_error(&*error);
                failure
                    .chain
                    .insert(0, "could not store the output".to_owned());
                Err(failure)
            }
            Err(payload) => {
                let mut failure = AssetFailure::from_panic(&*payload);
                failure.chain.insert(
                    0,
                    "the I/O manager panicked while storing the output".to_owned(),
                );
                Err(failure)
            }
        }
    }

    /// Persists a successful attempt's output; a storage failure turns it into a failure.
    /// The manager's metadata joins the asset's (which wins on a shared label), and its
    /// replacement value (a scan of a written `LazyFrame`) is what consumers receive.
    fn persist_attempt(
        &self,
        attempt: &mut Attempt,
        metadata: &mut Vec<(String, MetadataValue)>,
    ) -> Persisted {
        let result = match &attempt.result {
            Ok(value) => self.persist(value),
            Err(_) => return Persisted::default(),
        };
        match result {
            Ok(stored) => {
                // Each partition of a range records the asset's own metadata with its own.
                let partitions = stored
                    .partitions
                    .into_iter()
                    .map(|mut p| {
                        for (label, value) in metadata.iter() {
                            if !p.metadata.iter().any(|(l, _)| l == label) {
                                p.metadata.push((label.clone(), value.clone()));
                            }
                        }
                        p
                    })
                    .collect();
                for (label, value) in stored.metadata {
                    if !metadata.iter().any(|(l, _)| *l == label) {
                        metadata.push((label, value));
                    }
                }
                if let Some(value) = stored.replacement {
                    attempt.result = Ok(value);
                }
                Persisted {
                    data_version: stored.data_version,
                    partitions,
                }
            }
            Err(failure) => {
                attempt.result = Err(failure);
                Persisted::default()
            }
        }
    }

    /// Queues `AssetStarted` for a retry (after its delay, so the record shows when it ran).
    fn queue_restart(&self, attempt: u32) {
        self.shared.lock().queue.push(Queued::Started {
            id: self.id,
            attempt,
        });
        self.shared.wake.notify_one();
    }

    /// How long to wait after failed attempt `number` before the next one.
    fn retry_delay(&self, number: u32) -> Duration {
        let first = self.shared.graph.node(self.id).def.retry_delay;
        first * 2u32.pow(number.saturating_sub(1).min(5))
    }

    /// Runs on the blocking pool; continues with a ready sync successor when there is one.
    fn run_sync(self) {
        let mut task = self;
        loop {
            let Compute::Sync(f) = task.shared.graph.node(task.id).def.compute else {
                unreachable!("run_sync is only called for sync assets")
            };
            let mut logs = Vec::new();
            let mut number = 1;
            let (attempt, metadata) = loop {
                let ctx = task.context(number);
                let span = crate::capture::asset_span(&ctx);
                let t0 = Instant::now();
                let result = match task.load_mapped_inputs() {
                    Err(failure) => Err(failure),
                    Ok(()) => match span.in_scope(|| {
                        std::panic::catch_unwind(AssertUnwindSafe(|| f(&ctx, &task.inputs)))
                    }) {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(error)) => Err(AssetFailure::from_error(&*error)),
                        Err(payload) => Err(AssetFailure::from_panic(&*payload)),
                    },
                };
                let attempt = Attempt {
                    number,
                    duration: t0.elapsed(),
                    result,
                };
                if let Some(done) = task.end_attempt(&ctx, attempt, &mut logs) {
                    break done;
                }
                // The job slot stays taken while a sync asset waits for its retry.
                let delay = task.retry_delay(number);
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                number += 1;
                task.queue_restart(number);
            };
            let (mut attempt, mut metadata) = (attempt, metadata);
            let persisted = task.persist_attempt(&mut attempt, &mut metadata);
            match task.finish(attempt, logs, metadata, persisted) {
                Some(next) => task = next,
                None => return,
            }
        }
    }

    async fn run_async(mut self, f: fn(AssetContext, Vec<Value>) -> BoxFuture) {
        use tracing::Instrument;
        let mut logs = Vec::new();
        let mut number = 1;
        let (attempt, metadata) = loop {
            let ctx = self.context(number);
            let span = crate::capture::asset_span(&ctx);
            let t0 = Instant::now();
            // Loading mapped inputs is blocking I/O: on the blocking pool. (If it panics, the
            // task's `Drop` records the failure.)
            let loaded = if self.mapped_loaded {
                Ok(())
            } else {
                match tokio::task::spawn_blocking(move || {
                    let loaded = self.load_mapped_inputs();
                    (self, loaded)
                })
                .await
                {
                    Ok((task, loaded)) => {
                        self = task;
                        loaded
                    }
                    Err(_) => return,
                }
            };
            let result = match loaded {
                Err(failure) => Err(failure),
                // A panic in the asset's future ends its own task, not the executor.
                Ok(()) => {
                    match tokio::spawn(f(ctx.clone(), self.inputs.clone()).instrument(span)).await {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(error)) => Err(AssetFailure::from_error(&*error)),
                        Err(join) => match join.try_into_panic() {
                            Ok(payload) => Err(AssetFailure::from_panic(&*payload)),
                            Err(_) => Err(AssetFailure {
                                chain: vec!["the asset's task was cancelled".to_owned()],
                                panicked: false,
                            }),
                        },
                    }
                }
            };
            let attempt = Attempt {
                number,
                duration: t0.elapsed(),
                result,
            };
            if let Some(done) = self.end_attempt(&ctx, attempt, &mut logs) {
                break done;
            }
            let delay = self.retry_delay(number);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            number += 1;
            self.queue_restart(number);
        };
        let (mut attempt, mut metadata) = (attempt, metadata);
        let (task, attempt, metadata, persisted) =
            if self.shared.io.is_some() && attempt.result.is_ok() {
                // Storing is blocking I/O: do it on the blocking pool, not on a runtime worker.
                match tokio::task::spawn_blocking(move || {
                    let version = self.persist_attempt(&mut attempt, &mut metadata);
                    (self, attempt, metadata, version)
                })
                .await
                {
                    Ok(done) => done,
                    // A panic in there dropped the task inside the closure; its `Drop` recorded
                    // the failure.
                    Err(_) => return,
                }
            } else {
                (self, attempt, metadata, Persisted::default())
            };
        let inline = task.finish(attempt, logs, metadata, persisted);
        debug_assert!(inline.is_none());
    }

    /// Collects the attempt's logs; returns the final attempt (with its metadata) unless the
    /// asset will be retried, in which case `AssetRetrying` is queued.
    fn end_attempt(
        &self,
        ctx: &AssetContext,
        attempt: Attempt,
        logs: &mut Vec<LogLine>,
    ) -> Option<(Attempt, Vec<(String, MetadataValue)>)> {
        let (mut new_logs, metadata) = ctx.take_captured();
        logs.append(&mut new_logs);
        match attempt.result {
            Err(failure) if attempt.number <= self.retries() => {
                let mut state = self.shared.lock();
                state.queue.push(Queued::Retrying {
                    id: self.id,
                    attempt: attempt.number,
                    failure,
                });
                drop(state);
                self.shared.wake.notify_one();
                None
            }
            _ => Some((attempt, metadata)),
        }
    }

    /// Records the asset's outcome, skips its downstream on failure, and starts what became
    /// ready. A sync worker gets back a task to run next on its own thread.
    fn finish(
        mut self,
        attempt: Attempt,
        logs: Vec<LogLine>,
        metadata: Vec<(String, MetadataValue)>,
        persisted: Persisted,
    ) -> Option<Task> {
        let Persisted {
            data_version,
            partitions,
        } = persisted;
        let inputs = std::mem::take(&mut self.inputs);
        let shared = Arc::clone(&self.shared);
        let graph = shared.graph;
        let node = graph.node(self.id);
        let mut state = shared.lock();
        state.task_ended(self.id, self.sync);
        let mut ready = Vec::new();
        let failed = attempt.result.is_err();
        // Only a persisted run has versions to record (and this costs allocations per input).
        let input_versions: Vec<(AssetKey, Option<String>)> = if shared.io.is_some() {
            node.upstream
                .iter()
                .map(|&up| {
                    (
                        graph.node(up).key.clone(),
                        state.versions[up].as_deref().map(str::to_owned),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        state.versions[self.id] = data_version.as_deref().map(Arc::from);
        let status = match attempt.result {
            Ok(value) => {
                if shared.keep_outputs || state.consumers_left[self.id] > 0 {
                    state.values[self.id] = Some(value);
                }
                for &down in &node.downstream {
                    if state.node[down] == NodeState::Waiting {
                        state.pending[down] -= 1;
                        if state.pending[down] == 0 {
                            ready.push(down);
                        }
                    }
                }
                AssetStatus::Succeeded
            }
            Err(failure) => AssetStatus::Failed(failure),
        };
        state.queue.push(Queued::Finished(AssetOutcome {
            key: node.key.clone(),
            status,
            attempts: attempt.number,
            duration: attempt.duration,
            metadata,
            logs,
            data_version,
            input_versions,
            partitions,
        }));
        if failed {
            skip_downstream(&shared, &mut state, self.id);
        }
        let next = dispatch(&shared, &mut state, ready, self.sync);
        self.finished = true;
        drop(state);
        shared.wake.notify_one();
        // Outside the lock: dropping the last reference to an input runs its `Drop`.
        drop(inputs);
        next
    }
}

/// Marks every waiting asset downstream of `failed` as skipped (and lets go of the values only
/// they would have consumed).
fn skip_downstream(shared: &Shared, state: &mut State, failed: AssetId) {
    let graph = shared.graph;
    let because_of = &graph.node(failed).key;
    let mut stack: Vec<AssetId> = graph.node(failed).downstream.clone();
    while let Some(down) = stack.pop() {
        if state.node[down] != NodeState::Waiting {
            continue;
        }
        state.node[down] = NodeState::Done;
        state.remaining -= 1;
        for &up in &graph.node(down).inputs {
            state.consumers_left[up] -= 1;
            if state.consumers_left[up] == 0 && !shared.keep_outputs {
                state.values[up] = None;
            }
        }
        state.queue.push(Queued::Finished(AssetOutcome::decided(
            graph.node(down).key.clone(),
            AssetStatus::Skipped {
                because_of: because_of.clone(),
            },
        )));
        stack.extend(graph.node(down).downstream.iter().copied());
    }
}
