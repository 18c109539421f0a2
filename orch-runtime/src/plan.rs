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
    /// A selected asset needs an upstream that is not selected and has no stored output.
    #[error(
        "asset `{asset}` needs the output of `{upstream}`{}, which has never been materialized: select `+{asset}` to materialize it too",
        .partition.as_ref().map(|p| format!(" for partition `{p}`")).unwrap_or_default()
    )]
    NeverMaterialized {
        /// The selected asset.
        asset: AssetKey,
        /// Its upstream.
        upstream: AssetKey,
        /// The upstream's partition that is missing, for partitioned upstreams.
        partition: Option<String>,
    },
    /// The selection matched no asset.
    #[error("the selection matched no asset; `list` shows the assets there are")]
    Empty,
    /// A selected asset is partitioned and no partition was chosen.
    #[error(
        "asset `{asset}` is partitioned ({partitions}): choose one with `--partition KEY` (e.g. `--partition {example}`), or a range with `backfill --from KEY --to KEY`"
    )]
    PartitionRequired {
        /// The partitioned asset.
        asset: AssetKey,
        /// Its partitions, described.
        partitions: String,
        /// A valid key.
        example: String,
    },
    /// A partition was chosen but no selected asset is partitioned.
    #[error("partition `{partition}` was chosen, but no selected asset is partitioned")]
    NotPartitioned {
        /// The chosen partition.
        partition: String,
    },
    /// A run of one partition selects an unpartitioned asset that reads every partition of its
    /// input, which this run only changes one of.
    #[error(
        "asset `{asset}` reads every partition of `{upstream}`, so it cannot run inside a one-partition run: select it in its own run (`materialize --select {asset}`), or use `backfill`, which runs it after the partitions"
    )]
    ReadsAllPartitions {
        /// The unpartitioned consumer.
        asset: AssetKey,
        /// Its partitioned input.
        upstream: AssetKey,
    },
    /// An unpartitioned asset reads every partition of an input, and some are not
    /// materialized.
    #[error(
        "asset `{asset}` reads every partition of `{upstream}`, but {} of its {total} partitions {} not materialized ({}{}): backfill them first",
        .missing.len(),
        if .missing.len() == 1 { "is" } else { "are" },
        .missing.iter().take(5).map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
        if .missing.len() > 5 { ", ..." } else { "" }
    )]
    PartitionsMissing {
        /// The unpartitioned consumer.
        asset: AssetKey,
        /// Its partitioned input.
        upstream: AssetKey,
        /// The partitions not materialized (missing or failed last).
        missing: Vec<String>,
        /// How many partitions exist.
        total: usize,
    },
    /// A run over a range of partitions was given no keys, keys that are not consecutive, or
    /// no run store.
    #[error("a run over a range of partitions {0}")]
    BadRange(String),
    /// A selected asset cannot run over a range of partitions in one run.
    #[error("asset `{asset}` cannot run over a range of partitions in one run: {reason}")]
    RangeNotSupported {
        /// The asset.
        asset: AssetKey,
        /// Why, and what to do.
        reason: String,
    },
    /// The chosen partition is not one of a selected asset's.
    #[error("asset `{asset}`: {message}")]
    InvalidPartition {
        /// The partitioned asset.
        asset: AssetKey,
        /// Why the key is invalid and what is valid.
        message: String,
    },
}

/// Inputs of `selected` assets that are neither selected nor provided: `(consumer, upstream)`,
/// each upstream once.
pub(crate) fn missing_inputs(
    graph: &AssetGraph,
    selected: &[AssetId],
    provided: &[AssetId],
) -> Vec<(AssetId, AssetId)> {
    let mut in_run = vec![false; graph.len()];
    for &id in selected.iter().chain(provided) {
        in_run[id] = true;
    }
    let mut missing = Vec::new();
    for &id in selected {
        if provided.contains(&id) {
            continue;
        }
        for &up in &graph.node(id).inputs {
            if !in_run[up] {
                in_run[up] = true;
                missing.push((id, up));
            }
        }
    }
    missing
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

#[cfg(test)]
mod tests {
    use super::*;
    use orch_core::__private::{AssetDef, Compute, SourceLocation, StaticKey, Value};
    use orch_core::AssetGraph;

    fn noop(_: &orch_core::AssetContext, _: &[Value]) -> Result<Value, orch_core::BoxError> {
        Ok(std::sync::Arc::new(()))
    }

    const fn def(path: &'static [&'static str], inputs: &'static [StaticKey]) -> AssetDef {
        AssetDef::from_parts(orch_core::__private::AssetParts {
            key: StaticKey { path },
            location: SourceLocation {
                module: "plan",
                file: "plan.rs",
                line: 1,
            },
            group: None,
            description: None,
            code_version: "0",
            tags: &[],
            metadata: &[],
            owners: &[],
            inputs,
            input_partitions: &[],
            input_adapters: &[],
            deps: &[],
            retries: 0,
            retry_delay: std::time::Duration::ZERO,
            always_run: false,
            partitions: None,
            partition_by: None,
            automation: None,
            freshness: None,
            resources: &[],
            io_manager: None,
            codec: None,
            output_type: "()",
            compute: Compute::Sync(noop),
        })
    }

    static A: AssetDef = def(&["a"], &[]);
    static B: AssetDef = def(&["b"], &[StaticKey { path: &["a"] }]);
    static C: AssetDef = def(&["c"], &[StaticKey { path: &["b"] }]);

    fn graph() -> AssetGraph {
        AssetGraph::from_defs([&C, &A, &B]).unwrap()
    }

    #[test]
    fn orders_the_selection_topologically() {
        let g = graph();
        let plan = Plan::new(&g, &[2, 0, 1], &[]).unwrap();
        let keys: Vec<String> = plan
            .order
            .iter()
            .map(|&id| g.node(id).key.to_string())
            .collect();
        assert_eq!(keys, ["a", "b", "c"]);
    }

    #[test]
    fn a_missing_upstream_is_an_error_unless_injected() {
        let g = graph();
        let err = Plan::new(&g, &[2], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "asset `c` needs the output of `b`, which is not part of this run: select `+c` to include its upstream assets"
        );
        let err = Plan::new(&g, &[1, 2], &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("asset `b` needs the output of `a`"),
            "{err}"
        );
        // An injected value stands in, and an injected asset never runs even if selected.
        let plan = Plan::new(&g, &[1, 2], &[0]).unwrap();
        assert_eq!(plan.order, [1, 2]);
        let plan = Plan::new(&g, &[0, 1], &[0]).unwrap();
        assert_eq!(plan.order, [1]);
        assert!(matches!(Plan::new(&g, &[], &[]), Err(PlanError::Empty)));
    }
}
