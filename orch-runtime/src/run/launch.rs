//! Turning a [`RunRequest`] into a run: resolve the target, check the partitions, load what
//! the selection does not compute, plan, claim the assets in the store, execute, make the
//! outputs durable and record the end. [`Materialize`](crate::Materialize) and
//! [`Instance::submit`](crate::Instance::submit) both come here.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use orch_core::{AssetGraph, AssetId, AssetSelection, RunId};
use tokio_util::sync::CancellationToken;

use super::RunRequest;
use super::partitions::{StoredDynamicPartitions, all_partitions, stored_version};
use super::plan::{LoadKind, Prepared, prepare};
use crate::events::{EventSink, RunEvent, RunTimings};
use crate::executor::{self, ExecOptions, Provided};
use crate::instance::Instance;
use crate::io::{InputContext, LoadError};
use crate::materialize::{MaterializeError, definitions};
use crate::plan::PlanError;
use crate::result::RunResult;
use crate::storage::{
    CANCEL_POLL, EventKind, EventRecord, RunRecord, Storage, StorageError, StoreSink,
};

/// Everything a launch needs besides the request.
pub(crate) struct Launch<'s> {
    pub(crate) request: RunRequest,
    pub(crate) run_id: RunId,
    pub(crate) injected: Vec<(orch_core::StaticKey, orch_core::__private::Value)>,
    pub(crate) jobs: usize,
    pub(crate) keep_outputs: bool,
    pub(crate) sink: Option<&'s mut dyn EventSink>,
    pub(crate) instance: Option<Instance>,
    pub(crate) resources: Option<Arc<orch_core::Resources>>,
    pub(crate) cancel: CancellationToken,
    /// Return once the steps are queued for workers ([`crate::Materialize::detach`]).
    pub(crate) detach: bool,
}

/// Sends each event to the store's sink, then to the caller's.
struct Tee<'a, 'b>(&'a mut dyn EventSink, &'b mut StoreSink);

impl EventSink for Tee<'_, '_> {
    fn on_event(&mut self, event: &RunEvent<'_>) {
        self.1.on_event(event);
        self.0.on_event(event);
    }
}

