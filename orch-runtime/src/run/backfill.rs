//! [`Backfill`]: many partitions of a selection, one run per partition (or per few consecutive
//! ones), several at once. Planned into run requests ([`BackfillPlan`]) and run with
//! cancellation ([`BackfillPlan::run`]); the `backfill` command, `materialize` of everything
//! and `materialize --stale` over partitions are thin shells over it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orch_core::{
    AssetGraph, AssetId, AssetKey, AssetSelection, DefinitionErrors, PartitionMapping, Partitions,
    RunId, SelectionError,
};
use tokio_util::sync::CancellationToken;

use super::partitions::{check_range, dynamic_keys};
use super::{PartitionScope, RunRequest, Trigger};
use crate::instance::Instance;
use crate::materialize::MaterializeError;
use crate::result::{AssetStatus, RunResult};
use crate::storage::StorageError;

/// The tag every run of a backfill carries, with the backfill's id as its value, as Dagster's
/// `dagster/backfill`: `runs --tag orch/backfill=ID` lists one backfill's runs.
pub const BACKFILL_TAG: &str = "orch/backfill";

/// Which partitions a backfill covers.
#[derive(Clone, Debug, PartialEq)]
enum Span {
    /// Every partition of the definition (as of now, for time windows).
    All,
    /// From one key to another, both included, in the definition's order.
    Range { from: String, to: String },
    /// These keys (run in the definition's order, whatever order they are given in).
    Keys(Vec<String>),
    /// What is stale: the stale assets of the selection, the partitions where any is stale,
    /// and in each run only what is stale in its partition.
    Stale,
}

/// A backfill to plan: partitions of the partitioned assets of a selection, one run per
/// partition (or per `partitions_per_run` consecutive partitions, each asset called once over
/// them), at most `parallel` runs at once.
///
/// Unpartitioned assets of the selection that the partitions read run once, first;
/// unpartitioned assets that read every partition run once, last, if every partition
/// succeeded. Partitioned assets that read other partitions of a selected input
/// (`#[partitions(offset = -1)]`, `last = 7`) run in a later stage, over the whole range,
/// once that input is done everywhere.
///
/// ```no_run
/// use orch_runtime::{Backfill, CancellationToken, Instance};
/// let instance = Instance::open(".orch")?;
/// let plan = Backfill::range("+daily_report".parse()?, "2024-01-01", "2024-01-31")
///     .parallel(4)
///     .plan(&instance)?;
/// let runtime = tokio::runtime::Runtime::new()?;
/// let report = runtime.block_on(plan.run(&instance, &CancellationToken::new(), &mut |_| {}))?;
/// println!("{} of {} partitions succeeded", report.succeeded(), report.partitions().len());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Backfill {
    selection: AssetSelection,
    span: Span,
    per_run: usize,
    parallel: usize,
    tags: BTreeMap<String, String>,
}

impl Backfill {
    /// Partitions `from` to `to` (both included) of the selection.
    pub fn range(
        selection: AssetSelection,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Backfill {
        Backfill::new(
            selection,
            Span::Range {
                from: from.into(),
                to: to.into(),
            },
        )
    }

    /// Every partition of the selection.
    pub fn all(selection: AssetSelection) -> Backfill {
        Backfill::new(selection, Span::All)
    }

    /// Partitions `keys` of the selection (not necessarily consecutive; they run in the
    /// definition's order). No keys: only the selection's unpartitioned assets run.
    pub fn keys<I, S>(selection: AssetSelection, keys: I) -> Backfill
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Backfill::new(
            selection,
            Span::Keys(keys.into_iter().map(Into::into).collect()),
        )
    }

    /// What is stale in the selection (`materialize --stale` over partitioned assets): the
    /// partitions where some selected asset is stale, one run each, and in each run only the
    /// assets stale in that partition (every request is [`RunRequest::only_stale`], judged
    /// when the run starts, so a stage reading the partitions an earlier stage rewrote sees
    /// them as they are then). Stale unpartitioned inputs run before, stale consumers of every
    /// partition after. Nothing stale: an empty plan ([`BackfillPlan::is_empty`]).
    pub fn stale(selection: AssetSelection) -> Backfill {
        Backfill::new(selection, Span::Stale)
    }

    fn new(selection: AssetSelection, span: Span) -> Backfill {
        Backfill {
            selection,
            span,
            per_run: 1,
            parallel: crate::default_jobs(),
            tags: BTreeMap::new(),
        }
    }

