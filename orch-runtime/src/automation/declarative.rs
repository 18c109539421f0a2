//! Declarative automation: each asset's `automation = ...` condition evaluated against the
//! store (what is materialized, what is in progress, what was requested), in topological
//! order so that an upstream requested in this evaluation counts for its downstream. The
//! assets requested together become one queued run; the run, the assets' states and why each
//! asset was or was not requested are committed in one transaction
//! ([`Storage::commit_automation`](crate::storage::Storage::commit_automation)), so a request
//! is made once even if the process dies right after.
//!
//! The evaluator keeps what it read in memory and reads only the events recorded since its
//! last evaluation, so evaluating often (the daemon does on every new event) costs little.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::SystemTime;

use jiff::Timestamp;
use orch_core::{AssetGraph, AssetId, AssetKey, AssetSelection, RunId};

use super::Automation;
pub use super::reasons::ConditionNode;
use super::reasons::{Cx, timestamp};
use crate::instance::Instance;
use crate::run::{RunRequest, Trigger};
use crate::storage::{
    AutomationAssetRecord, AutomationCommit, EventKind, RunFilter, RunRecord, RunStatus, Storage,
    StorageError,
};

/// The tag on every run declarative automation requests.
pub const AUTOMATION_TAG: &str = "orch/automation";
/// What one evaluation did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct AutomationEvaluation {
    /// When it evaluated.
    pub at: Option<Timestamp>,
    /// Whether automation is paused (`automation pause`): nothing was evaluated.
    pub paused: bool,
    /// How many assets have a condition.
    pub assets: usize,
    /// The assets it requested, in topological order.
    pub requested: Vec<AssetKey>,
    /// The run it queued for them.
    pub run: Option<RunId>,
}

/// One asset's evaluation, unstored (`automation explain` before any daemon ran).
#[derive(Clone, Debug)]
pub struct AssetEvaluation {
    /// The asset.
    pub asset: AssetKey,
    /// Its condition as written.
    pub condition: String,
    /// Whether it would be requested.
    pub requested: bool,
    /// Why.
    pub tree: ConditionNode,
}

/// One asset's evaluation.
struct Evaluated {
    /// Its index in [`Automation::conditions`].
    index: usize,
    /// What it depended on, hashed.
    fingerprint: u64,
    /// Why it was or was not requested; `None` if nothing it depends on changed since its
    /// last evaluation (which did not request it).
    tree: Option<ConditionNode>,
}

/// The evaluator's memory between evaluations: see the [module docs](self). One per process
/// that evaluates (the daemon); [`AutomationEvaluator::evaluate`] is the whole API.
#[derive(Debug, Default)]
pub struct AutomationEvaluator {
    /// The store's events are read through this sequence number.
    seq: u64,
    loaded: bool,
    /// Each asset's latest materialization: `(seq, time)`, by asset id.
    mats: Vec<Option<(u64, Timestamp)>>,
    /// The stored state of each asset with a condition, by asset id.
    states: HashMap<AssetId, AutomationAssetRecord>,
    /// What was stored of each asset's latest evaluation: `(result, hash of its tree)`.
    written: HashMap<AssetId, (bool, u64)>,
    /// A hash of what each asset's evaluation depended on, as of its last evaluation.
    fingerprints: HashMap<AssetId, u64>,
    /// The assets each run target selects (runs in progress).
    targets: HashMap<String, Vec<AssetId>>,
}

