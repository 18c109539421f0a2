//! [`Materialize`]: the one way to run assets, used by the CLI and by tests.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use orch_core::__private::Value;
use orch_core::{
    Asset, AssetGraph, AssetId, AssetSelection, DefinitionErrors, RunId, SelectionError,
};

use crate::events::{EventSink, RunEvent};
use crate::executor::{self, ExecOptions, Provided};
use crate::io::{InputContext, IoManagers, LoadError, UnknownIoManager};
use crate::plan::{Plan, PlanError, missing_inputs};
use crate::result::RunResult;
use crate::staleness::stale_assets;
use crate::storage::{RunLock, RunRecord, RunStatus, Storage, StorageError, StoreSink};

mod partitions;

use partitions::{
    StoredDynamicPartitions, all_partitions, check_partition, stored_version, takes_same_partition,
};
pub(crate) use partitions::{check_range, dynamic_keys};

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
    #[error("deciding what is stale needs the run store: run without `--ephemeral`")]
    StaleNeedsStore,
    /// A planned asset takes a resource that is not configured.
    #[error(
        "asset `{asset}` (at {location}) needs resource `{resource}`, which is not configured: add it with `App::new().resource(...)` in `main` (or `Materialize::resource(...)` in a library run){}",
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
    run_id: Option<RunId>,
    recording: Option<Recording>,
    only_stale: bool,
    partition: Option<String>,
    range: Option<Arc<[String]>>,
    resources: Arc<orch_core::Resources>,
}

/// Where and how a run is recorded (see [`Materialize::record`]).
#[derive(Clone)]
pub struct Recording {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// The state directory, for the run's lock file (which tells a live run from a dead one).
    pub dir: PathBuf,
    /// What started the run (`cli`, `api`, ...).
    pub trigger: String,
    /// Where outputs are stored and loaded from.
    pub io: Arc<IoManagers>,
}

impl Recording {
    /// Records in the store under `dir`, with the built-in I/O managers (files under
    /// `dir/storage`).
    pub fn open(dir: &std::path::Path, trigger: &str) -> Result<Recording, StorageError> {
        Ok(Recording {
            storage: Arc::new(crate::storage::SqliteStorage::open(dir)?),
            dir: dir.to_owned(),
            trigger: trigger.to_owned(),
            io: Arc::new(IoManagers::new(dir.to_owned())),
        })
    }
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("dir", &self.dir)
            .field("trigger", &self.trigger)
            .finish_non_exhaustive()
    }
}

/// Sends each event to the store's sink, then to the caller's.
struct Tee<'a, 'b>(&'a mut dyn EventSink, &'b mut StoreSink);

impl EventSink for Tee<'_, '_> {
    fn on_event(&mut self, event: &RunEvent<'_>) {
        self.1.on_event(event);
        self.0.on_event(event);
    }
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
            run_id: None,
            recording: None,
            only_stale: false,
            partition: None,
            range: None,
            resources: Arc::default(),
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

