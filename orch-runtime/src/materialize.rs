//! [`Materialize`]: the one way to run assets, used by the CLI and by tests.

use std::sync::OnceLock;

use orch_core::__private::Value;
use orch_core::{Asset, AssetGraph, AssetId, AssetSelection, DefinitionErrors, SelectionError};

use crate::events::{EventSink, RunEvent};
use crate::executor::{self, ExecOptions};
use crate::plan::{Plan, PlanError};
use crate::result::RunResult;

/// Why a run could not start. (An asset that fails is not this: it is an outcome in the
/// [`RunResult`].)
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
    /// The tokio runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Every asset registered in this binary, discovered and validated once per process.
pub fn definitions() -> Result<&'static AssetGraph, &'static DefinitionErrors> {
    static GRAPH: OnceLock<Result<AssetGraph, DefinitionErrors>> = OnceLock::new();
    GRAPH.get_or_init(AssetGraph::discover).as_ref()
}

/// A run to be made: which assets, with which injected values, how parallel, and who listens.
///
/// ```no_run
/// # use orch_runtime::Materialize;
/// let result = Materialize::all().jobs(4).run()?;
/// assert!(result.success());
/// # Ok::<(), orch_runtime::MaterializeError>(())
/// ```
pub struct Materialize<'s> {
    selection: Selection,
    injected: Vec<(orch_core::StaticKey, Value)>,
    jobs: usize,
    keep_outputs: bool,
    sink: Option<&'s mut dyn EventSink>,
}

enum Selection {
    Parsed(AssetSelection),
    Text(String),
}

impl std::fmt::Debug for Materialize<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Materialize")
            .field("jobs", &self.jobs)
            .field("keep_outputs", &self.keep_outputs)
            .finish_non_exhaustive()
    }
}

/// The default parallelism: the number of cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl<'s> Materialize<'s> {
    /// Every asset.
    pub fn all() -> Self {
        Self::selection(AssetSelection::All)
    }

    /// The assets of a selection.
    pub fn selection(selection: AssetSelection) -> Self {
        Materialize {
            selection: Selection::Parsed(selection),
            injected: Vec::new(),
            jobs: default_jobs(),
            keep_outputs: true,
            sink: None,
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

    /// Runs at most `jobs` sync assets at once (default: the number of cores).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Whether the result keeps every output (default `true`, for tests). With `false`, an
    /// output is dropped as soon as its last consumer has started, which bounds memory.
    pub fn keep_outputs(mut self, keep: bool) -> Self {
        self.keep_outputs = keep;
        self
    }

    /// Sends every event of the run to `sink`.
    pub fn events(mut self, sink: &'s mut dyn EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Runs on a new multi-threaded tokio runtime and waits for the end.
    pub fn run(self) -> Result<RunResult, MaterializeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(default_jobs())
            .max_blocking_threads(self.jobs.max(1) + 4)
            .enable_all()
            .build()
            .map_err(MaterializeError::Runtime)?;
        runtime.block_on(self.run_async())
    }

    /// Runs on the current tokio runtime (which must be multi-threaded for sync assets to run
    /// in parallel).
    pub async fn run_async(self) -> Result<RunResult, MaterializeError> {
        let graph = definitions().map_err(MaterializeError::Definitions)?;
        let selection = match self.selection {
            Selection::Parsed(s) => s,
            Selection::Text(text) => text.parse::<AssetSelection>()?,
        };
        let selected = selection.resolve(graph)?;
        let mut injected: Vec<(AssetId, Value)> = Vec::with_capacity(self.injected.len());
        for (key, value) in self.injected {
            let key = key.to_key();
            let id = graph
                .id_of(&key)
                .ok_or_else(|| MaterializeError::UnknownInjection(key.to_string()))?;
            injected.push((id, value));
        }
        let injected_ids: Vec<AssetId> = injected.iter().map(|(id, _)| *id).collect();
        let plan = Plan::new(graph, &selected, &injected_ids)?;
        let mut ignore = |_: &RunEvent<'_>| {};
        let sink: &mut dyn EventSink = match self.sink {
            Some(sink) => sink,
            None => &mut ignore,
        };
        let opts = ExecOptions {
            jobs: self.jobs,
            keep_outputs: self.keep_outputs,
        };
        Ok(executor::execute(graph, plan, injected, opts, sink).await)
    }
}
