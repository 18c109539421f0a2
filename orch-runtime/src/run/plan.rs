//! Planning a run, as one step before anything runs: resolve the target, narrow it to what is
//! stale, check the partitions and the resources, decide what to load from storage and how,
//! and order the assets. The launch carries a [`Prepared`] out; `materialize --dry-run`
//! prints it as a [`RunPlan`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use orch_core::{AssetGraph, AssetId, AssetKey, PartitionMapping};

use super::partitions::{all_partitions, check_partition, check_range, takes_same_partition};
use super::{PartitionScope, RunRequest, RunTarget};
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::plan::{Plan, PlanError, missing_inputs};
use crate::staleness::{StaleInputs, StaleReason, Staleness, staleness};
use crate::storage::{EventKind, EventRecord};

/// How an input the run does not compute is read from storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LoadKind {
    /// The upstream's value: its one output, or the run's partition of it.
    Same,
    /// The run's range of partitions, concatenated.
    Range,
    /// Every partition, concatenated (an unpartitioned consumer of a partitioned upstream).
    AllPartitions,
    /// Other partitions, through a mapping: loaded by the consumer's task when it runs.
    Mapped(PartitionMapping),
}

/// One input to load: `up`, for `consumer`.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub(crate) consumer: AssetId,
    pub(crate) up: AssetId,
    pub(crate) kind: LoadKind,
}

/// A run, planned: everything decided, nothing run or loaded yet.
pub(crate) struct Prepared {
    pub(crate) selected: Vec<AssetId>,
    pub(crate) partition: Option<String>,
    pub(crate) range: Option<Arc<[String]>>,
    /// Every partition key of the run: one, or a range's.
    pub(crate) keys: Option<Arc<[String]>>,
    /// Decided when the request is `--stale` (recorded runs).
    pub(crate) stale: Option<Staleness>,
    /// Every asset's latest materialization (recorded runs).
    pub(crate) latest: HashMap<String, EventRecord>,
    pub(crate) loads: Vec<Load>,
    /// `None` when `--stale` found nothing to do.
    pub(crate) plan: Option<Plan>,
    pub(crate) resources: Arc<orch_core::Resources>,
}

/// Plans `request` in `instance` (`None`: an unrecorded run), given the assets whose values
/// are injected.
pub(crate) fn prepare(
    graph: &'static AssetGraph,
    request: &RunRequest,
    instance: Option<&Instance>,
    injected: &[AssetId],
    resources: Option<Arc<orch_core::Resources>>,
) -> Result<Prepared, MaterializeError> {
    let mut selected = match &request.target {
        RunTarget::Selection(selection) => selection.resolve(graph)?,
        RunTarget::Job { name, steps } => job_steps(graph, name, steps, request, injected)?,
    };
    let (partition, range): (Option<String>, Option<Arc<[String]>>) = match &request.partitions {
        PartitionScope::None => (None, None),
        PartitionScope::Key(key) => (Some(key.clone()), None),
        PartitionScope::Range(keys) => (None, Some(keys.iter().cloned().collect())),
    };
    let keys: Option<Arc<[String]>> = match (&range, &partition) {
        (Some(range), _) => Some(Arc::clone(range)),
        (None, Some(key)) => Some(Arc::from([key.clone()])),
        (None, None) => None,
    };
    let resources = resources
        .or_else(|| instance.map(|i| Arc::clone(i.resources())))
        .unwrap_or_default();
    let mut prepared = Prepared {
        selected: Vec::new(),
        partition,
        range,
        keys,
        stale: None,
        latest: HashMap::new(),
        loads: Vec::new(),
        plan: None,
        resources,
    };
    if request.only_stale && instance.is_none() {
        return Err(MaterializeError::StaleNeedsStore);
    }
    // `--stale` narrows the selection first, so a partition is required only of what is
    // stale. Partitioned assets are judged by the run's partitions: its one key, or any key
    // of its range (a range run calls the asset once for all of them).
    if let (Some(instance), true) = (instance, request.only_stale) {
        let inputs = StaleInputs::load(graph, &**instance.storage())?;
        let stale = staleness(graph, &inputs);
        selected.retain(|&id| match prepared.keys.as_deref() {
            Some(keys) if graph.node(id).partitions.is_some() => {
                keys.iter().any(|k| stale.partition(id, k).is_some())
            }
            _ => stale.of(id).is_some(),
        });
        prepared.latest = inputs.latest().clone();
        prepared.stale = Some(stale);
        if selected.is_empty() {
            return Ok(prepared);
        }
    }
    check_partition(
        graph,
        &selected,
        prepared.keys.as_deref(),
        instance.map(|i| &**i.storage()),
    )?;
    if prepared.range.is_some() {
        check_range(graph, &selected)?;
        if instance.is_none() {
            return Err(PlanError::BadRange(
                "splits its outputs into stored partitions: record the run (the command line always does)".to_owned(),
            )
            .into());
        }
    }
    let mut provided = injected.to_vec();
    if let Some(instance) = instance {
        if prepared.stale.is_none() {
            // Only what the selection may load (its upstreams): a worker's one-step plan
            // reads a few rows, not every asset's.
            let mut upstream: Vec<String> = selected
                .iter()
                .flat_map(|&id| graph.node(id).upstream.iter())
                .map(|&up| graph.node(up).key.to_string())
                .collect();
            upstream.sort_unstable();
            upstream.dedup();
            prepared.latest = instance.storage().latest_materializations_of(&upstream)?;
        }
        prepared.loads = decide_loads(graph, &selected, injected, &prepared);
        provided.extend(prepared.loads.iter().map(|l| l.up));
    }
    let plan = Plan::new(graph, &selected, &provided)?;
    check_resources(graph, &plan, &prepared.resources)?;
    if let Some(instance) = instance {
        for &id in &plan.order {
            let node = graph.node(id);
            instance.io_managers().for_asset(&node.key, node.def)?;
        }
    }
    prepared.selected = selected;
    prepared.plan = Some(plan);
    Ok(prepared)
}

