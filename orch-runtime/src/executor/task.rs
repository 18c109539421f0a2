//! One asset's attempts: its context, mapped inputs, retries, storing the output, and the
//! outcome that frees its consumers.

use super::*;

/// One asset's attempts. If it is dropped before [`Task::finish`] recorded its outcome (a
/// panic outside the asset function: while formatting its error, dropping a value, waiting to
/// retry), its `Drop` records the asset as failed, so the run ends instead of hanging.
pub(super) struct Task {
    pub(super) shared: Arc<Shared>,
    pub(super) id: AssetId,
    pub(super) inputs: Vec<Value>,
    /// Whether the inputs redirected by partition mappings are loaded.
    pub(super) mapped_loaded: bool,
    /// Runs on the blocking pool (and holds a job slot).
    pub(super) sync: bool,
    /// Whether the inputs read through adapters (`.collect()`, a tuple's part) are adapted.
    pub(super) adapted: bool,
    pub(super) finished: bool,
    /// An input whose value was absent when the asset started (a planner bug): the asset
    /// fails naming it instead of running.
    pub(super) missing_input: Option<AssetId>,
    /// Time spent loading the inputs a partition mapping redirects.
    pub(super) load_time: Duration,
    /// Memory reserved for a background write of its output, until `finish` hands it on.
    pub(super) reserved: Option<usize>,
}

impl Drop for Task {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = &self.shared;
        let mut state = shared.lock();
        if let Some(bytes) = self.reserved.take() {
            state.stores.release(bytes);
        }
        state.task_ended(self.id, self.sync);
        state.remaining -= 1;
        state.queue.push(Queued::Finished(AssetOutcome::decided(
            shared.graph.node(self.id).key.clone(),
            AssetStatus::Failed(AssetFailure {
                chain: vec![
                    "the asset's task ended unexpectedly: orch panicked outside the asset function (while reporting its error, storing or dropping a value, or waiting to retry)".to_owned(),
                ],
                panicked: true,
            }),
        )));
        skip_downstream(shared, &mut state, self.id, None);
        // The freed job slot may start a waiting sync asset.
        let inline = dispatch(shared, &mut state, Vec::new(), false);
        debug_assert!(inline.is_none());
        drop(state);
        shared.wake.notify_one();
    }
}

/// How a finished attempt's output was stored.
enum Storage {
    /// Before its consumers start (or there was nothing to store).
    Done(Persisted),
    /// After its consumers start (see [`super::store`]), with the memory reserved for a
    /// background write.
    Deferred { bytes: Option<usize> },
}

/// What storing an output gave the record: its data version, and per partition in a run
/// over a range.
#[derive(Default)]
struct Persisted {
    data_version: Option<String>,
    partitions: Vec<crate::io::StoredPartition>,
    /// How long the I/O manager took.
    store: Duration,
}

/// How one attempt ended.
struct Attempt {
    number: u32,
    duration: Duration,
    /// Of `duration`, loading the inputs a partition mapping redirects.
    load: Duration,
    /// Of `duration`, the asset's function (from the moment its inputs were ready).
    compute: Duration,
    result: Result<Value, AssetFailure>,
    /// The run was canceled while it ran (an async asset dropped at an await).
    canceled: bool,
}

impl Attempt {
    /// The run was canceled while the asset waited to retry: it is not tried again.
    fn canceled_before_retry(number: u32) -> Attempt {
        Attempt {
            number,
            duration: Duration::ZERO,
            load: Duration::ZERO,
            compute: Duration::ZERO,
            result: Err(AssetFailure {
                chain: vec!["the run was canceled before the asset was retried".to_owned()],
                panicked: false,
            }),
            canceled: true,
        }
    }
}

impl Task {
    fn context(&self, attempt: u32) -> AssetContext {
        let node = self.shared.graph.node(self.id);
        let run = self.shared.scope.clone();
        let ctx = match (
            &node.partitions,
            self.shared.partition_of(self.id),
            self.shared.range_of(self.id),
        ) {
            (Some(partitions), Some(partition), _) => {
                AssetContext::for_partition(node.key.clone(), run, partitions, partition, attempt)
            }
            (Some(partitions), None, Some(keys)) => AssetContext::for_partition_range(
                node.key.clone(),
                run,
                partitions,
                Arc::clone(keys),
                attempt,
            ),
            _ => AssetContext::new(node.key.clone(), run, None, attempt),
        };
        let ctx = match &self.shared.dynamic {
            Some(store) => ctx.with_dynamic_partitions(Arc::clone(store)),
            None => ctx,
        };
        let ctx = match self.checkpoints() {
            Some(checkpoints) => ctx.with_checkpoints(checkpoints),
            None => ctx,
        };
        if node.def.resources().is_empty() {
            ctx
        } else {
            ctx.with_resources(Arc::clone(&self.shared.resources))
        }
    }

