//! Op jobs at run time: each `#[job]` built once per process into an [`AssetGraph`] of steps,
//! so that planning, the executor, the run store, re-execution and the UI treat a step exactly
//! as they treat an asset. A step's key is `<job>/<node>`; its output is stored per run
//! ([`step_output_key`]), since two runs of one job are two different computations.

mod checkpoints;
mod execute;

pub(crate) use checkpoints::StepCheckpoints;

pub use execute::{ExecuteJob, JobResult};

use std::collections::HashMap;
use std::sync::OnceLock;

use orch_core::__private::{AssetDef, AssetParts, StaticKey};
use orch_core::op::{OpDef, OpJobDef, RunConfig, registered_op_jobs};
use orch_core::{AssetGraph, AssetId, AssetKey};

/// One op job, built: its definition, its steps as a graph, and each step's op.
#[derive(Debug)]
pub struct OpJobGraph {
    def: &'static OpJobDef,
    graph: AssetGraph,
    /// Per step id: the op it calls.
    ops: Vec<&'static OpDef>,
}

impl OpJobGraph {
    /// The job's definition.
    pub fn def(&self) -> &'static OpJobDef {
        self.def
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.def.name()
    }

    /// The request for a run of every step: tagged with [`JOB_TAG`](crate::automation::JOB_TAG)
    /// and the job's own `tags`, as the command line, the UI, schedules and sensors launch it.
    pub fn request(&self) -> crate::RunRequest {
        let mut request =
            crate::RunRequest::job(self.name()).tag(crate::automation::JOB_TAG, self.name());
        for (k, v) in self.def.tags() {
            request = request.tag(*k, *v);
        }
        request
    }

    /// Its steps as a graph (keys `<job>/<step>`).
    pub fn graph(&self) -> &AssetGraph {
        &self.graph
    }

    /// The op step `id` calls.
    pub fn op(&self, id: AssetId) -> &'static OpDef {
        self.ops[id]
    }

    /// Step `id`'s name in the job.
    pub fn step_name(&self, id: AssetId) -> &'static str {
        // The key is `<job>/<step>`.
        self.graph
            .node(id)
            .def
            .key()
            .path
            .last()
            .copied()
            .unwrap_or_default()
    }

    /// Step `id`'s output type as a person reads it (`Option<Row>` for an optional output,
    /// `Dynamic<u64>` for a mapped op).
    pub fn output_text(&self, id: AssetId) -> String {
        let op = self.op(id);
        match op.output() {
            orch_core::op::OpOutput::Optional => format!("Option<{}>", op.output_type()),
            _ => op.output_type().to_owned(),
        }
    }

    /// For a step mapped over a `Dynamic` (`files.map(process)`): the step whose elements it
    /// runs on.
    pub fn maps_over(&self, id: AssetId) -> Option<&'static str> {
        let input = self.op(id).mapped()?;
        let up = *self.graph.node(id).inputs.get(input)?;
        Some(self.step_name(up))
    }

    /// The id of step `name`.
    pub fn step(&self, name: &str) -> Option<AssetId> {
        (0..self.graph.len()).find(|&id| self.step_name(id) == name)
    }

    /// Checks `config` against every op's config type before anything runs: each step with
    /// `#[config]` must deserialize its table, and no table may name a step the job does not
    /// have. Errors name the step and the field.
    pub fn check_config(&self, config: &RunConfig) -> Result<(), orch_core::op::ConfigError> {
        let all: Vec<AssetId> = (0..self.graph.len()).collect();
        self.check_config_of(config, &all)
    }

    /// The same, for a run of `steps` only (a re-execution, or a test that injects some
    /// outputs): the steps that do not run need no config.
    pub fn check_config_of(
        &self,
        config: &RunConfig,
        steps: &[AssetId],
    ) -> Result<(), orch_core::op::ConfigError> {
        for op in config.op_names() {
            if self.step(op).is_none() {
                let names = (0..self.graph.len()).map(|id| self.step_name(id).to_owned());
                let hint = did_you_mean(op, names);
                return Err(orch_core::op::ConfigError::UnknownOp {
                    job: self.name().to_owned(),
                    op: op.to_owned(),
                    hint,
                });
            }
        }
        for &id in steps {
            if let Some(schema) = self.ops[id].config() {
                let name = self.step_name(id);
                (schema.check)(name, config.op(name))?;
            }
        }
        Ok(())
    }
}