/// The steps of op job `name` a request runs (all, or the named ones), after checking that
/// it asks nothing an op job cannot do and that its config fits every op.
fn job_steps(
    graph: &AssetGraph,
    name: &str,
    steps: &[String],
    request: &RunRequest,
    injected: &[AssetId],
) -> Result<Vec<AssetId>, MaterializeError> {
    let job = crate::jobs::op_job(name)?;
    let refuse = |what: &str| MaterializeError::JobRequest {
        job: name.to_owned(),
        what: what.to_owned(),
    };
    if request.partitions != PartitionScope::None {
        return Err(refuse("has no partitions: run it without `--partition`"));
    }
    if request.only_stale {
        return Err(refuse(
            "has no staleness (its steps run whenever it runs): run it without `--stale`",
        ));
    }
    let ids: Vec<AssetId> = match steps.is_empty() {
        true => (0..graph.len()).collect(),
        false => steps
            .iter()
            .map(|step| {
                job.step(step).ok_or_else(|| {
                    refuse(&format!("has no step `{step}` (it was renamed or removed)"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    // Only the steps that run need their config.
    let running: Vec<AssetId> = ids
        .iter()
        .copied()
        .filter(|id| !injected.contains(id))
        .collect();
    let config = request.config.as_deref();
    job.check_config_of(config.unwrap_or(&orch_core::RunConfig::empty()), &running)?;
    Ok(ids)
}

/// How each input the selection does not compute is read from storage.
fn decide_loads(
    graph: &AssetGraph,
    selected: &[AssetId],
    injected: &[AssetId],
    prepared: &Prepared,
) -> Vec<Load> {
    missing_inputs(graph, selected, injected)
        .into_iter()
        .map(|(consumer, up)| {
            let partitioned = graph.node(up).partitions.is_some();
            let kind = if !takes_same_partition(graph, selected, up) {
                let node = graph.node(consumer);
                let mapping = node
                    .inputs
                    .iter()
                    .position(|&i| i == up)
                    .map_or(PartitionMapping::Identity, |i| node.input_mapping(i));
                LoadKind::Mapped(mapping)
            } else if partitioned && prepared.range.is_some() {
                LoadKind::Range
            } else if partitioned && prepared.partition.is_none() {
                LoadKind::AllPartitions
            } else {
                LoadKind::Same
            };
            Load { consumer, up, kind }
        })
        .collect()
}

/// Every resource the planned assets take is configured (checked before anything runs).
fn check_resources(
    graph: &AssetGraph,
    plan: &Plan,
    resources: &orch_core::Resources,
) -> Result<(), MaterializeError> {
    for &id in &plan.order {
        let node = graph.node(id);
        if let Some(missing) = node.def.resources().iter().find(|r| !resources.contains(r)) {
            return Err(MaterializeError::MissingResource {
                asset: node.key.clone(),
                location: node.def.location(),
                resource: missing.short_name(),
                configured: resources.names(),
            });
        }
    }
    Ok(())
}

/// A run as planned, without running it: what `materialize --dry-run` prints
/// ([`Instance::plan`](crate::Instance::plan)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunPlan {
    /// The request, as one line (`stale in (+b) partition 2024-01-05`).
    pub request: String,
    /// The assets that would run, in a valid order.
    pub assets: Vec<PlannedAsset>,
    /// The inputs that would load from storage.
    pub loads: Vec<PlannedLoad>,
}

/// An asset a plan would run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlannedAsset {
    /// The asset.
    pub key: AssetKey,
    /// The partitions it would materialize (empty for unpartitioned assets).
    pub partitions: Vec<String>,
    /// Why it is stale, for a `--stale` plan.
    pub stale: Option<StaleReason>,
}

/// An input a plan would load from storage.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PlannedLoad {
    /// The upstream asset whose stored output is read.
    pub upstream: AssetKey,
    /// The asset that reads it.
    pub consumer: AssetKey,
    /// What is read: `the stored output`, `partition K`, `partitions A..B`, `every partition`,
    /// or a mapping's partitions.
    pub reads: String,
    /// Whether the store has it now (`false`: the run would fail, saying so).
    pub stored: bool,
}

impl RunPlan {
    /// Describes `prepared` for `request`, checking in `instance`'s store that each load has
    /// something to read.
    pub(crate) fn describe(
        graph: &'static AssetGraph,
        request: &RunRequest,
        prepared: &Prepared,
        instance: Option<&Instance>,
    ) -> Result<RunPlan, MaterializeError> {
        let order = prepared.plan.as_ref().map_or(&[][..], |p| &p.order[..]);
        let assets = order
            .iter()
            .map(|&id| {
                let node = graph.node(id);
                let partitions = match (&node.partitions, &prepared.keys) {
                    (Some(_), Some(keys)) => keys.to_vec(),
                    _ => Vec::new(),
                };
                let stale = prepared.stale.as_ref().and_then(|s| match &prepared.keys {
                    Some(keys) if node.partitions.is_some() => {
                        keys.iter().find_map(|k| s.partition(id, k).cloned())
                    }
                    _ => s.of(id).cloned(),
                });
                PlannedAsset {
                    key: node.key.clone(),
                    partitions,
                    stale,
                }
            })
            .collect();
        let mut loads = Vec::with_capacity(prepared.loads.len());
        for load in &prepared.loads {
            let up = graph.node(load.up);
            let key = up.key.to_string();
            let storage = instance.map(|i| &**i.storage());
            let materialized = |partitions: &[String]| -> Result<bool, MaterializeError> {
                let Some(storage) = storage else {
                    return Ok(false);
                };
                let done: std::collections::HashSet<String> = storage
                    .partition_statuses(&key)?
                    .into_iter()
                    .filter(|s| s.kind == EventKind::Materialized)
                    .map(|s| s.partition)
                    .collect();
                Ok(partitions.iter().all(|p| done.contains(p)))
            };
            let (reads, stored) = match (&load.kind, &prepared.partition, &prepared.range) {
                (LoadKind::Mapped(mapping), Some(p), _) => {
                    (format!("{mapping} of partition {p}, when it runs"), true)
                }
                (LoadKind::Mapped(mapping), _, _) => (format!("{mapping}, when it runs"), true),
                (LoadKind::Range, _, Some(range)) => (
                    format!(
                        "partitions {}..{}",
                        range.first().map_or("", String::as_str),
                        range.last().map_or("", String::as_str)
                    ),
                    materialized(range)?,
                ),
                (LoadKind::AllPartitions, _, _) => {
                    let stored = match storage {
                        Some(storage) => {
                            all_partitions(graph, load.consumer, load.up, storage).is_ok()
                        }
                        None => false,
                    };
                    ("every partition".to_owned(), stored)
                }
                (_, Some(p), _) if up.partitions.is_some() => (
                    format!("partition {p}"),
                    materialized(std::slice::from_ref(p))?,
                ),
                _ => (
                    "the stored output".to_owned(),
                    prepared.latest.contains_key(&key),
                ),
            };
            loads.push(PlannedLoad {
                upstream: up.key.clone(),
                consumer: graph.node(load.consumer).key.clone(),
                reads,
                stored,
            });
        }
        Ok(RunPlan {
            request: request.to_string(),
            assets,
            loads,
        })
    }
}

impl fmt::Display for RunPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for `{}` (dry run: nothing runs)", self.request)?;
        if self.assets.is_empty() {
            return writeln!(f, "nothing would run: everything is up to date");
        }
        let width = self
            .assets
            .iter()
            .map(|a| a.key.to_string().len())
            .chain(self.loads.iter().map(|l| l.upstream.to_string().len()))
            .max()
            .unwrap_or(0);
        let n = self.assets.len();
        writeln!(
            f,
            "would run {n} asset{}, in this order:",
            if n == 1 { "" } else { "s" }
        )?;
        for asset in &self.assets {
            let mut notes = Vec::new();
            match asset.partitions.as_slice() {
                [] => {}
                [one] => notes.push(format!("partition {one}")),
                [first, .., last] => notes.push(format!(
                    "partitions {first}..{last} ({})",
                    asset.partitions.len()
                )),
            }
            if let Some(why) = &asset.stale {
                notes.push(format!("stale: {why}"));
            }
            let key = asset.key.to_string();
            match notes.is_empty() {
                true => writeln!(f, "  {key}")?,
                false => writeln!(f, "  {key:<width$}  {}", notes.join("; "))?,
            }
        }
        if !self.loads.is_empty() {
            let n = self.loads.len();
            writeln!(
                f,
                "would load {n} input{} from storage:",
                if n == 1 { "" } else { "s" }
            )?;
            for load in &self.loads {
                writeln!(
                    f,
                    "  {:<width$}  for {}: {}{}",
                    load.upstream.to_string(),
                    load.consumer,
                    load.reads,
                    if load.stored {
                        ""
                    } else {
                        " (NOT STORED: the run would fail)"
                    }
                )?;
            }
        }
        Ok(())
    }
}