    /// Runs `n` consecutive partitions per run (default 1): each partitioned asset is called
    /// once over them and must split its output by its `partition_by` column.
    pub fn partitions_per_run(mut self, n: usize) -> Backfill {
        self.per_run = n.max(1);
        self
    }

    /// Every partition in one run (see [`Backfill::partitions_per_run`]).
    pub fn single_run(self) -> Backfill {
        self.partitions_per_run(usize::MAX)
    }

    /// At most `n` runs at once (default: the number of cores).
    pub fn parallel(mut self, n: usize) -> Backfill {
        self.parallel = n.max(1);
        self
    }

    /// Adds a tag to every run of the backfill.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Backfill {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Resolves the selection and the partitions against the registered assets and the
    /// instance's store (for dynamic partitions), and orders the work in stages. Every reason
    /// the backfill cannot start is returned here: nothing has run yet.
    pub fn plan(&self, instance: &Instance) -> Result<BackfillPlan, BackfillError> {
        let graph = crate::materialize::definitions().map_err(BackfillError::Definitions)?;
        self.plan_in(graph, instance)
    }

    fn plan_in(
        &self,
        graph: &'static AssetGraph,
        instance: &Instance,
    ) -> Result<BackfillPlan, BackfillError> {
        let mut ids = self.selection.resolve(graph)?;
        let mut stale_reasons = Vec::new();
        let mut stale_keys = Vec::new();
        if self.span == Span::Stale {
            let inputs = crate::staleness::StaleInputs::load(graph, &**instance.storage())?;
            let stale = crate::staleness::staleness(graph, &inputs);
            ids.retain(|&id| stale.of(id).is_some());
            let mut wanted = HashSet::new();
            for &id in &ids {
                if let Some(why) = stale.of(id) {
                    stale_reasons.push((graph.node(id).key.clone(), why.clone()));
                }
                for key in stale.stale_partitions(id) {
                    if wanted.insert(key) {
                        stale_keys.push(key.to_owned());
                    }
                }
            }
            if ids.iter().all(|&id| graph.node(id).partitions.is_none()) {
                stale_keys.clear();
            }
        }
        let keys =
            match &self.span {
                Span::Keys(keys) if keys.is_empty() => Vec::new(),
                Span::Stale if stale_keys.is_empty() => Vec::new(),
                span => {
                    let (partitions, key) = shared_partitions(graph, &ids)?;
                    let dynamic = dynamic_keys(Some(&**instance.storage()), partitions)?;
                    let now = jiff::Timestamp::now();
                    match span {
                        Span::All => partitions.keys(now, &dynamic),
                        Span::Range { from, to } => partitions
                            .range(from, to, now, &dynamic)
                            .map_err(|e| BackfillError::Range {
                                asset: key.clone(),
                                reason: e.to_string(),
                            })?,
                        Span::Keys(wanted) => {
                            in_definition_order(partitions, key, wanted, now, &dynamic)?
                        }
                        Span::Stale => {
                            in_definition_order(partitions, key, &stale_keys, now, &dynamic)?
                        }
                    }
                }
            };
        if matches!(self.span, Span::All) && keys.is_empty() {
            return Err(BackfillError::NoPartitions);
        }
        let (whole, sliced): (Vec<AssetId>, Vec<AssetId>) = ids
            .iter()
            .partition(|&&id| graph.node(id).partitions.is_none());
        let mut downstream_of_partitions = vec![false; graph.len()];
        for &id in graph.topological_order() {
            downstream_of_partitions[id] = graph.node(id).upstream.iter().any(|&up| {
                ids.contains(&up)
                    && (graph.node(up).partitions.is_some() || downstream_of_partitions[up])
            });
        }
        let (after, before): (Vec<AssetId>, Vec<AssetId>) = whole
            .into_iter()
            .partition(|&id| downstream_of_partitions[id]);
        let per_run = self.per_run.clamp(1, keys.len().max(1));
        // Runs over ranges: every partitioned asset must take them; refused once, up front.
        if per_run > 1 {
            check_range(graph, &sliced).map_err(|e| BackfillError::RangeRuns(e.to_string()))?;
        }
        let mut tags = self.tags.clone();
        let id = RunId::new().short().to_owned();
        tags.insert(BACKFILL_TAG.to_owned(), id.clone());
        Ok(BackfillPlan {
            id,
            only_stale: self.span == Span::Stale,
            stale: stale_reasons,
            graph,
            keys,
            before,
            stages: stages_of(graph, &sliced),
            after,
            per_run,
            parallel: self.parallel,
            tags,
        })
    }
}