/// Runs the launch to its end. Errors are reasons the run could not start; an asset that
/// fails is an outcome in the [`RunResult`].
pub(crate) async fn launch(launch: Launch<'_>) -> Result<RunResult, MaterializeError> {
    let graph = graph_of(&launch.request)?;
    let Launch {
        request,
        run_id,
        injected,
        jobs,
        keep_outputs,
        sink,
        instance,
        resources,
        cancel,
        detach,
    } = launch;
    let mut provided: Vec<Provided> = Vec::with_capacity(injected.len());
    for (key, value) in injected {
        let key = key.to_key();
        let id = graph
            .id_of(&key)
            .ok_or_else(|| MaterializeError::UnknownInjection(key.to_string()))?;
        provided.push(Provided {
            id,
            value,
            loaded: false,
            stored_by: None,
            data_version: None,
        });
    }
    let injected_ids: Vec<AssetId> = provided.iter().map(|p| p.id).collect();
    let mut timings = RunTimings::default();
    let phase = Instant::now();
    let prepared = prepare(graph, &request, instance.as_ref(), &injected_ids, resources)?;
    timings.plan = phase.elapsed();
    let Some(plan) = prepared.plan.clone() else {
        return Ok(RunResult::nothing_to_do(graph, run_id));
    };
    let Prepared {
        partition,
        range,
        keys,
        resources,
        ..
    } = &prepared;
    let mut ignore = |_: &RunEvent<'_>| {};
    let sink: &mut dyn EventSink = match sink {
        Some(sink) => sink,
        None => &mut ignore,
    };
    let opts = ExecOptions {
        jobs,
        keep_outputs,
        run_id: run_id.clone(),
        liveness: None,
        io: None,
        partition: partition.clone(),
        range: range.clone(),
        resources: Arc::clone(resources),
        dynamic: None,
        cancel,
        live_log: None,
        run_scoped_outputs: request.target.job().is_some(),
        config: request.config.clone(),
        // Nothing is stored until an instance is known (below).
        write_behind: crate::io::WriteBehind::OFF,
        reexecutes: Arc::from([]),
    };
    let on_workers = instance
        .as_ref()
        .is_some_and(|i| i.config().executor() == crate::instance::Executor::Workers);
    if detach && !on_workers {
        return Err(MaterializeError::Workers(
            "only a run executed by workers can be detached; set [run] executor = \"workers\" (ORCH_EXECUTOR=workers) with a PostgreSQL store".to_owned(),
        ));
    }
    let Some(instance) = instance else {
        return Ok(executor::execute(graph, plan, provided, opts, sink).await);
    };
    let storage = Arc::clone(instance.storage());
    // Steps executed by workers load their inputs there.
    if on_workers {
        super::distributed::check(&instance, !provided.is_empty())?;
    }
    let phase = Instant::now();
    let reexecuted = match (&request.parent, request.target.job()) {
        (Some(parent), Some(_)) => reexecuted_runs(&*storage, parent)?,
        _ => Vec::new(),
    };
    if !on_workers {
        load_stored_inputs(
            graph,
            &instance,
            &request,
            &prepared,
            &reexecuted,
            &mut provided,
        )?;
    }
    timings.load = phase.elapsed();
    let (range, keys) = (range.clone(), keys.clone());

    // Held until the run is recorded as ended and its last task is over; if the process
    // dies, the OS drops it and the next start sees the run as crashed. (An ephemeral
    // instance's store dies with the process: nothing to prove.)
    let liveness: Option<Arc<dyn Send + Sync>> =
        Some(Arc::new(instance.storage().hold_alive(run_id.as_str())?));
    // The executor holds it while tasks run (a detached one may outlive the run); this holds
    // it through the writer's last commit, the sync and the end, which come after the
    // executor returns. (Released before, another process's recovery could mark the run
    // crashed while its outputs were being synced: CI's browser test caught it.)
    let held = liveness.clone();
    // Elements kept by the runs this one re-executes are reused only from runs with its
    // config: under another, an element may compute something else.
    let config = request.config.as_ref().map(|c| c.to_json());
    let reexecutes: Arc<[RunId]> = reexecuted
        .iter()
        .take_while(|(_, theirs)| *theirs == config)
        .map(|(id, _)| id.clone())
        .collect();
    let opts = ExecOptions {
        liveness,
        reexecutes,
        io: Some(Arc::clone(instance.io_managers())),
        write_behind: instance.config().write_behind(),
        dynamic: Some(Arc::new(StoredDynamicPartitions(Arc::clone(&storage)))),
        ..opts
    };
    // Claims are per asset, and per partition for partitioned assets, so runs of different
    // partitions of one asset go on side by side. An op job claims nothing: its steps' outputs
    // belong to the run, so two runs of one job go on side by side too.
    let planned: Vec<String> = plan
        .order
        .iter()
        .flat_map(|&a| {
            let node = graph.node(a);
            match (&node.partitions, &keys) {
                (Some(_), Some(keys)) => keys
                    .iter()
                    .map(|partition| format!("{}[{partition}]", node.key))
                    .collect(),
                _ => vec![node.key.to_string()],
            }
        })
        .collect();
    let claims: &[String] = match request.target.job() {
        Some(_) => &[],
        None => &planned,
    };
    // In a run over a range, a consumer's partitions record the versions of the loaded
    // partitions they read (read now: nothing has started).
    let mut loaded_versions = Vec::new();
    if range.is_some() {
        for p in provided.iter().filter(|p| p.loaded) {
            let node = graph.node(p.id);
            if node.partitions.is_some() {
                let versions: std::collections::HashMap<String, Option<String>> = storage
                    .partition_statuses(&node.key.to_string())?
                    .into_iter()
                    .map(|s| (s.partition, s.data_version))
                    .collect();
                loaded_versions.push((&node.key, versions));
            }
        }
    }
    let record = RunRecord::new(
        run_id.clone(),
        &request,
        u32::try_from(planned.len()).unwrap_or(u32::MAX),
    );
    let phase = Instant::now();
    storage.begin_run(&record, claims)?;
    instance.publish(EventRecord {
        message: Some(record.describe()),
        ..EventRecord::new(run_id.clone(), None, EventKind::RunStarted)
    });
    timings.begin = phase.elapsed();
    if on_workers {
        let phase = Instant::now();
        let cancel = opts.cancel.clone();
        let on = super::distributed::OnWorkers {
            run_id: &run_id,
            queue: request
                .tags()
                .get(crate::storage::QUEUE_TAG)
                .map(String::as_str),
            cancel,
            detach,
        };
        let mut result =
            match super::distributed::execute_on_workers(graph, &plan, &instance, on, sink).await {
                Ok(result) => result,
                Err(e) => {
                    // Nothing of it runs: end it now rather than leave it to crash recovery.
                    let _ = storage.end_run(
                        run_id.as_str(),
                        crate::storage::RunStatus::Failed,
                        SystemTime::now(),
                    );
                    return Err(e);
                }
            };
        timings.execute = phase.elapsed();
        drop(held);
        result.timings = Some(timings);
        if result.detached {
            return Ok(result);
        }
        instance.publish(EventRecord {
            duration: Some(result.duration()),
            ..EventRecord::new(run_id.clone(), None, EventKind::RunEnded(result.status()))
        });
        return Ok(result);
    }
    let mut store = StoreSink::new(
        Arc::clone(&storage),
        graph,
        run_id.clone(),
        keys.clone(),
        Some(instance.feed()),
    );
    for (key, versions) in loaded_versions {
        store.known_partition_versions(key, versions);
    }
    // Log lines reach the store as they are written, not when their asset ends.
    let opts = ExecOptions {
        live_log: Some(store.live_log()),
        ..opts
    };
    // A cancellation asked for through the store (the web UI, another process) cancels the
    // run as its own token would; the watch ends with the run.
    let watching = AbortOnDrop(watch_cancel_requests(
        Arc::clone(&storage),
        run_id.clone(),
        opts.cancel.clone(),
    ));
    let phase = Instant::now();
    let mut result =
        executor::execute(graph, plan, provided, opts, &mut Tee(sink, &mut store)).await;
    drop(watching);
    timings.execute = phase.elapsed();
    let phase = Instant::now();
    let written = store.finish().map(|busy| timings.record_background = busy);
    timings.record_wait = phase.elapsed();
    // Outputs are durable before the run is recorded as ended.
    let phase = Instant::now();
    let flushed = instance
        .io_managers()
        .flush()
        .map_err(|source| StorageError::Io {
            path: instance.config().home().join("storage"),
            source: std::io::Error::other(source),
        });
    timings.sync = phase.elapsed();
    let status = result.status();
    let ended = storage.end_run_timed(run_id.as_str(), status, SystemTime::now(), Some(&timings));
    drop(held);
    result.timings = Some(timings);
    instance.publish(EventRecord {
        duration: Some(result.duration()),
        ..EventRecord::new(run_id.clone(), None, EventKind::RunEnded(status))
    });
    result.storage_error = written.and(flushed).and(ended).err();
    Ok(result)
}