    /// Where a step mapped over a `Dynamic` keeps its elements' outputs when some fail, and
    /// finds those that runs it re-executes kept: only runs that read the inputs this one
    /// reads (every input loaded, and stored by that run or an older one). Computed again,
    /// the elements may differ. Recorded runs of op jobs only.
    fn checkpoints(&self) -> Option<Arc<dyn orch_core::op::ElementCheckpoints>> {
        let shared = &self.shared;
        if !shared.run_scoped_outputs {
            return None;
        }
        let io = shared.io.as_ref()?;
        let node = shared.graph.node(self.id);
        let op = crate::jobs::job_of_step(&node.key)?
            .op(self.id)
            .element_op()?;
        // The newest run that stored one of the inputs: the runs after it read them all.
        let newest = node
            .inputs
            .iter()
            .map(|&up| shared.stored_by[up])
            .try_fold(usize::MAX, |newest, by| by.map(|by| newest.min(by)));
        let reuse_from: Arc<[RunId]> = match newest {
            Some(by) if by < shared.reexecutes.len() => Arc::from(&shared.reexecutes[..=by]),
            _ => Arc::from([]),
        };
        Some(Arc::new(crate::jobs::StepCheckpoints {
            io: Arc::clone(io),
            step: node.key.clone(),
            def: node.def,
            op,
            run_id: shared.run_id.clone(),
            reuse_from,
        }))
    }