    /// Sends every event of the run to `sink` (instead of any sink given before).
    pub fn events<'t>(self, sink: &'t mut dyn EventSink) -> Materialize<'t> {
        Materialize {
            selection: self.selection,
            injected: self.injected,
            jobs: self.jobs,
            keep_outputs: self.keep_outputs,
            sink: Some(sink),
            run_id: self.run_id,
            recording: self.recording,
            only_stale: self.only_stale,
            partition: self.partition,
            range: self.range,
            resources: self.resources,
        }
    }

    /// Records the run (its events, logs and outcome) in a store, and claims every planned
    /// asset for the run's duration so no other run materializes them at the same time.
    pub fn record(mut self, recording: Recording) -> Self {
        self.recording = Some(recording);
        self
    }

    /// Narrows the selection to the assets that are stale (see [`crate::StaleReason`]); their
    /// up-to-date inputs are loaded from storage. Needs [`Materialize::record`]. When nothing
    /// is stale, the run does nothing and records nothing.
    pub fn only_stale(mut self) -> Self {
        self.only_stale = true;
        self
    }

    /// Materializes partition `key` of the selected partitioned assets (their unpartitioned
    /// selected neighbours run whole). Required when the selection holds a partitioned asset;
    /// an invalid key is an error that lists the valid ones.
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.partition = Some(key.into());
        self.range = None;
        self
    }

    /// Materializes the partitions `keys` (consecutive, e.g. from
    /// [`Partitions::range`](orch_core::Partitions::range)) of the selected partitioned assets
    /// in one run: each is called once, with [`AssetContext::partition_key_range`] spanning
    /// them, and its frame is split into the partitions by its `partition_by` column. Every
    /// selected partitioned asset needs `partition_by` (and no partition mapping).
    pub fn partition_range<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.range = Some(keys.into_iter().map(Into::into).collect());
        self.partition = None;
        self
    }

    /// Uses these resources for `#[resource]` parameters (instead of any given before).
    pub fn resources(mut self, resources: impl Into<Arc<orch_core::Resources>>) -> Self {
        self.resources = resources.into();
        self
    }

    /// Adds `value` as the resource of type `T`.
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        Arc::make_mut(&mut self.resources).insert(value);
        self
    }

    /// Uses this run id instead of a fresh one.
    pub fn run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
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
        let mut selected = selection.resolve(graph)?;
        let mut provided: Vec<Provided> = Vec::with_capacity(self.injected.len());
        for (key, value) in self.injected {
            let key = key.to_key();
            let id = graph
                .id_of(&key)
                .ok_or_else(|| MaterializeError::UnknownInjection(key.to_string()))?;
            provided.push(Provided {
                id,
                value,
                loaded: false,
                data_version: None,
            });
        }
        // Every partition key of the run: one, or a range's.
        let keys: Option<Arc<[String]>> = match (&self.range, &self.partition) {
            (Some(range), _) => Some(Arc::clone(range)),
            (None, Some(key)) => Some(Arc::from([key.clone()])),
            (None, None) => None,
        };
        check_partition(
            graph,
            &selected,
            keys.as_deref(),
            self.recording.as_ref().map(|r| &*r.storage),
        )?;
        if self.range.is_some() {
            check_range(graph, &selected)?;
            if self.recording.is_none() {
                return Err(PlanError::BadRange(
                    "splits its outputs into stored partitions: record the run (the command line always does)".to_owned(),
                )
                .into());
            }
        }
        let run_id = self.run_id.unwrap_or_default();
        let mut ignore = |_: &RunEvent<'_>| {};
        let sink: &mut dyn EventSink = match self.sink {
            Some(sink) => sink,
            None => &mut ignore,
        };
        let opts = ExecOptions {
            jobs: self.jobs,
            keep_outputs: self.keep_outputs,
            run_id: run_id.clone(),
            run_lock: None,
            io: None,
            partition: self.partition.clone(),
            range: self.range.clone(),
            resources: Arc::clone(&self.resources),
            dynamic: None,
        };
        let Some(recording) = self.recording else {
            if self.only_stale {
                return Err(MaterializeError::StaleNeedsStore);
            }
            let ids: Vec<AssetId> = provided.iter().map(|p| p.id).collect();
            let plan = Plan::new(graph, &selected, &ids)?;
            check_resources(graph, &plan, &self.resources)?;
            return Ok(executor::execute(graph, plan, provided, opts, sink).await);
        };

        let latest = recording.storage.latest_materializations()?;
        if self.only_stale {
            let stale = stale_assets(graph, &latest);
            selected.retain(|&id| stale[id].is_some());
            if selected.is_empty() {
                return Ok(RunResult::nothing_to_do(graph, run_id));
            }
        }
        // Unselected inputs come from their I/O managers, as stored by earlier runs.
        let ids: Vec<AssetId> = provided.iter().map(|p| p.id).collect();
        for (consumer, up) in missing_inputs(graph, &selected, &ids) {
            let node = graph.node(up);
            // Consumers that map their partitions (`#[partitions(last = 7)]`) load what they
            // read themselves, when they run; if no consumer takes this one's own partition,
            // there is nothing to load now.
            if !takes_same_partition(graph, &selected, up) {
                // The version recorded as the consumer's input: that of the partitions its
                // mapping reads.
                let mapping = (0..graph.node(consumer).inputs.len())
                    .find(|&i| graph.node(consumer).inputs[i] == up)
                    .map(|i| graph.node(consumer).input_mapping(i));
                let data_version = match (&node.partitions, &self.partition, mapping) {
                    (Some(partitions), Some(partition), Some(mapping)) => {
                        match partitions.mapped(partition, mapping, jiff::Timestamp::now()) {
                            Ok(keys) => stored_version(&*recording.storage, &node.key, &keys)?,
                            Err(_) => None,
                        }
                    }
                    _ => None,
                };
                provided.push(Provided {
                    id: up,
                    value: Arc::new(()),
                    loaded: true,
                    data_version,
                });
                continue;
            }
            let manager = recording.io.for_asset(&node.key, node.def)?;
            let partition = node.partitions.as_ref().and(self.partition.as_deref());
            let ctx = InputContext {
                key: &node.key,
                partition,
                output_type: node.def.output_type,
                codec: node.def.codec,
            };
            // A run over a range reads the range of a partitioned input (frames, concatenated).
            if let (Some(_), Some(range)) = (&node.partitions, &self.range) {
                let value = manager.load_partitions(&ctx, range).map_err(|e| match e {
                    LoadError::Missing { .. } => {
                        MaterializeError::from(PlanError::NeverMaterialized {
                            asset: graph.node(consumer).key.clone(),
                            upstream: node.key.clone(),
                            partition: Some(format!("{}..{}", range[0], range[range.len() - 1])),
                        })
                    }
                    e => e.into(),
                })?;
                provided.push(Provided {
                    id: up,
                    value,
                    loaded: true,
                    data_version: stored_version(&*recording.storage, &node.key, range)?,
                });
                continue;
            }
            // An unpartitioned consumer of a partitioned input reads every partition.
            if node.partitions.is_some() && self.partition.is_none() {
                let (keys, data_version) =
                    all_partitions(graph, consumer, up, &*recording.storage)?;
                let value = manager.load_partitions(&ctx, &keys)?;
                provided.push(Provided {
                    id: up,
                    value,
                    loaded: true,
                    data_version,
                });
                continue;
            }
            let value = match manager.load_input(&ctx) {
                Ok(value) => value,
                Err(LoadError::Missing { .. }) => {
                    return Err(PlanError::NeverMaterialized {
                        asset: graph.node(consumer).key.clone(),
                        upstream: node.key.clone(),
                        partition: partition.map(str::to_owned),
                    }
                    .into());
                }
                Err(e) => return Err(e.into()),
            };
            let data_version = match partition {
                Some(partition) => recording
                    .storage
                    .partition_statuses(&node.key.to_string())?
                    .into_iter()
                    .find(|s| s.partition == partition)
                    .and_then(|s| s.data_version),
                None => latest
                    .get(&node.key.to_string())
                    .and_then(|e| e.data_version.clone()),
            };
            provided.push(Provided {
                id: up,
                value,
                loaded: true,
                data_version,
            });
        }
        let ids: Vec<AssetId> = provided.iter().map(|p| p.id).collect();
        let plan = Plan::new(graph, &selected, &ids)?;
        check_resources(graph, &plan, &self.resources)?;
        for &id in &plan.order {
            let node = graph.node(id);
            recording.io.for_asset(&node.key, node.def)?;
        }

        let id = run_id.as_str();
        // Held until the run is recorded as ended and its last task is over; if the process
        // dies, the OS drops it and the next start sees the run as crashed.
        let run_lock = Arc::new(RunLock::acquire(&recording.dir, id)?);
        let opts = ExecOptions {
            run_lock: Some(Arc::clone(&run_lock)),
            io: Some(Arc::clone(&recording.io)),
            dynamic: Some(Arc::new(StoredDynamicPartitions(Arc::clone(
                &recording.storage,
            )))),
            ..opts
        };
        // Claims are per asset, and per partition for partitioned assets, so runs of different
        // partitions of one asset go on side by side.
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
        recording.storage.begin_run(
            &RunRecord {
                id: id.to_owned(),
                selection: {
                    let scope = match &keys {
                        Some(k) if self.range.is_some() => {
                            format!(" partitions {}..{}", k[0], k[k.len() - 1])
                        }
                        Some(k) => format!(" partition {}", k[0]),
                        None => String::new(),
                    };
                    match self.only_stale {
                        true => format!("stale in ({selection}){scope}"),
                        false => format!("{selection}{scope}"),
                    }
                },
                status: RunStatus::Started,
                trigger: recording.trigger.clone(),
                started: SystemTime::now(),
                ended: None,
                planned: u32::try_from(planned.len()).unwrap_or(u32::MAX),
                counts: (0, 0, 0),
            },
            &planned,
        )?;
        let mut store = StoreSink::new(
            Arc::clone(&recording.storage),
            graph,
            id.to_owned(),
            keys.clone(),
        );
        let mut result =
            executor::execute(graph, plan, provided, opts, &mut Tee(sink, &mut store)).await;
        let written = store.finish();
        // Outputs are durable before the run is recorded as ended.
        let flushed = recording.io.flush().map_err(|source| StorageError::Io {
            path: recording.dir.join("storage"),
            source: std::io::Error::other(source),
        });
        let status = if result.success() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        let ended = recording.storage.end_run(id, status, SystemTime::now());
        result.storage_error = written.and(flushed).and(ended).err();
        Ok(result)
    }
}

/// Every resource the planned assets take is configured (checked before anything runs).
fn check_resources(
    graph: &AssetGraph,
    plan: &Plan,
    resources: &orch_core::Resources,
) -> Result<(), MaterializeError> {
    for &id in &plan.order {
        let node = graph.node(id);
        if let Some(missing) = node.def.resources.iter().find(|r| !resources.contains(r)) {
            return Err(MaterializeError::MissingResource {
                asset: node.key.clone(),
                location: node.def.location,
                resource: missing.short_name(),
                configured: resources.names(),
            });
        }
    }
    Ok(())
}