impl AutomationEvaluator {
    /// A fresh evaluator: its first evaluation reads the store's state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The store's latest event this evaluator has read: a daemon evaluates again when the
    /// store has a newer one.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Evaluates every asset's condition as of `at`, queues one run of the assets it
    /// requests, and stores why each asset was or was not requested.
    pub fn evaluate(
        &mut self,
        instance: &Instance,
        automation: &Automation,
        at: Timestamp,
    ) -> Result<AutomationEvaluation, StorageError> {
        let mut done = AutomationEvaluation {
            at: Some(at),
            assets: automation.conditions().len(),
            ..AutomationEvaluation::default()
        };
        if automation.conditions().is_empty() {
            return Ok(done);
        }
        let store = instance.storage().as_ref();
        let graph = automation.graph();
        // Runs in progress first, then the events: a run that materializes an asset and ends
        // in between is then seen with its materialization (its events are written before
        // it ends), never as ended without it.
        let in_progress = self.in_progress(store, graph)?;
        // Read even while paused, so the daemon does not take the events as new every time.
        self.refresh(store, graph)?;
        if store.automation_paused()? {
            done.paused = true;
            return Ok(done);
        }
        let evaluated = self.evaluate_all(automation, at, &in_progress, true);
        let mut rows = Vec::new();
        let mut request = Vec::new();
        let now = SystemTime::from(at);
        let run_id = RunId::new();
        for e in &evaluated {
            let Some(node) = &e.tree else {
                continue; // nothing it depends on changed: neither did its reasons
            };
            let (id, _, written) = &automation.conditions()[e.index];
            let stored = self.state(*id, written);
            let fresh = stored.is_none();
            let mut row = match stored {
                Some(s) => s.clone(),
                None => AutomationAssetRecord {
                    asset: graph.node(*id).key.to_string(),
                    condition: written.clone(),
                    since_seq: self.seq,
                    since: now,
                    requested_seq: None,
                    requested: None,
                    requested_run: None,
                    evaluated: now,
                    result: false,
                    tree: String::new(),
                },
            };
            let hash = hash_of(node);
            if node.passed {
                request.push(graph.node(*id).key.clone());
                row.requested_seq = Some(self.seq);
                row.requested = Some(now);
                row.requested_run = Some(run_id.clone());
            }
            if fresh || node.passed || self.written.get(id) != Some(&(node.passed, hash)) {
                row.evaluated = now;
                row.result = node.passed;
                // Serialized only when it changed.
                row.tree = serde_json::to_string(node).unwrap_or_default();
                rows.push((*id, row, hash));
            }
        }
        let runs = match request.is_empty() {
            true => Vec::new(),
            false => {
                let request = RunRequest::selection(AssetSelection::Keys(request.clone()))
                    .tag(AUTOMATION_TAG, "true")
                    .with_trigger(Trigger::Automation);
                vec![RunRecord::queued(run_id.clone(), &request)]
            }
        };
        if !rows.is_empty() {
            let assets: Vec<AutomationAssetRecord> =
                rows.iter().map(|(_, r, _)| r.clone()).collect();
            store.commit_automation(&AutomationCommit {
                evaluated: now,
                runs: &runs,
                assets: &assets,
            })?;
            for (id, mut row, hash) in rows {
                self.written.insert(id, (row.result, hash));
                row.tree = String::new(); // stored; not kept in memory
                self.states.insert(id, row);
            }
            if !runs.is_empty() {
                instance.notify_enqueued();
            }
        }
        // Only after the commit: an evaluation that failed to store is made again in full.
        for e in &evaluated {
            if e.tree.is_some() {
                self.fingerprints
                    .insert(automation.conditions()[e.index].0, e.fingerprint);
            }
        }
        if !request.is_empty() {
            done.run = Some(run_id);
            done.requested = request;
        }
        Ok(done)
    }

    /// Every asset's evaluation as of `at`, without storing or queuing anything.
    pub fn preview(
        &mut self,
        instance: &Instance,
        automation: &Automation,
        at: Timestamp,
    ) -> Result<Vec<AssetEvaluation>, StorageError> {
        if automation.conditions().is_empty() {
            return Ok(Vec::new());
        }
        let store = instance.storage().as_ref();
        let in_progress = self.in_progress(store, automation.graph())?;
        self.refresh(store, automation.graph())?;
        let evaluated = self.evaluate_all(automation, at, &in_progress, false);
        Ok(evaluated
            .into_iter()
            .filter_map(|e| {
                let (id, _, written) = &automation.conditions()[e.index];
                let tree = e.tree?;
                Some(AssetEvaluation {
                    asset: automation.graph().node(*id).key.clone(),
                    condition: written.clone(),
                    requested: tree.passed,
                    tree,
                })
            })
            .collect())
    }

    /// The stored state of `id`, if it is of the condition `written` (a changed condition
    /// starts afresh).
    fn state(&self, id: AssetId, written: &str) -> Option<&AutomationAssetRecord> {
        self.states.get(&id).filter(|s| s.condition == written)
    }

