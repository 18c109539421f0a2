//! One step of a run, executed by a worker (`orch worker`): the asset is planned alone, its
//! upstreams are loaded from their I/O managers (the run's coordinator committed them), it
//! runs on this process's executor, and its output is made durable. Its events are kept, not
//! written: the worker commits them with the end of the step, in one transaction.

use std::sync::Arc;

use orch_core::AssetSelection;
use tokio_util::sync::CancellationToken;

use super::RunRequest;
use super::launch::{graph_of, load_stored_inputs};
use super::partitions::StoredDynamicPartitions;
use super::plan::{Prepared, prepare};
use crate::executor::{self, ExecOptions};
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::storage::{EventKind, EventRecord, LogRecord, RunRecord, StepEnd, StoreSink};

/// How a step ran, with the rows to commit.
pub(crate) struct StepRun {
    pub(crate) end: StepEnd,
    /// It failed because its storage did not answer ([`crate::io::Unavailable`]): the error,
    /// for the worker to give the step up to another delivery instead of failing it.
    pub(crate) unavailable: Option<String>,
    pub(crate) events: Vec<EventRecord>,
    pub(crate) logs: Vec<(String, LogRecord)>,
}

/// Runs step `step` (an asset key) of run `run`; `cancel` stops it as a run's token does.
pub(crate) async fn run_step(
    instance: &Instance,
    run: &RunRecord,
    step: &str,
    cancel: CancellationToken,
) -> Result<StepRun, MaterializeError> {
    // A step of an op job: the job's request narrowed to the step, with the run's config; its
    // upstream steps' outputs are the run's (or, in a re-execution, the runs it repeats).
    let stored = run
        .request()
        .map_err(|e| MaterializeError::Workers(format!("run {}: {e}", run.id)))?;
    let (request, reexecuted) = match stored.target {
        super::RunTarget::Job { name, .. } => {
            let step_name = step.rsplit('/').next().unwrap_or(step).to_owned();
            let request = RunRequest {
                target: super::RunTarget::Job {
                    name,
                    steps: vec![step_name],
                },
                parent: Some(run.id.clone()),
                ..stored
            };
            let chain = super::launch::reexecuted_runs(&**instance.storage(), &run.id)?;
            (request, chain)
        }
        _ => (
            RunRequest::selection(AssetSelection::keys([step])?).partitions(run.partitions.clone()),
            Vec::new(),
        ),
    };
    let job = request.target.job().is_some();
    let graph = graph_of(&request)?;
    let prepared = prepare(graph, &request, Some(instance), &[], None)?;
    let Some(plan) = prepared.plan.clone() else {
        return Err(MaterializeError::Workers(format!(
            "step `{step}` of run {} planned nothing",
            run.id
        )));
    };
    let mut provided = Vec::new();
    load_stored_inputs(
        graph,
        instance,
        &request,
        &prepared,
        &reexecuted,
        &mut provided,
    )?;
    let Prepared {
        partition,
        range,
        keys,
        resources,
        ..
    } = &prepared;
    let storage = Arc::clone(instance.storage());
    let opts = ExecOptions {
        jobs: instance.config().jobs(),
        keep_outputs: false,
        run_id: run.id.clone(),
        // The step's lease is the worker's to keep.
        liveness: None,
        io: Some(Arc::clone(instance.io_managers())),
        partition: partition.clone(),
        range: range.clone(),
        resources: Arc::clone(resources),
        dynamic: Some(Arc::new(StoredDynamicPartitions(Arc::clone(&storage)))),
        cancel,
        live_log: None,
        // An op job's step outputs are its run's.
        run_scoped_outputs: job,
        config: request.config.clone(),
        // The output is stored before the step ends: its consumers may run anywhere.
        write_behind: crate::io::WriteBehind::OFF,
        // Elements kept by an earlier delivery of this step, and by the runs this one repeats
        // with the same config.
        reexecutes: reexecuted
            .iter()
            .take_while(|(_, theirs)| *theirs == run.config)
            .map(|(id, _)| id.clone())
            .collect(),
    };
    let mut sink = StoreSink::capturing(storage, graph, run.id.clone(), keys.clone());
    let result = executor::execute(graph, plan, provided, opts, &mut sink).await;
    let (mut events, logs) = sink.finish_captured();
    // The claim recorded the step's start.
    events.retain(|e| e.kind != EventKind::Started);
    let mut end = if result.canceled {
        StepEnd::Canceled
    } else if result.success() {
        StepEnd::Succeeded
    } else {
        StepEnd::Failed
    };
    let unavailable = result.failed().find_map(|outcome| match &outcome.status {
        crate::AssetStatus::Failed(failure)
            if failure.chain.first().map(String::as_str)
                == Some(crate::executor::STORE_UNAVAILABLE) =>
        {
            Some(failure.chain.join(": "))
        }
        _ => None,
    });
    // Durable before the end is committed: a consumer on another machine reads it next.
    if let Err(e) = instance.io_managers().flush() {
        events.retain(|e| e.kind != EventKind::Materialized);
        events.push(EventRecord {
            message: Some(format!(
                "its output could not be made durable on this worker: {e}"
            )),
            ..EventRecord::new(run.id.clone(), step.parse().ok(), EventKind::Failed)
        });
        end = StepEnd::Failed;
    }
    Ok(StepRun {
        end,
        unavailable,
        events,
        logs,
    })
}