/// Polls the store every [`CANCEL_POLL`] for a request to cancel `run_id` and cancels `token`
/// when there is one. A store that cannot be read is tried again at the next poll.
fn watch_cancel_requests(
    storage: Arc<dyn Storage>,
    run_id: RunId,
    token: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CANCEL_POLL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = every.tick() => {}
            }
            // On the blocking pool: the store's lock may be held by the run's writer.
            let (store, id) = (Arc::clone(&storage), run_id.clone());
            let asked = tokio::task::spawn_blocking(move || store.cancel_requested(id.as_str()));
            if matches!(asked.await, Ok(Ok(true))) {
                token.cancel();
                return;
            }
        }
    })
}

/// Aborts its task when dropped: however the launch ends (returns, fails, or its future is
/// dropped), its cancellation watch ends with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Loads from their I/O managers the inputs that the plan reads from storage, as stored by
/// earlier runs, with the data versions to record as consumed. Inputs that a consumer maps to
/// other partitions are loaded by the consumer's task when it runs (after its upstream).
pub(super) fn load_stored_inputs(
    graph: &'static AssetGraph,
    instance: &Instance,
    request: &RunRequest,
    prepared: &Prepared,
    reexecuted: &[(RunId, Option<String>)],
    provided: &mut Vec<Provided>,
) -> Result<(), MaterializeError> {
    let storage = &**instance.storage();
    for load in &prepared.loads {
        let (consumer, up) = (load.consumer, load.up);
        let node = graph.node(up);
        // A step of an op job that this run does not compute: its output in the parent run.
        if let Some(job) = request.target.job() {
            let Some(parent) = &request.parent else {
                return Err(MaterializeError::JobRequest {
                    job: job.to_owned(),
                    what: format!(
                        "cannot run step `{}` without `{}`, whose output only a run of the job makes: run the whole job, or re-execute a run",
                        graph.node(consumer).key.name(),
                        node.key.name()
                    ),
                });
            };
            let manager = instance.io_managers().for_asset(&node.key, node.def)?;
            let stored = load_step_output(manager, node, reexecuted).map_err(|e| match e {
                Some(e) => e,
                None => MaterializeError::JobRequest {
                    job: job.to_owned(),
                    what: format!(
                        "cannot re-execute from run {}: step `{}` has no stored output there or in the runs it re-executes (it did not succeed, or its output is kept in memory); re-execute the whole run",
                        parent.short(),
                        node.key.name()
                    ),
                },
            })?;
            provided.push(Provided {
                id: up,
                value: stored.0,
                loaded: true,
                stored_by: Some(stored.1),
                data_version: None,
            });
            continue;
        }
        if let LoadKind::Mapped(mapping) = load.kind {
            // The version recorded as the consumer's input: that of the partitions its
            // mapping reads.
            let data_version = match (&node.partitions, prepared.partition.as_deref()) {
                (Some(partitions), Some(partition)) => {
                    match partitions.mapped(partition, mapping, jiff::Timestamp::now()) {
                        Ok(keys) => stored_version(storage, &node.key, &keys)?,
                        Err(_) => None,
                    }
                }
                _ => None,
            };
            // The consumer's task replaces this placeholder with the mapped partitions.
            provided.push(Provided {
                id: up,
                value: Arc::new(()),
                loaded: true,
                stored_by: None,
                data_version,
            });
            continue;
        }
        let manager = instance.io_managers().for_asset(&node.key, node.def)?;
        let partition = node.partitions.as_ref().and(prepared.partition.as_deref());
        let ctx = InputContext {
            key: &node.key,
            partition,
            output_type: node.def.output_type(),
            codec: node.def.storage_codec(),
        };
        let never = |partition: Option<String>| {
            MaterializeError::from(PlanError::NeverMaterialized {
                asset: graph.node(consumer).key.clone(),
                upstream: node.key.clone(),
                partition,
            })
        };
        let (value, data_version) = match (&load.kind, prepared.range.as_deref()) {
            // A run over a range reads the range of a partitioned input (frames, concatenated).
            (LoadKind::Range, Some(range)) => {
                let value = manager.load_partitions(&ctx, range).map_err(|e| match e {
                    LoadError::Missing { .. } => never(match (range.first(), range.last()) {
                        (Some(first), Some(last)) => Some(format!("{first}..{last}")),
                        _ => None,
                    }),
                    e => e.into(),
                })?;
                (value, stored_version(storage, &node.key, range)?)
            }
            // An unpartitioned consumer of a partitioned input reads every partition.
            (LoadKind::AllPartitions, _) => {
                let (keys, data_version) = all_partitions(graph, consumer, up, storage)?;
                (manager.load_partitions(&ctx, &keys)?, data_version)
            }
            _ => {
                let value = match manager.load_input(&ctx) {
                    Ok(value) => value,
                    Err(LoadError::Missing { .. }) => {
                        return Err(never(partition.map(str::to_owned)));
                    }
                    Err(e) => return Err(e.into()),
                };
                let data_version = match partition {
                    Some(partition) => storage
                        .partition_statuses(&node.key.to_string())?
                        .into_iter()
                        .find(|s| s.partition == partition)
                        .and_then(|s| s.data_version),
                    None => prepared
                        .latest
                        .get(&node.key.to_string())
                        .and_then(|e| e.data_version.clone()),
                };
                (value, data_version)
            }
        };
        provided.push(Provided {
            id: up,
            value,
            loaded: true,
            stored_by: None,
            data_version,
        });
    }
    Ok(())
}