    /// Evaluates every condition in topological order. With `reuse`, an asset whose inputs
    /// (its state, its own and its upstream assets' materializations, requests and runs in
    /// progress, the latest ticks of its crons) are what they were at its last evaluation,
    /// which did not request it, is not evaluated again (`tree: None`): in the steady state
    /// an evaluation of 10,000 conditions is 10,000 hashes.
    fn evaluate_all(
        &self,
        automation: &Automation,
        at: Timestamp,
        in_progress: &[Option<RunId>],
        reuse: bool,
    ) -> Vec<Evaluated> {
        let graph = automation.graph();
        let mut requested = vec![false; graph.len()];
        let mut ticks: HashMap<&orch_core::automation::Cron, Option<Timestamp>> = HashMap::new();
        let mut evaluated = Vec::with_capacity(automation.conditions().len());
        for (index, (id, condition, written)) in automation.conditions().iter().enumerate() {
            let state = self.state(*id, written);
            let cx = Cx {
                graph,
                id: *id,
                mats: &self.mats,
                in_progress,
                requested: &requested,
                state,
                seq: self.seq,
                at,
            };
            let fingerprint = cx.fingerprint(automation.crons_of(index), &mut ticks, automation);
            let unchanged = reuse
                && state.is_some()
                && self.fingerprints.get(id) == Some(&fingerprint)
                && self.written.get(id).is_some_and(|(result, _)| !result);
            if unchanged {
                evaluated.push(Evaluated {
                    index,
                    fingerprint,
                    tree: None,
                });
                continue;
            }
            let node = cx.eval(condition, &mut ticks, automation);
            if node.passed {
                requested[*id] = true;
            }
            evaluated.push(Evaluated {
                index,
                fingerprint,
                tree: Some(node),
            });
        }
        evaluated
    }

    /// Reads what the store recorded since the last call: the stored states on the first
    /// call, then each new materialization.
    fn refresh(&mut self, store: &dyn Storage, graph: &AssetGraph) -> Result<(), StorageError> {
        if !self.loaded || self.mats.len() != graph.len() {
            self.mats = vec![None; graph.len()];
            // The sequence number first: a materialization recorded in between is read again
            // by the next call, which changes nothing.
            self.seq = store.latest_seq()?;
            for (key, event) in store.latest_materializations()? {
                if let Some(id) = key.parse().ok().and_then(|k| graph.id_of(&k)) {
                    self.mats[id] = Some((event.seq.unwrap_or(0), timestamp(event.time)));
                }
            }
            for record in store.automation_assets()? {
                if let Some(id) = record.asset.parse().ok().and_then(|k| graph.id_of(&k)) {
                    if let Ok(tree) = serde_json::from_str::<ConditionNode>(&record.tree) {
                        self.written.insert(id, (record.result, hash_of(&tree)));
                    }
                    self.states.insert(
                        id,
                        AutomationAssetRecord {
                            tree: String::new(), // only its hash is needed
                            ..record
                        },
                    );
                }
            }
            self.loaded = true;
            return Ok(());
        }
        const PAGE: usize = 10_000;
        loop {
            let events = store.events_since(self.seq, PAGE)?;
            for event in &events {
                let seq = event.seq.unwrap_or(self.seq);
                self.seq = self.seq.max(seq);
                if event.kind != EventKind::Materialized {
                    continue;
                }
                if let Some(id) = event.asset.as_ref().and_then(|k| graph.id_of(k)) {
                    let newer = self.mats[id].is_none_or(|(s, _)| s < seq);
                    if newer {
                        self.mats[id] = Some((seq, timestamp(event.time)));
                    }
                }
            }
            if events.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// The run each asset is in, if a queued or going run's target selects it.
    fn in_progress(
        &mut self,
        store: &dyn Storage,
        graph: &AssetGraph,
    ) -> Result<Vec<Option<RunId>>, StorageError> {
        let going = RunFilter::default()
            .status(RunStatus::Queued)
            .status(RunStatus::Starting)
            .status(RunStatus::Running);
        let mut found = vec![None; graph.len()];
        let runs = store.runs(&going)?;
        // Only the targets of runs in progress are kept: bounded by what runs at once.
        self.targets
            .retain(|target, _| runs.iter().any(|r| r.target == *target));
        for run in &runs {
            let selected = self.targets.entry(run.target.clone()).or_insert_with(|| {
                match run
                    .target
                    .parse::<AssetSelection>()
                    .map_err(|e| e.to_string())
                    .and_then(|s| s.resolve(graph).map_err(|e| e.to_string()))
                {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(
                            "run {} (in progress) has a target this program cannot resolve ({e}); automation does not count its assets as in progress",
                            run.id.short()
                        );
                        Vec::new()
                    }
                }
            });
            for &id in selected.iter() {
                found[id].get_or_insert_with(|| run.id.clone());
            }
        }
        Ok(found)
    }
}

fn hash_of(node: &ConditionNode) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.hash(&mut h);
    h.finish()
}