/// Why a backfill cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// The asset definitions are invalid.
    #[error(transparent)]
    Definitions(&'static DefinitionErrors),
    /// The selection names unknown assets or does not parse.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// No selected asset is partitioned.
    #[error("no selected asset is partitioned")]
    NotPartitioned,
    /// The selected partitioned assets do not share one partitions definition.
    #[error(
        "the selection mixes partitions: `{first}` is {first_partitions} and `{other}` is {other_partitions}; backfill them separately"
    )]
    MixedPartitions {
        /// One partitioned asset.
        first: AssetKey,
        /// Its partitions, described.
        first_partitions: String,
        /// Another, partitioned differently.
        other: AssetKey,
        /// Its partitions, described.
        other_partitions: String,
    },
    /// The range or a key is not one of the definition's.
    #[error("asset `{asset}`: {reason}")]
    Range {
        /// The asset whose partitions the keys were checked against.
        asset: AssetKey,
        /// What is wrong with them.
        reason: String,
    },
    /// The partitioned assets have no partitions yet (dynamic partitions without keys).
    #[error("the partitioned assets have no partitions yet")]
    NoPartitions,
    /// Several partitions per run were asked for, and an asset cannot take a range.
    #[error("{0}; backfill without `--partitions-per-run`/`--single-run`")]
    RangeRuns(String),
    /// The store could not be read (dynamic partitions).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The one partitions definition shared by the partitioned assets among `ids`, and one asset
/// that has it.
fn shared_partitions<'g>(
    graph: &'g AssetGraph,
    ids: &[AssetId],
) -> Result<(&'g Partitions, &'g AssetKey), BackfillError> {
    let mut found: Option<(&Partitions, &AssetKey)> = None;
    for &id in ids {
        let node = graph.node(id);
        let Some(p) = &node.partitions else { continue };
        match found {
            None => found = Some((p, &node.key)),
            Some((q, first)) if q != p => {
                return Err(BackfillError::MixedPartitions {
                    first: first.clone(),
                    first_partitions: q.describe(),
                    other: node.key.clone(),
                    other_partitions: p.describe(),
                });
            }
            Some(_) => {}
        }
    }
    found.ok_or(BackfillError::NotPartitioned)
}

/// `wanted` in the definition's order; an unknown key is an error.
fn in_definition_order(
    partitions: &Partitions,
    asset: &AssetKey,
    wanted: &[String],
    now: jiff::Timestamp,
    dynamic: &[String],
) -> Result<Vec<String>, BackfillError> {
    let all = partitions.keys(now, dynamic);
    let known: HashSet<&str> = all.iter().map(String::as_str).collect();
    if let Some(unknown) = wanted.iter().find(|k| !known.contains(k.as_str())) {
        return Err(BackfillError::Range {
            asset: asset.clone(),
            reason: format!(
                "`{unknown}` is not one of its partitions ({})",
                partitions.describe()
            ),
        });
    }
    let wanted: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    Ok(all
        .into_iter()
        .filter(|k| wanted.contains(k.as_str()))
        .collect())
}

/// Partitioned assets in stages: an asset that reads other partitions of a partitioned input
/// in the selection runs in a later stage than that input.
fn stages_of(graph: &AssetGraph, sliced: &[AssetId]) -> Vec<Vec<AssetId>> {
    let mut stage = vec![0usize; graph.len()];
    for &id in graph.topological_order() {
        if !sliced.contains(&id) {
            continue;
        }
        let node = graph.node(id);
        // Every upstream (`deps` too) runs first; one read through a mapping, a stage first.
        for &up in &node.upstream {
            if sliced.contains(&up) {
                let mapped =
                    node.inputs.iter().enumerate().any(|(i, &u)| {
                        u == up && node.input_mapping(i) != PartitionMapping::Identity
                    });
                stage[id] = stage[id].max(stage[up] + usize::from(mapped));
            }
        }
    }
    let count = sliced.iter().map(|&id| stage[id] + 1).max().unwrap_or(0);
    (0..count)
        .map(|n| {
            sliced
                .iter()
                .copied()
                .filter(|&id| stage[id] == n)
                .collect()
        })
        .collect()
}