    /// Replaces the inputs a partition mapping redirects (`#[partitions(offset = -1)]`,
    /// `#[partitions(last = 7)]`) by what the upstream's I/O manager stored for the mapped
    /// partitions. The upstream has finished by now, so a partition it wrote in this run is
    /// among them. Done once, before the first attempt.
    fn load_mapped_inputs(&mut self) -> Result<(), AssetFailure> {
        use orch_core::PartitionMapping;
        if let Some(up) = self.missing_input {
            return Err(AssetFailure {
                chain: vec![format!(
                    "input `{}` has no value: it was neither computed, loaded nor injected in this run (a bug in orch's planning; please report it)",
                    self.shared.graph.node(up).key
                )],
                panicked: false,
            });
        }
        if !self.adapted {
            self.adapt_inputs()?;
            self.adapted = true;
        }
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
            let started = Instant::now();
            let loaded = crate::io::partitioned::load_mapped(io, upstream, partition, mapping);
            self.load_time += started.elapsed();
            self.inputs[i] = loaded.map_err(fail)?;
        }
        self.mapped_loaded = true;
        Ok(())
    }

    /// Passes the inputs read through adapters (`.collect()` of a `Dynamic`, a part of a
    /// tuple) through them, in order. An adapter copies values, so a panic in a `Clone` fails
    /// the asset like one in its function.
    fn adapt_inputs(&mut self) -> Result<(), AssetFailure> {
        let node = self.shared.graph.node(self.id);
        for (i, adapters) in node.def.input_adapters().iter().enumerate() {
            for adapt in adapters.iter() {
                let Some(value) = self.inputs.get(i) else {
                    break;
                };
                let adapted = std::panic::catch_unwind(AssertUnwindSafe(|| adapt(value)));
                self.inputs[i] = adapted.map_err(|payload| {
                    let mut failure = AssetFailure::from_panic(&*payload);
                    failure.chain.insert(
                        0,
                        format!(
                            "could not pass input `{}` on",
                            self.shared.graph.node(node.inputs[i]).key
                        ),
                    );
                    failure
                })?;
            }
        }
        Ok(())
    }

    fn retries(&self) -> u32 {
        self.shared.graph.node(self.id).def.retries()
    }

    /// Persists a successful attempt's output; a storage failure turns it into a failure.
    /// The manager's metadata joins the asset's (which wins on a shared label), and its
    /// replacement value (a scan of a written `LazyFrame`) is what consumers receive.
    fn persist_attempt(
        &self,
        attempt: &mut Attempt,
        metadata: &mut Vec<(String, MetadataValue)>,
    ) -> Persisted {
        if self.shared.io.is_none() {
            return Persisted::default();
        }
        let started = Instant::now();
        let result = match &attempt.result {
            // An optional output that was `None`: nothing to store.
            Ok(value) if value.is::<orch_core::__private::NoOutput>() => {
                return Persisted::default();
            }
            Ok(value) => super::store::persist(&self.shared, self.id, value),
            Err(_) => return Persisted::default(),
        };
        let store = started.elapsed();
        match result {
            Ok(stored) => {
                // Each partition of a range records the asset's own metadata with its own.
                let partitions = stored
                    .partitions
                    .into_iter()
                    .map(|mut p| {
                        super::store::merge_metadata(&mut p.metadata, metadata.clone());
                        p
                    })
                    .collect();
                super::store::merge_metadata(metadata, stored.metadata);
                if let Some(value) = stored.replacement {
                    attempt.result = Ok(value);
                }
                Persisted {
                    data_version: stored.data_version,
                    partitions,
                    store,
                }
            }
            Err(failure) => {
                attempt.result = Err(failure);
                Persisted {
                    store,
                    ..Persisted::default()
                }
            }
        }
    }

    /// Stores a successful attempt's output now, or decides to store it after its consumers
    /// start (see [`super::store`]). An output whose upstream's could not be stored is not
    /// stored: the attempt fails.
    fn store(
        &mut self,
        attempt: &mut Attempt,
        metadata: &mut Vec<(String, MetadataValue)>,
    ) -> Storage {
        if self.shared.io.is_none() {
            return Storage::Done(Persisted::default());
        }
        self.settle(attempt);
        let value = match &attempt.result {
            Ok(value) => Arc::clone(value),
            Err(_) => return Storage::Done(Persisted::default()),
        };
        // An optional output that was `None` stores nothing, but is recorded after its
        // upstreams all the same.
        let mode = match value.is::<orch_core::__private::NoOutput>() {
            true => crate::io::Storing::Deferrable,
            false => super::store::storing(&self.shared, self.id, &value),
        };
        match self.shared.decide(self.id, mode) {
            super::store::Decision::Inline => {
                Storage::Done(self.persist_attempt(attempt, metadata))
            }
            super::store::Decision::Defer { bytes } => {
                self.reserved = bytes;
                Storage::Deferred { bytes }
            }
            super::store::Decision::Refused(upstream) => {
                attempt.result = Err(self.shared.refused(upstream));
                Storage::Done(Persisted::default())
            }
        }
    }

    /// Collects a lazy frame output whose plan reads only frames in memory, so that its
    /// consumers and its write start from the result (see [`orch_core::frame::FrameCodec`]'s
    /// `settle`). Part of the asset's compute time; a plan that fails fails the asset.
    fn settle(&self, attempt: &mut Attempt) {
        let node = self.shared.graph.node(self.id);
        let (Some(frame), Ok(value)) = (
            node.def.storage_codec().and_then(|c| c.frame),
            &attempt.result,
        ) else {
            return;
        };
        let started = Instant::now();
        let settled = std::panic::catch_unwind(AssertUnwindSafe(|| (frame.settle)(value)));
        let failure = |mut failure: AssetFailure| {
            failure
                .chain
                .insert(0, "could not collect the LazyFrame it returned".to_owned());
            failure
        };
        match settled {
            Ok(Ok(None)) => return,
            Ok(Ok(Some(value))) => attempt.result = Ok(value),
            Ok(Err(error)) => attempt.result = Err(failure(AssetFailure::from_error(&*error))),
            Err(payload) => attempt.result = Err(failure(AssetFailure::from_panic(&*payload))),
        }
        attempt.compute += started.elapsed();
        attempt.duration += started.elapsed();
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
        let first = self.shared.graph.node(self.id).def.retry_delay();
        orch_core::__private::retry_backoff(first, number)
    }

    /// Runs on the blocking pool; continues with a ready sync successor when there is one.
    pub(super) fn run_sync(self) {
        let mut task = self;
        loop {
            let Compute::Sync(f) = task.shared.graph.node(task.id).def.compute() else {
                unreachable!("run_sync is only called for sync assets")
            };
            let mut logs = Vec::new();
            let mut number = 1;
            let (attempt, metadata) = loop {
                let ctx = task.context(number);
                let span = crate::capture::asset_span(&ctx);
                let t0 = Instant::now();
                let before = task.load_time;
                let loaded = task.load_mapped_inputs();
                let load = task.load_time - before;
                let computing = Instant::now();
                let result = match loaded {
                    Err(failure) => Err(failure),
                    Ok(()) => match span.in_scope(|| {
                        std::panic::catch_unwind(AssertUnwindSafe(|| f(&ctx, &task.inputs)))
                    }) {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(error)) => Err(AssetFailure::from_error(&*error)),
                        Err(payload) => Err(AssetFailure::from_panic(&*payload)),
                    },
                };
                // A sync asset that gives up with an error once the run is canceled (it saw
                // `ctx.is_cancelled()`) was canceled, not failed.
                let canceled = result.is_err() && task.shared.is_cancelled();
                let attempt = Attempt {
                    number,
                    duration: t0.elapsed(),
                    load,
                    compute: computing.elapsed(),
                    result,
                    canceled,
                };
                if let Some(done) = task.end_attempt(&ctx, attempt, &mut logs) {
                    break done;
                }
                // The job slot stays taken while a sync asset waits for its retry; a canceled
                // run stops waiting (within 10 ms) and retries nothing.
                let until = Instant::now() + task.retry_delay(number);
                while !task.shared.cancel.is_cancelled() && Instant::now() < until {
                    std::thread::sleep((until - Instant::now()).min(Duration::from_millis(10)));
                }
                if task.shared.cancel.is_cancelled() {
                    break (Attempt::canceled_before_retry(number), Vec::new());
                }
                number += 1;
                task.queue_restart(number);
            };
            let (mut attempt, mut metadata) = (attempt, metadata);
            let storage = task.store(&mut attempt, &mut metadata);
            match task.finish(attempt, logs, metadata, storage) {
                Some(next) => task = next,
                None => return,
            }
        }
    }

    pub(super) async fn run_async(mut self, f: fn(AssetContext, Vec<Value>) -> BoxFuture) {
        use tracing::Instrument;
        let mut logs = Vec::new();
        let mut number = 1;
        let (attempt, metadata) = loop {
            let ctx = self.context(number);
            let span = crate::capture::asset_span(&ctx);
            let t0 = Instant::now();
            let before = self.load_time;
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
            let load = self.load_time - before;
            let computing = Instant::now();
            let mut canceled = false;
            let result = match loaded {
                Err(failure) => Err(failure),
                // A panic in the asset's future ends its own task, not the executor.
                Ok(()) => {
                    let mut handle =
                        tokio::spawn(f(ctx.clone(), self.inputs.clone()).instrument(span));
                    // A canceled run drops the asset's future at its next await.
                    let joined = tokio::select! {
                        joined = &mut handle => joined,
                        () = self.shared.cancel.cancelled() => {
                            handle.abort();
                            canceled = true;
                            handle.await
                        }
                    };
                    match joined {
                        Ok(Ok(value)) if !canceled => Ok(value),
                        _ if canceled => Err(AssetFailure {
                            chain: vec!["the run was canceled while the asset ran".to_owned()],
                            panicked: false,
                        }),
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
                load,
                compute: computing.elapsed(),
                result,
                canceled,
            };
            if let Some(done) = self.end_attempt(&ctx, attempt, &mut logs) {
                break done;
            }
            let delay = self.retry_delay(number);
            if !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = self.shared.cancel.cancelled() => {}
                }
            }
            if self.shared.cancel.is_cancelled() {
                break (Attempt::canceled_before_retry(number), Vec::new());
            }
            number += 1;
            self.queue_restart(number);
        };
        let (mut attempt, mut metadata) = (attempt, metadata);
        let (task, attempt, metadata, storage) =
            if self.shared.io.is_some() && attempt.result.is_ok() {
                // Storing is blocking I/O (and may wait for an upstream's store): on the
                // blocking pool, not on a runtime worker.
                match tokio::task::spawn_blocking(move || {
                    let storage = self.store(&mut attempt, &mut metadata);
                    (self, attempt, metadata, storage)
                })
                .await
                {
                    Ok(done) => done,
                    // A panic in there dropped the task inside the closure; its `Drop` recorded
                    // the failure.
                    Err(_) => return,
                }
            } else {
                (self, attempt, metadata, Storage::Done(Persisted::default()))
            };
        let inline = task.finish(attempt, logs, metadata, storage);
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
            // A canceled run retries nothing.
            Err(failure) if attempt.number <= self.retries() && !self.shared.is_cancelled() => {
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

    /// Records the asset's outcome (or defers it to the end of its store), skips its
    /// downstream on failure, and starts what became ready. A sync worker gets back a task to
    /// run next on its own thread.
    fn finish(
        mut self,
        attempt: Attempt,
        logs: Vec<LogLine>,
        metadata: Vec<(String, MetadataValue)>,
        storage: Storage,
    ) -> Option<Task> {
        let (persisted, mut deferred) = match storage {
            Storage::Done(persisted) => (persisted, None),
            Storage::Deferred { bytes } => (Persisted::default(), Some(bytes)),
        };
        let mut attempt = attempt;
        let Persisted {
            data_version,
            partitions,
            store,
        } = persisted;
        let timings = AssetTimings::new(attempt.load, attempt.compute, store);
        let inputs = std::mem::take(&mut self.inputs);
        let shared = Arc::clone(&self.shared);
        let graph = shared.graph;
        let node = graph.node(self.id);
        // Its checks, on this worker, before anything downstream may start: a blocking check
        // that fails keeps the downstream from ever seeing the value.
        let checks = match &attempt.result {
            Ok(value) if crate::checks::any() => crate::checks::run_checks(&node.key, value),
            _ => Vec::new(),
        };
        let blocked = checks.iter().find(|c| c.blocks()).map(|c| c.name);
        let mut state = shared.lock();
        // Its reservation goes on with its store, or back.
        let reserved = self.reserved.take();
        // An upstream's store failed after this one was deferred: refused before any consumer
        // sees the value.
        if deferred.is_some()
            && let Some(up) = state.stores.unstored_upstream(graph, self.id)
        {
            attempt.result = Err(shared.refused(up));
            deferred = None;
            if let Some(bytes) = reserved {
                state.stores.release(bytes);
            }
        }
        state.task_ended(self.id, self.sync);
        let mut ready = Vec::new();
        let failed = attempt.result.is_err() && !attempt.canceled;
        let mut no_output = false;
        let mut stored_later = None;
        let status = match attempt.result {
            Ok(value) if value.is::<orch_core::__private::NoOutput>() => {
                no_output = true;
                if let Some(bytes) = deferred {
                    stored_later = Some((value, bytes));
                }
                AssetStatus::Succeeded
            }
            Ok(value) => {
                if let Some(bytes) = deferred {
                    stored_later = Some((Arc::clone(&value), bytes));
                }
                // Kept for the caller even when a check blocked it (the asset succeeded);
                // never handed to the downstream then.
                if shared.keep_outputs || (state.consumers_left[self.id] > 0 && blocked.is_none()) {
                    state.values[self.id] = Some(value);
                }
                for &down in node.downstream.iter().filter(|_| blocked.is_none()) {
                    if state.node[down] == NodeState::Waiting {
                        state.pending[down] -= 1;
                        if state.pending[down] == 0 {
                            ready.push(down);
                        }
                    }
                }
                AssetStatus::Succeeded
            }
            Err(_) if attempt.canceled => AssetStatus::Canceled,
            Err(failure) => AssetStatus::Failed(failure),
        };
        let outcome = AssetOutcome {
            key: node.key.clone(),
            status,
            attempts: attempt.number,
            duration: attempt.duration,
            metadata,
            logs,
            data_version,
            input_versions: Vec::new(),
            partitions,
            checks,
            timings,
        };
        // Recorded now, or when its store ends.
        let start_store = match stored_later {
            Some((value, bytes)) => Box::new(super::Deferred {
                shared: Arc::clone(&shared),
                id: self.id,
                value,
                bytes,
                outcome: Some(outcome),
            })
            .defer(&mut state),
            None => {
                super::store::record(&shared, &mut state, self.id, outcome);
                None
            }
        };
        if failed || blocked.is_some() {
            skip_downstream(&shared, &mut state, self.id, blocked);
        }
        if no_output {
            super::not_required_downstream(&shared, &mut state, self.id);
        }
        let next = dispatch(&shared, &mut state, ready, self.sync);
        self.finished = true;
        drop(state);
        shared.wake.notify_one();
        if let Some(store) = start_store {
            store.spawn();
        }
        // Outside the lock: dropping the last reference to an input runs its `Drop`.
        drop(inputs);
        next
    }
}
