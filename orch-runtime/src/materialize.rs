//! [`Materialize`]: the builder that runs assets in this process and returns their outputs,
//! used by tests, by programs embedding orch and (through [`Instance::submit`]) by the command
//! line. The launch itself is `run/launch.rs`.

use std::sync::{Arc, OnceLock};

use orch_core::__private::Value;
use orch_core::{
    Asset, AssetGraph, AssetSelection, DefinitionErrors, RunId, SelectionError, StaticKey,
};
use tokio_util::sync::CancellationToken;

use crate::events::EventSink;
use crate::instance::Instance;
use crate::io::{LoadError, UnknownIoManager};
use crate::plan::PlanError;
use crate::result::RunResult;
use crate::run::launch::{Launch, launch, parse_selection};
use crate::run::{PartitionScope, RunRequest, Trigger};
use crate::storage::StorageError;

/// Why a run could not start. (An asset that fails is not this: it is an outcome in the
/// [`RunResult`].)
///
/// [`Instance::submit`]: crate::Instance::submit
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaterializeError {
    /// The asset definitions are invalid (duplicate keys, unknown `deps`).
    #[error(transparent)]
    Definitions(&'static DefinitionErrors),
    /// The selection names unknown assets or does not parse.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// The selection cannot run as chosen.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An injected value names an asset that is not registered.
    #[error("cannot inject a value for `{0}`: no such asset is registered")]
    UnknownInjection(String),
    /// The run store could not record the run, or another run holds one of its assets.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored upstream output could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An asset names an I/O manager that is not registered.
    #[error(transparent)]
    IoManager(#[from] UnknownIoManager),
    /// `--stale` needs the run store to know what is up to date.
    #[error(
        "deciding what is stale needs the run store: run without `--ephemeral` (or, in code, with `Materialize::instance`)"
    )]
    StaleNeedsStore,
    /// A planned asset takes a resource that is not configured.
    #[error(
        "asset `{asset}` (at {location}) needs resource `{resource}`, which is not configured: add it with `App::new().resource(...)` in `main` (or `Instance::builder().resource(...)` / `Materialize::resource(...)` in code){}",
        if .configured.is_empty() { String::new() } else { format!("; configured: {}", .configured.join(", ")) }
    )]
    MissingResource {
        /// The asset.
        asset: orch_core::AssetKey,
        /// Where it is defined.
        location: orch_core::__private::SourceLocation,
        /// The resource type's short name.
        resource: String,
        /// The configured resources' short names.
        configured: Vec<String>,
    },
    /// The op job does not exist, or the program's op jobs are invalid.
    #[error(transparent)]
    Job(#[from] crate::jobs::JobError),
    /// The run config does not fit the job's ops (checked before anything runs).
    #[error("{0}; nothing ran")]
    Config(#[from] orch_core::op::ConfigError),
    /// The request asks an op job for something only assets have (partitions, `--stale`).
    #[error("op job `{job}` {what}")]
    JobRequest {
        /// The job.
        job: String,
        /// What cannot be asked.
        what: String,
    },
    /// The run cannot be executed by workers (`executor = "workers"`) as asked: what is
    /// missing, and what to do.
    #[error("cannot run on workers: {0}")]
    Workers(String),
    /// The tokio runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Every asset registered in this binary, discovered and validated once per process.
pub fn definitions() -> Result<&'static AssetGraph, &'static DefinitionErrors> {
    static GRAPH: OnceLock<Result<AssetGraph, DefinitionErrors>> = OnceLock::new();
    GRAPH.get_or_init(AssetGraph::discover).as_ref()
}

/// A run to be made in this process: which assets, with which injected values, how
/// parallel, recorded in which [`Instance`] (none: outputs stay in memory, nothing is
/// recorded), and who listens.
///
/// ```no_run
/// # use orch_runtime::Materialize;
/// let result = Materialize::all().jobs(4).run()?;
/// assert!(result.success());
/// # Ok::<(), orch_runtime::MaterializeError>(())
/// ```
pub struct Materialize<'s> {
    selection: Selection,
    request: RunRequest,
    injected: Vec<(orch_core::StaticKey, Value)>,
    jobs: Option<usize>,
    keep_outputs: bool,
    sink: Option<&'s mut dyn EventSink>,
    run_id: Option<RunId>,
    instance: Option<Instance>,
    resources: Option<Arc<orch_core::Resources>>,
    cancel: CancellationToken,
    detach: bool,
}

enum Selection {
    Parsed,
    Text(String),
}

impl std::fmt::Debug for Materialize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialize")
            .field("request", &self.request)
            .field("jobs", &self.jobs)
            .field("keep_outputs", &self.keep_outputs)
            .finish_non_exhaustive()
    }
}

/// A runtime for runs of `jobs` sync assets at once: a worker per core, and blocking threads
/// for the jobs plus I/O.
pub(crate) fn runtime(jobs: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(default_jobs())
        .max_blocking_threads(jobs + 4)
        .enable_all()
        .build()
}