/// A planned backfill: its id, its partitions in order, and the runs it makes, stage by
/// stage. [`BackfillPlan::requests`] lists them; [`BackfillPlan::run`] makes them.
#[derive(Clone, Debug)]
pub struct BackfillPlan {
    id: String,
    /// Every request is `--stale` ([`Backfill::stale`]).
    only_stale: bool,
    /// The stale assets and why ([`Backfill::stale`]).
    stale: Vec<(AssetKey, crate::staleness::StaleReason)>,
    graph: &'static AssetGraph,
    keys: Vec<String>,
    before: Vec<AssetId>,
    stages: Vec<Vec<AssetId>>,
    after: Vec<AssetId>,
    per_run: usize,
    parallel: usize,
    tags: BTreeMap<String, String>,
}

/// Something a running backfill reached, for a progress display.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum BackfillStep<'a> {
    /// A later stage starts: partitioned assets that read other partitions of an input,
    /// over every partition.
    Stage {
        /// The stage's assets.
        assets: &'a [AssetKey],
    },
    /// The unpartitioned assets that read every partition start.
    After {
        /// Those assets.
        assets: &'a [AssetKey],
    },
    /// Assets left out because some partitions they read failed or were canceled.
    Skipped {
        /// Those assets.
        assets: &'a [AssetKey],
        /// Whether they read every partition (the last stage) or other partitions (a later
        /// partitioned stage).
        every_partition: bool,
    },
}

