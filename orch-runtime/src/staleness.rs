//! Which assets are stale, and why: Dagster's "unsynced", decided from the run store alone.
//!
//! An asset is stale when it was never materialized, when its code version changed since its
//! latest materialization, when an upstream's latest data version differs from the one it
//! consumed, when an upstream is stale, or when it is marked `always_run`.

use std::collections::HashMap;
use std::fmt;

use orch_core::{AssetGraph, AssetKey};

use crate::storage::EventRecord;

/// Why an asset is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// It has no materialization.
    NeverMaterialized,
    /// Its code version differs from the one its latest materialization ran.
    CodeChanged,
    /// This upstream has a newer data version than the one it consumed.
    UpstreamChanged(AssetKey),
    /// This upstream is stale, so it will change.
    UpstreamStale(AssetKey),
    /// It is marked `always_run`.
    AlwaysRun,
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverMaterialized => f.write_str("never materialized"),
            StaleReason::CodeChanged => f.write_str("code changed"),
            StaleReason::UpstreamChanged(k) => write!(f, "upstream `{k}` changed"),
            StaleReason::UpstreamStale(k) => write!(f, "upstream `{k}` is stale"),
            StaleReason::AlwaysRun => f.write_str("always runs"),
        }
    }
}

/// Per asset id: `Some(reason)` if it is stale. One pass in topological order.
pub fn stale_assets(
    graph: &AssetGraph,
    latest: &HashMap<String, EventRecord>,
) -> Vec<Option<StaleReason>> {
    let mut stale: Vec<Option<StaleReason>> = vec![None; graph.len()];
    let keys: Vec<String> = graph.nodes().iter().map(|n| n.key.to_string()).collect();
    for &id in graph.topological_order() {
        let node = graph.node(id);
        let Some(record) = latest.get(&keys[id]) else {
            stale[id] = Some(StaleReason::NeverMaterialized);
            continue;
        };
        if node.def.always_run {
            stale[id] = Some(StaleReason::AlwaysRun);
            continue;
        }
        if record.code_version.as_deref() != Some(node.def.code_version) {
            stale[id] = Some(StaleReason::CodeChanged);
            continue;
        }
        stale[id] = node.upstream.iter().find_map(|&up| {
            let up_key = &graph.node(up).key;
            if stale[up].is_some() {
                return Some(StaleReason::UpstreamStale(up_key.clone()));
            }
            let current = latest
                .get(&keys[up])
                .and_then(|r| r.data_version.as_deref());
            let consumed = record
                .inputs
                .iter()
                .find(|(k, _)| *k == keys[up])
                .and_then(|(_, v)| v.as_deref());
            // A newer materialization of the upstream counts even if the manager gives no
            // version: compare times then.
            let changed = match (current, consumed) {
                (Some(c), Some(d)) => c != d,
                (Some(_), None) => true,
                (None, _) => latest.get(&keys[up]).is_some_and(|r| r.time > record.time),
            };
            changed.then(|| StaleReason::UpstreamChanged(up_key.clone()))
        });
    }
    stale
}