/// The default parallelism: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl<'s> Materialize<'s> {
    /// Every asset.
    pub fn all() -> Self {
        Self::request(RunRequest::all())
    }

    /// The assets of a selection.
    pub fn selection(selection: AssetSelection) -> Self {
        Self::request(RunRequest::selection(selection))
    }

    /// Makes the run `request` asks for (target, partitions, tags, trigger, parent).
    pub fn request(request: RunRequest) -> Self {
        Materialize {
            selection: Selection::Parsed,
            request,
            injected: Vec::new(),
            jobs: None,
            keep_outputs: true,
            sink: None,
            run_id: None,
            instance: None,
            resources: None,
            cancel: CancellationToken::new(),
            detach: false,
        }
    }

    /// The assets of a selection written in the CLI's syntax, e.g. `"+report"` or
    /// `"group:sources and not tag:slow=true"`. Parse errors surface from [`Materialize::run`].
    pub fn select(selection: &str) -> Self {
        let mut m = Self::all();
        m.selection = Selection::Text(selection.to_owned());
        m
    }

    /// Uses `value` as the output of asset `A` instead of computing it: "pretend
    /// `api_users_raw` produced this". `A` does not run, even if selected.
    pub fn inject<A: Asset>(mut self, value: A::Output) -> Self
    where
        A::Output: Send + Sync,
    {
        self.injected.push((A::KEY, std::sync::Arc::new(value)));
        self
    }

    /// Uses `value` as the output of the asset (or op job step) with key `key`.
    pub(crate) fn inject_value(mut self, key: StaticKey, value: Value) -> Self {
        self.injected.push((key, value));
        self
    }

    /// Runs at most `jobs` sync assets at once (default: the instance's `run.jobs`, else the
    /// number of cores).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(jobs.max(1));
        self
    }

    /// Whether the result keeps every output (default `true`, for tests). With `false`, an
    /// output is dropped as soon as its last consumer has started, which bounds memory.
    pub fn keep_outputs(mut self, keep: bool) -> Self {
        self.keep_outputs = keep;
        self
    }

    /// Sends every event of the run to `sink` (instead of any sink given before).
    pub fn events<'t>(self, sink: &'t mut dyn EventSink) -> Materialize<'t> {
        Materialize {
            selection: self.selection,
            request: self.request,
            injected: self.injected,
            jobs: self.jobs,
            keep_outputs: self.keep_outputs,
            sink: Some(sink),
            run_id: self.run_id,
            instance: self.instance,
            resources: self.resources,
            cancel: self.cancel,
            detach: self.detach,
        }
    }

    /// Records the run (its events, logs and outcome) in the instance's store, stores outputs
    /// with its I/O managers, gives assets its resources (unless [`Materialize::resources`]
    /// says otherwise), and claims every planned asset for the run's duration so no other run
    /// materializes them at the same time.
    pub fn instance(mut self, instance: &Instance) -> Self {
        self.instance = Some(instance.clone());
        self
    }

    /// Narrows the selection to the assets that are stale (see [`crate::StaleReason`]); their
    /// up-to-date inputs are loaded from storage. Needs [`Materialize::instance`]. When nothing
    /// is stale, the run does nothing and records nothing.
    pub fn only_stale(mut self) -> Self {
        self.request.only_stale = true;
        self
    }

    /// Materializes partition `key` of the selected partitioned assets (their unpartitioned
    /// selected neighbours run whole). Required when the selection holds a partitioned asset;
    /// an invalid key is an error that lists the valid ones.
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.request.partitions = PartitionScope::Key(key.into());
        self
    }

    /// Materializes the partitions `keys` (consecutive, e.g. from
    /// [`Partitions::range`](orch_core::Partitions::range)) of the selected partitioned assets
    /// in one run: each is called once, with [`AssetContext::partition_key_range`] spanning
    /// them, and its frame is split into the partitions by its `partition_by` column. Every
    /// selected partitioned asset needs `partition_by` (and no partition mapping).
    ///
    /// [`AssetContext::partition_key_range`]: orch_core::AssetContext::partition_key_range
    pub fn partition_range<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.request.partitions = PartitionScope::Range(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a tag to the run's record.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.request.tags.insert(key.into(), value.into());
        self
    }

    /// Says what started the run (default [`Trigger::Manual`]).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.request.trigger = trigger;
        self
    }

    /// Uses these resources for `#[resource]` parameters (instead of the instance's, and of
    /// any given before).
    pub fn resources(mut self, resources: impl Into<Arc<orch_core::Resources>>) -> Self {
        self.resources = Some(resources.into());
        self
    }

    /// Adds `value` as the resource of type `T` (to the resources given with
    /// [`Materialize::resources`], not to the instance's).
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(self.resources.get_or_insert_with(Arc::default)).insert(value);
        self
    }

    /// Uses this run id instead of a fresh one.
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// Cancels the run when `token` is cancelled (see [`RunHandle::cancel`](crate::RunHandle::cancel)).
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// With `[run] executor = "workers"`: returns as soon as the run's steps are on the
    /// queue, without waiting for workers to run them. The result has no outcomes
    /// ([`RunResult::detached`]); the last step's completion records the run's end. Refused
    /// for a run executed in process.
    pub fn detach(mut self) -> Self {
        self.detach = true;
        self
    }

    /// Runs on a new multi-threaded tokio runtime and waits for the end.
    pub fn run(self) -> Result<RunResult, MaterializeError> {
        let runtime = runtime(self.effective_jobs()).map_err(MaterializeError::Runtime)?;
        runtime.block_on(self.run_async())
    }

    pub(crate) fn effective_jobs(&self) -> usize {
        self.jobs
            .or_else(|| self.instance.as_ref().map(|i| i.config().jobs()))
            .unwrap_or_else(default_jobs)
    }

    /// Runs on the current tokio runtime (which must be multi-threaded for sync assets to run
    /// in parallel).
    pub async fn run_async(self) -> Result<RunResult, MaterializeError> {
        let jobs = self.effective_jobs();
        let mut request = self.request;
        if let Selection::Text(text) = &self.selection {
            request.target = crate::run::RunTarget::Selection(parse_selection(text)?);
        }
        launch(Launch {
            request,
            run_id: self.run_id.unwrap_or_default(),
            injected: self.injected,
            jobs,
            keep_outputs: self.keep_outputs,
            sink: self.sink,
            instance: self.instance,
            resources: self.resources,
            cancel: self.cancel,
            detach: self.detach,
        })
        .await
    }
}