impl BackfillPlan {
    /// The backfill's id: every run carries it (as its trigger, and as the
    /// [`BACKFILL_TAG`] tag).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The partitions, in the definition's order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether the backfill has nothing to run (a [`Backfill::stale`] with nothing stale).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.before.is_empty() && self.after.is_empty()
    }

    /// Of a [`Backfill::stale`]: the stale assets it covers, and why each is stale, in the
    /// definition's order.
    pub fn stale(&self) -> &[(AssetKey, crate::staleness::StaleReason)] {
        &self.stale
    }

    /// How many consecutive partitions each run covers.
    pub fn partitions_per_run(&self) -> usize {
        self.per_run
    }

    /// How many runs go at once.
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    fn trigger(&self) -> Trigger {
        Trigger::Backfill {
            backfill_id: self.id.clone(),
        }
    }

    fn request(&self, ids: &[AssetId], scope: PartitionScope) -> RunRequest {
        let keys = ids.iter().map(|&id| self.graph.node(id).key.clone());
        let mut request = RunRequest::selection(AssetSelection::Keys(keys.collect()))
            .partitions(scope)
            .with_trigger(self.trigger());
        if self.only_stale {
            request = request.only_stale();
        }
        request.tags = self.tags.clone();
        request
    }

    fn scopes(&self) -> impl Iterator<Item = PartitionScope> + '_ {
        self.keys.chunks(self.per_run).map(|chunk| match chunk {
            [one] if self.per_run == 1 => PartitionScope::Key(one.clone()),
            range => PartitionScope::Range(range.to_vec()),
        })
    }

    /// Every run the backfill makes, in order: the unpartitioned inputs (one run), each
    /// stage's runs (one per partition or chunk), the unpartitioned consumers (one run).
    /// What a daemon would queue.
    pub fn requests(&self) -> Vec<RunRequest> {
        let mut requests = Vec::new();
        if !self.before.is_empty() {
            requests.push(self.request(&self.before, PartitionScope::None));
        }
        for stage in &self.stages {
            requests.extend(self.scopes().map(|scope| self.request(stage, scope)));
        }
        if !self.after.is_empty() {
            requests.push(self.request(&self.after, PartitionScope::None));
        }
        requests
    }

    fn keys_of(&self, ids: &[AssetId]) -> Vec<AssetKey> {
        ids.iter()
            .map(|&id| self.graph.node(id).key.clone())
            .collect()
    }

    /// Makes the backfill's runs in `instance`, at most [`parallel`](BackfillPlan::parallel)
    /// at once; a failed run does not stop the others. Cancelling `cancel` starts no new run
    /// and cancels the runs in flight (each is recorded as canceled); the report then says
    /// which partitions did not run. `progress` hears when a stage starts or is skipped.
    ///
    /// An error means the first run (the unpartitioned inputs) could not start.
    pub async fn run(
        &self,
        instance: &Instance,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(BackfillStep<'_>) + Send),
    ) -> Result<BackfillReport, MaterializeError> {
        let started = Instant::now();
        let mut report = BackfillReport {
            id: self.id.clone(),
            before: None,
            partitions: self
                .keys
                .iter()
                .map(|key| PartitionOutcome {
                    key: key.clone(),
                    run_id: None,
                    status: PartitionStatus::NotRun,
                })
                .collect(),
            after: None,
            skipped: Vec::new(),
            canceled: false,
            elapsed: Duration::ZERO,
        };
        if !self.before.is_empty() {
            let request = self.request(&self.before, PartitionScope::None);
            let result = instance
                .materialize(request)
                .keep_outputs(false)
                .cancel_token(cancel.child_token())
                .run_async()
                .await?;
            let ok = result.success() && result.storage_error().is_none();
            report.before = Some(result);
            if !ok {
                report.canceled = cancel.is_cancelled();
                report.elapsed = started.elapsed();
                return Ok(report);
            }
        }
        for (n, stage) in self.stages.iter().enumerate() {
            let assets = self.keys_of(stage);
            if n > 0 {
                if cancel.is_cancelled() || report.partitions.iter().any(|p| !p.status.is_ok()) {
                    progress(BackfillStep::Skipped {
                        assets: &assets,
                        every_partition: false,
                    });
                    self.stages[n..]
                        .iter()
                        .for_each(|s| report.skipped.extend(self.keys_of(s)));
                    break;
                }
                progress(BackfillStep::Stage { assets: &assets });
            }
            for (i, outcome) in self.run_stage(instance, stage, cancel).await {
                // One outcome per partition: its first failure, if a stage failed it.
                let slot = &mut report.partitions[i];
                if slot.status.is_ok() || slot.status == PartitionStatus::NotRun {
                    slot.run_id = outcome.run_id.or(slot.run_id.take());
                    slot.status = outcome.status;
                }
            }
        }
        if !self.after.is_empty() {
            let assets = self.keys_of(&self.after);
            if cancel.is_cancelled() || report.partitions.iter().any(|p| !p.status.is_ok()) {
                progress(BackfillStep::Skipped {
                    assets: &assets,
                    every_partition: true,
                });
                report.skipped.extend(assets);
            } else {
                progress(BackfillStep::After { assets: &assets });
                let request = self.request(&self.after, PartitionScope::None);
                report.after = Some(
                    instance
                        .materialize(request)
                        .keep_outputs(false)
                        .cancel_token(cancel.child_token())
                        .run_async()
                        .await,
                );
            }
        }
        report.canceled = cancel.is_cancelled();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// One run per partition (or chunk) of `stage`'s assets, at most `parallel` at once: each
    /// partition's index in [`BackfillPlan::keys`] and how its run ended.
    async fn run_stage(
        &self,
        instance: &Instance,
        stage: &[AssetId],
        cancel: &CancellationToken,
    ) -> Vec<(usize, PartitionOutcome)> {
        let gate = Arc::new(tokio::sync::Semaphore::new(self.parallel));
        let mut tasks = tokio::task::JoinSet::new();
        // Runs start in the keys' order: a permit is taken before each run is spawned.
        for (n, scope) in self.scopes().enumerate() {
            let first = n * self.per_run;
            let count = scope.keys().len();
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                permit = Arc::clone(&gate).acquire_owned() => permit.ok(),
            };
            let Some(permit) = permit else {
                // Canceled: this run and the ones after it never start.
                let start = (first, count, None, PartitionStatus::Canceled);
                tasks.spawn(async move { start });
                continue;
            };
            let request = self.request(stage, scope);
            let instance = instance.clone();
            let cancel = cancel.child_token();
            tasks.spawn(async move {
                let _permit = permit;
                let run_id = RunId::new();
                let result = instance
                    .materialize(request)
                    .jobs(1)
                    .keep_outputs(false)
                    .run_id(run_id.clone())
                    .cancel_token(cancel)
                    .run_async()
                    .await;
                // A run that could not start, or a `--stale` one with nothing stale in its
                // partition, is not recorded: no run to name.
                let recorded = result.as_ref().is_ok_and(|r| !r.outcomes().is_empty());
                let run_id = recorded.then_some(run_id);
                (first, count, run_id, PartitionStatus::of(result))
            });
        }
        let mut outcomes = Vec::with_capacity(self.keys.len());
        while let Some(joined) = tasks.join_next().await {
            // A run's task only ends without an answer if orch itself panicked.
            let Ok((first, count, run_id, status)) = joined else {
                continue;
            };
            // Every partition of the run shares its outcome.
            outcomes.extend((first..first + count).map(|i| {
                (
                    i,
                    PartitionOutcome {
                        key: self.keys[i].clone(),
                        run_id: run_id.clone(),
                        status: status.clone(),
                    },
                )
            }));
        }
        outcomes
    }
}

