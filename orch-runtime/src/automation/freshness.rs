//! Freshness as the runtime sees it: each policy's state as of an instant, from the store's
//! latest materializations ([`freshness_states`], what `health` and `list` print), and the
//! daemon's watch, which records each change of state ([`FreshnessMonitor`]).

use std::collections::HashMap;
use std::time::SystemTime;

use jiff::Timestamp;
use orch_core::{AssetKey, FreshnessState};

use super::Automation;
use crate::instance::Instance;
use crate::storage::{FreshnessChange, StorageError};

/// One asset's freshness as of an instant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetFreshness {
    /// The asset.
    pub asset: AssetKey,
    /// Its policy, as text (`within 1h (warn after 30m)`).
    pub policy: String,
    /// Its state.
    pub state: FreshnessState,
    /// Why.
    pub detail: String,
    /// Its latest materialization, if any.
    pub last: Option<Timestamp>,
}

/// The freshness of every asset with a policy as of `at`, in topological order.
pub fn freshness_states(
    instance: &Instance,
    automation: &Automation,
    at: Timestamp,
) -> Result<Vec<AssetFreshness>, StorageError> {
    if automation.freshness().is_empty() {
        return Ok(Vec::new());
    }
    let latest = instance.storage().latest_materializations()?;
    let graph = automation.graph();
    Ok(automation
        .freshness()
        .iter()
        .map(|(id, policy, resolved)| {
            let key = &graph.node(*id).key;
            let last = latest
                .get(&key.to_string())
                .and_then(|e| Timestamp::try_from(e.time).ok());
            let (state, detail) = resolved.state(last, at);
            AssetFreshness {
                asset: key.clone(),
                policy: policy.to_string(),
                state,
                detail,
                last,
            }
        })
        .collect())
}

/// The daemon's watch over freshness: each evaluation records the assets whose state changed
/// since the last recorded one (state changes are what monitoring wants, not a row per
/// second).
#[derive(Debug, Default)]
pub struct FreshnessMonitor {
    /// Each asset's recorded state, loaded from the store on the first evaluation.
    known: Option<HashMap<String, FreshnessState>>,
}

impl FreshnessMonitor {
    /// A monitor that reads the recorded states on its first evaluation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Evaluates every policy as of `at` and records the changes; returns them.
    pub fn evaluate(
        &mut self,
        instance: &Instance,
        automation: &Automation,
        at: Timestamp,
    ) -> Result<Vec<FreshnessChange>, StorageError> {
        if automation.freshness().is_empty() {
            return Ok(Vec::new());
        }
        let store = instance.storage();
        let known = match &mut self.known {
            Some(known) => known,
            None => self.known.insert(
                store
                    .freshness()?
                    .into_iter()
                    .map(|(asset, change)| (asset, change.state))
                    .collect(),
            ),
        };
        let changes: Vec<FreshnessChange> = freshness_states(instance, automation, at)?
            .into_iter()
            .filter_map(|f| {
                let asset = f.asset.to_string();
                let previous = known.get(&asset).copied();
                (previous != Some(f.state)).then(|| FreshnessChange {
                    asset,
                    state: f.state,
                    previous,
                    detail: f.detail,
                    at: SystemTime::from(at),
                })
            })
            .collect();
        if !changes.is_empty() {
            store.record_freshness(&changes)?;
            for c in &changes {
                known.insert(c.asset.clone(), c.state);
            }
        }
        Ok(changes)
    }
}