/// Why the op jobs of this program cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// No op job has this name.
    #[error("no op job `{name}`{hint}; `jobs` lists the jobs")]
    Unknown {
        /// The name asked for.
        name: String,
        /// ` (did you mean ..?)`, or empty.
        hint: String,
    },
    /// Two jobs (op or asset jobs) share a name.
    #[error("two jobs are named `{name}` ({first} and {second}): rename one")]
    Duplicate {
        /// The name.
        name: String,
        /// Where the first is declared.
        first: String,
        /// Where the second is.
        second: String,
    },
    /// A job's steps do not form a valid graph (a key clash with an asset, say).
    #[error("op job `{job}` is invalid: {message}")]
    Invalid {
        /// The job.
        job: String,
        /// What is wrong.
        message: String,
    },
}

/// Every op job of this program, built and checked once.
pub fn op_jobs() -> Result<&'static [OpJobGraph], &'static JobError> {
    static JOBS: OnceLock<Result<Vec<OpJobGraph>, JobError>> = OnceLock::new();
    JOBS.get_or_init(build_all).as_ref().map(Vec::as_slice)
}

/// The op job `name`.
pub fn op_job(name: &str) -> Result<&'static OpJobGraph, JobError> {
    let jobs = op_jobs().map_err(Clone::clone)?;
    jobs.iter().find(|j| j.name() == name).ok_or_else(|| {
        let hint = did_you_mean(name, jobs.iter().map(|j| j.name().to_owned()));
        JobError::Unknown {
            name: name.to_owned(),
            hint,
        }
    })
}

/// The op job whose step `key` is (`<job>/<step>`), if it is one.
pub(crate) fn job_of_step(key: &AssetKey) -> Option<&'static OpJobGraph> {
    let [job, _] = key.path() else { return None };
    let jobs = op_jobs().ok()?;
    jobs.iter()
        .find(|j| j.name() == job)
        .filter(|j| j.graph().id_of(key).is_some())
}

/// Where a step's output is stored: per run (`_runs/<run id>/<job>/<step>`), so runs of one
/// job never overwrite each other's outputs and a re-execution reads its parent's.
pub(crate) fn step_output_key(step: &AssetKey, run_id: &str) -> AssetKey {
    let segments = ["_runs", run_id]
        .into_iter()
        .map(str::to_owned)
        .chain(step.path().iter().cloned());
    AssetKey::new(segments).unwrap_or_else(|_| step.clone())
}

/// Whether `key` is an op job's step output of one run ([`step_output_key`]), which no
/// materialization records.
pub(crate) fn is_step_output_key(key: &AssetKey) -> bool {
    key.path().len() > 2 && key.path()[0] == "_runs"
}

/// Deletes the stored step outputs of the runs the store no longer has (retention deleted
/// them), under the default filesystem manager's `_runs/` directory in `state_dir`; returns
/// how many runs' outputs went. A run still in the store keeps its outputs, for re-execution.
pub(crate) fn prune_step_outputs(
    state_dir: &std::path::Path,
    storage: &dyn crate::storage::Storage,
) -> Result<usize, crate::storage::StorageError> {
    let root = crate::io::IoManagers::storage_dir(state_dir).join("_runs");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(crate::storage::StorageError::Io { path: root, source }),
    };
    let mut pruned = 0;
    for entry in entries.flatten() {
        let Some(run) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        match storage.run(&run) {
            Err(crate::storage::StorageError::NoSuchRun(_)) => {
                let path = entry.path();
                std::fs::remove_dir_all(&path)
                    .map_err(|source| crate::storage::StorageError::Io { path, source })?;
                pruned += 1;
            }
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pruned)
}

