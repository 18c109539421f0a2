//! Planning: which assets a run materializes, in what order, and whether it can.

use orch_core::{AssetGraph, AssetId, AssetKey};

/// The assets a run will try to materialize, in a valid order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) order: Vec<AssetId>,
}

/// Why a selection cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A selected asset needs the value of an upstream that is neither selected nor injected.
    #[error(
        "asset `{asset}` needs the output of `{upstream}`, which is not part of this run: select `+{asset}` to include its upstream assets{}",
        if *.several { " (other assets have the same problem)" } else { "" }
    )]
    MissingUpstream {
        /// The selected asset.
        asset: AssetKey,
        /// Its missing upstream.
        upstream: AssetKey,
        /// Whether more assets than this one are affected.
        several: bool,
    },
    /// The selection matched no asset.
    #[error("the selection matched no asset; `list` shows the assets there are")]
    Empty,
}

impl Plan {
    /// Plans `selected` (ids, any order), given which assets have injected values.
    pub(crate) fn new(
        graph: &AssetGraph,
        selected: &[AssetId],
        injected: &[AssetId],
    ) -> Result<Plan, PlanError> {
        let mut in_plan = vec![false; graph.len()];
        for &id in selected {
            in_plan[id] = true;
        }
        for &id in injected {
            in_plan[id] = false;
        }
        let mut missing: Option<(AssetId, AssetId)> = None;
        let mut several = false;
        for &id in selected {
            if !in_plan[id] {
                continue;
            }
            for &up in &graph.node(id).inputs {
                if !in_plan[up] && !injected.contains(&up) {
                    if missing.is_some() {
                        several = true;
                    } else {
                        missing = Some((id, up));
                    }
                }
            }
        }
        if let Some((asset, upstream)) = missing {
            return Err(PlanError::MissingUpstream {
                asset: graph.node(asset).key.clone(),
                upstream: graph.node(upstream).key.clone(),
                several,
            });
        }
        let order: Vec<AssetId> = graph
            .topological_order()
            .iter()
            .copied()
            .filter(|&id| in_plan[id])
            .collect();
        if order.is_empty() && injected.is_empty() {
            return Err(PlanError::Empty);
        }
        Ok(Plan { order })
    }
}