/// The output of step `node` as stored by the parent run, or else by the run that run
/// re-executes, and so on up `chain` (a re-execution loads, and so does not store, the steps
/// it does not repeat), with the index in `chain` of the run that stored it. `Err(None)`: no
/// run of the chain stored it.
fn load_step_output(
    manager: &dyn crate::io::IoManager,
    node: &orch_core::AssetNode,
    chain: &[(RunId, Option<String>)],
) -> Result<(orch_core::__private::Value, usize), Option<MaterializeError>> {
    for (i, (id, _)) in chain.iter().enumerate() {
        let key = crate::jobs::step_output_key(&node.key, id.as_str());
        let ctx = InputContext {
            key: &key,
            partition: None,
            output_type: node.def.output_type(),
            codec: node.def.storage_codec(),
        };
        match manager.load_input(&ctx) {
            Ok(value) => return Ok((value, i)),
            Err(LoadError::Missing { .. }) => {}
            Err(e) => return Err(Some(e.into())),
        }
    }
    Err(None)
}

/// Run `parent`, the run it re-executes, and so on up the chain, nearest first, each with
/// its run config (JSON).
pub(super) fn reexecuted_runs(
    storage: &dyn Storage,
    parent: &RunId,
) -> Result<Vec<(RunId, Option<String>)>, crate::storage::StorageError> {
    let mut chain = Vec::new();
    let mut run = Some(parent.clone());
    // A chain of re-executions is short; the bound keeps a corrupt store from looping.
    while let Some(id) = run.take()
        && chain.len() < 1000
    {
        let config = match storage.run(id.as_str()) {
            Ok(record) => {
                run = record.parent;
                record.config
            }
            // Retention deleted it: the chain ends there (its outputs went with it).
            Err(crate::storage::StorageError::NoSuchRun(_)) => break,
            Err(e) => return Err(e),
        };
        chain.push((id, config));
    }
    Ok(chain)
}

/// The graph a request runs in: the assets, or the steps of its op job.
pub(crate) fn graph_of(request: &RunRequest) -> Result<&'static AssetGraph, MaterializeError> {
    match request.target.job() {
        Some(job) => Ok(crate::jobs::op_job(job)?.graph()),
        None => definitions().map_err(MaterializeError::Definitions),
    }
}

/// The selection of a request built from text, parsed (errors surface at launch).
pub(crate) fn parse_selection(text: &str) -> Result<AssetSelection, MaterializeError> {
    Ok(text.parse::<AssetSelection>()?)
}