fn build_all() -> Result<Vec<OpJobGraph>, JobError> {
    let mut defs: Vec<&'static OpJobDef> = registered_op_jobs().collect();
    defs.sort_by_key(|d| d.name());
    let mut seen: HashMap<&str, String> = HashMap::new();
    for job in orch_core::automation::registered_jobs() {
        seen.insert(job.name(), job.location().to_string());
    }
    let assets = crate::materialize::definitions().ok();
    let mut jobs = Vec::with_capacity(defs.len());
    for def in defs {
        if let Some(first) = seen.insert(def.name(), def.location().to_string()) {
            return Err(JobError::Duplicate {
                name: def.name().to_owned(),
                first,
                second: def.location().to_string(),
            });
        }
        jobs.push(build(def, assets)?);
    }
    Ok(jobs)
}

/// ` (did you mean `x`?)`, or empty.
fn did_you_mean(input: &str, candidates: impl IntoIterator<Item = String>) -> String {
    orch_core::__private::closest(input, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn leak<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

/// The job's steps as assets (leaked: built once per process, like registrations).
fn build(def: &'static OpJobDef, assets: Option<&AssetGraph>) -> Result<OpJobGraph, JobError> {
    let nodes = def.nodes();
    let keys: Vec<StaticKey> = nodes
        .iter()
        .map(|n| StaticKey {
            path: leak(vec![def.name(), n.name]),
        })
        .collect();
    let mut defs: Vec<&'static AssetDef> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        // The builder only hands out handles of nodes it added; anything else is a bug in
        // orch's wiring, reported rather than panicking every command that builds jobs.
        if let Some(&bad) = node
            .inputs
            .iter()
            .chain(&node.after)
            .find(|&&n| n >= nodes.len())
        {
            return Err(JobError::Invalid {
                job: def.name().to_owned(),
                message: format!(
                    "step `{}` reads node #{bad}, which the job does not have (a bug in orch's wiring; please report it)",
                    node.name
                ),
            });
        }
        let op = node.op;
        if let Some(assets) = assets
            && assets.id_of(&keys[i].to_key()).is_some()
        {
            return Err(JobError::Invalid {
                job: def.name().to_owned(),
                message: format!(
                    "its step `{}` has the key of an asset; rename the job or the asset",
                    keys[i].to_key()
                ),
            });
        }
        let parts = AssetParts {
            key: keys[i],
            location: op.location(),
            group: Some(def.name()),
            description: op.description(),
            code_version: op.code_version(),
            tags: op.tags(),
            metadata: &[],
            owners: &[],
            inputs: leak(node.inputs.iter().map(|&n| keys[n]).collect()),
            input_partitions: &[],
            input_adapters: leak(node.adapters.iter().map(|a| leak(a.clone())).collect()),
            deps: leak(node.after.iter().map(|&n| keys[n]).collect()),
            // A step runs whenever its job does: it has no staleness.
            always_run: true,
            partitions: None,
            partition_by: None,
            automation: None,
            freshness: None,
            resources: op.resources(),
            // A mapped op retries each element itself, not the step.
            retries: match op.mapped() {
                Some(_) => 0,
                None => op.retries(),
            },
            retry_delay: op.retry_delay(),
            io_manager: op.io_manager(),
            codec: op.codec(),
            output_type: op.output_type(),
            compute: op.compute(),
        };
        defs.push(Box::leak(Box::new(AssetDef::from_parts(parts))));
    }
    let graph = AssetGraph::from_defs(defs).map_err(|e| JobError::Invalid {
        job: def.name().to_owned(),
        message: e.to_string(),
    })?;
    // The graph orders steps by key; keep the ops in the graph's order.
    let by_name: HashMap<&str, &'static OpDef> = nodes.iter().map(|n| (n.name, n.op)).collect();
    let ops = graph
        .nodes()
        .iter()
        .map(|node| {
            by_name
                .get(node.key.name())
                .copied()
                .ok_or_else(|| JobError::Invalid {
                    job: def.name().to_owned(),
                    message: format!("step `{}` is missing", node.key),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(OpJobGraph { def, graph, ops })
}