/// How one partition of a backfill ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionStatus {
    /// Its run succeeded and was recorded.
    Succeeded,
    /// Its run failed (the first failed asset and why), or could not be recorded.
    Failed(String),
    /// The backfill was canceled before or while it ran.
    Canceled,
    /// It did not run: the unpartitioned inputs failed first.
    NotRun,
}

impl PartitionStatus {
    fn of(result: Result<RunResult, MaterializeError>) -> PartitionStatus {
        match result {
            Ok(r) if r.canceled() => PartitionStatus::Canceled,
            Ok(r) if r.success() && r.storage_error().is_none() => PartitionStatus::Succeeded,
            Ok(r) => PartitionStatus::Failed(match r.storage_error() {
                Some(e) => format!("not fully recorded: {e}"),
                None => r
                    .failed()
                    .next()
                    .map(|o| match &o.status {
                        AssetStatus::Failed(f) => format!("`{}`: {f}", o.key),
                        _ => format!("`{}` failed", o.key),
                    })
                    .unwrap_or_else(|| "failed".to_owned()),
            }),
            Err(e) => PartitionStatus::Failed(e.to_string()),
        }
    }

    /// Whether it succeeded.
    pub fn is_ok(&self) -> bool {
        *self == PartitionStatus::Succeeded
    }
}

/// One partition of a backfill: its key, the run that made it, how it ended.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PartitionOutcome {
    /// The partition key.
    pub key: String,
    /// The run it was in (its last stage's recorded run), if one was recorded.
    pub run_id: Option<RunId>,
    /// How it ended.
    pub status: PartitionStatus,
}

/// What a backfill did: every partition's outcome in order, and the runs of its
/// unpartitioned assets.
#[derive(Debug)]
pub struct BackfillReport {
    id: String,
    before: Option<RunResult>,
    partitions: Vec<PartitionOutcome>,
    after: Option<Result<RunResult, MaterializeError>>,
    skipped: Vec<AssetKey>,
    canceled: bool,
    elapsed: Duration,
}

impl BackfillReport {
    /// The backfill's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The run of the unpartitioned inputs, if there were any. When it did not succeed, no
    /// partition ran.
    pub fn before(&self) -> Option<&RunResult> {
        self.before.as_ref()
    }

    /// Whether the unpartitioned inputs failed, so that no partition ran.
    pub fn before_failed(&self) -> bool {
        self.before
            .as_ref()
            .is_some_and(|r| !r.success() || r.storage_error().is_some())
    }

    /// Every partition, in the definition's order.
    pub fn partitions(&self) -> &[PartitionOutcome] {
        &self.partitions
    }

    /// How many partitions succeeded.
    pub fn succeeded(&self) -> usize {
        self.partitions.iter().filter(|p| p.status.is_ok()).count()
    }

    /// The partitions that failed.
    pub fn failed(&self) -> impl Iterator<Item = &PartitionOutcome> {
        self.partitions
            .iter()
            .filter(|p| matches!(p.status, PartitionStatus::Failed(_)))
    }

    /// The run of the unpartitioned assets that read every partition, if it ran.
    pub fn after(&self) -> Option<&Result<RunResult, MaterializeError>> {
        self.after.as_ref()
    }

    /// Assets not materialized because partitions they read failed or were canceled.
    pub fn skipped(&self) -> &[AssetKey] {
        &self.skipped
    }

    /// Whether the backfill was canceled.
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// How long it took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether everything it planned ran and succeeded.
    pub fn success(&self) -> bool {
        !self.canceled
            && !self.before_failed()
            && self.partitions.iter().all(|p| p.status.is_ok())
            && self.skipped.is_empty()
            && self.after.as_ref().is_none_or(|r| {
                r.as_ref()
                    .is_ok_and(|r| r.success() && r.storage_error().is_none())
            })
    }
}
