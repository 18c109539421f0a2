//! [`Reexecution`]: the request that repeats an earlier run, read back from the run store's
//! structured record (its target, partitions in order, tags), never from display text.

use std::collections::HashSet;

use orch_core::{AssetGraph, AssetKey, AssetSelection, RunConfig};

use super::{PartitionScope, RunRequest, RunTarget, Trigger};
use crate::storage::{EventKind, EventRecord, RunRecord, Storage, StorageError};

/// An earlier run to make again: all of it, or (with [`Reexecution::from_failure`]) only what
/// did not succeed (failed, skipped, canceled, or cut short by a crash). The new run covers
/// the same partitions, carries the same tags, and names the earlier run as its parent.
#[derive(Clone, Debug)]
pub struct Reexecution {
    parent: RunRecord,
    events: Vec<EventRecord>,
    from_failure: bool,
    /// A run config replacing the parent's (op jobs).
    config: Option<RunConfig>,
}

/// [`Reexecution::config`] on a run that materialized assets: only op jobs take a run config.
#[derive(Debug, thiserror::Error)]
#[error(
    "run {run} materialized assets (`{target}`), which take no run config: only a run of an op job does"
)]
pub struct ConfigOnAssetRun {
    run: String,
    target: String,
}

impl Reexecution {
    /// The run `id_or_prefix` of `storage`.
    pub fn of(storage: &dyn Storage, id_or_prefix: &str) -> Result<Reexecution, StorageError> {
        let parent = storage.run(id_or_prefix)?;
        let events = storage.events(parent.id.as_str())?;
        Ok(Reexecution {
            parent,
            events,
            from_failure: false,
            config: None,
        })
    }

    /// Runs with `config` instead of the earlier run's (an op job's run; the config is
    /// checked against the steps that run when the run is planned).
    pub fn config(mut self, config: RunConfig) -> Result<Self, ConfigOnAssetRun> {
        if !self.is_job_run() {
            return Err(ConfigOnAssetRun {
                run: self.parent.id.short().to_owned(),
                target: self.parent.target.clone(),
            });
        }
        self.config = Some(config);
        Ok(self)
    }

    fn is_job_run(&self) -> bool {
        self.parent.target.starts_with("job:")
            && RunTarget::parse_stored(&self.parent.target).is_ok()
    }

    /// Only the assets that did not succeed.
    pub fn from_failure(mut self) -> Self {
        self.from_failure = true;
        self
    }

    /// The run being repeated.
    pub fn parent(&self) -> &RunRecord {
        &self.parent
    }

    /// Whether the earlier run only ran asset checks (`check run`, tagged
    /// [`CHECKS_TAG`](crate::checks::CHECKS_TAG)): [`Reexecution::request`] would materialize
    /// its asset instead; run its checks again with [`Instance::check`](crate::Instance::check).
    pub fn checks_only(&self) -> bool {
        self.parent.tags.contains_key(crate::checks::CHECKS_TAG)
    }

    /// The request for the new run, or `None` when there is nothing to do (every asset of
    /// the run succeeded and only failures were asked for). Its assets are the earlier run's
    /// target resolved again; for a `--stale` run, or a target that no longer resolves, the
    /// assets it has events for.
    pub fn request(
        &self,
        graph: &AssetGraph,
    ) -> Result<Option<RunRequest>, orch_core::SelectionError> {
        if let Ok(RunTarget::Job { name, steps }) = RunTarget::parse_stored(&self.parent.target)
            && self.parent.target.starts_with("job:")
        {
            return Ok(self.job_request(name, steps));
        }
        let resolved = match self.parent.only_stale {
            true => None,
            false => self
                .parent
                .target
                .parse::<AssetSelection>()
                .and_then(|s| s.resolve(graph))
                .ok(),
        };
        let mut assets: Vec<String> = match resolved {
            Some(ids) => ids
                .iter()
                .map(|&id| graph.node(id).key.to_string())
                .collect(),
            None => self
                .events
                .iter()
                .filter_map(|e| e.asset.as_ref().map(ToString::to_string))
                .collect(),
        };
        assets.sort();
        assets.dedup();
        if self.from_failure {
            let succeeded: HashSet<String> = self
                .events
                .iter()
                .filter(|e| e.kind == EventKind::Materialized)
                .filter_map(|e| e.asset.as_ref().map(ToString::to_string))
                .collect();
            assets.retain(|a| !succeeded.contains(a));
        }
        if assets.is_empty() {
            return Ok(None);
        }
        let mut request = RunRequest::selection(AssetSelection::keys(&assets)?)
            .partitions(self.partitions())
            .with_trigger(Trigger::Reexecution)
            .parent(self.parent.id.clone());
        request.tags = self.parent.tags.clone();
        Ok(Some(request))
    }

    /// The request repeating a run of op job `name` (of `steps`, or all of them): from a
    /// failure, the steps that did not succeed; a step not run because an optional output was
    /// `None` did what it should and is not repeated. The config and tags are the parent's;
    /// the outputs of the steps not repeated are read from the parent run.
    fn job_request(&self, name: String, steps: Vec<String>) -> Option<RunRequest> {
        let mut request = match self.parent.request() {
            Ok(request) => request,
            Err(_) => RunRequest::job(name.clone()),
        };
        if let Some(config) = &self.config {
            request = request.config(config.clone());
        }
        if self.from_failure {
            let mut all: Vec<String> = match (steps.is_empty(), crate::jobs::op_job(&name)) {
                (true, Ok(job)) => (0..job.graph().len())
                    .map(|id| job.step_name(id).to_owned())
                    .collect(),
                (true, Err(_)) => self
                    .events
                    .iter()
                    .filter_map(|e| e.asset.as_ref().map(|k| k.name().to_owned()))
                    .collect(),
                (false, _) => steps,
            };
            all.sort();
            all.dedup();
            let done: HashSet<&str> = self
                .events
                .iter()
                .filter(|e| {
                    e.kind == EventKind::Materialized
                        || (e.kind == EventKind::Skipped
                            && e.message
                                .as_deref()
                                .is_some_and(|m| m.starts_with(crate::storage::NOT_REQUIRED)))
                })
                .filter_map(|e| e.asset.as_ref().map(AssetKey::name))
                .collect();
            all.retain(|s| !done.contains(s.as_str()));
            if all.is_empty() {
                return None;
            }
            request.target = RunTarget::Job { name, steps: all };
        }
        request.trigger = Trigger::Reexecution;
        request.parent = Some(self.parent.id.clone());
        Some(request)
    }

    /// The earlier run's partitions: as recorded with it, in the definition's order. A run
    /// recorded before requests were stored has them only on its events: in the order they
    /// first appear there (the order it ran them), never sorted as text.
    fn partitions(&self) -> PartitionScope {
        if self.parent.partitions != PartitionScope::None {
            return self.parent.partitions.clone();
        }
        let mut seen: Vec<String> = Vec::new();
        for e in &self.events {
            if let Some(p) = &e.partition
                && !seen.contains(p)
            {
                seen.push(p.clone());
            }
        }
        match seen.len() {
            0 => PartitionScope::None,
            1 => PartitionScope::Key(seen.remove(0)),
            _ => PartitionScope::Range(seen),
        }
    }
}
