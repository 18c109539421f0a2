//! The partition side of planning a run: the run's keys checked against each partitioned
//! asset, ranges checked, inputs read across partitions and their combined data versions.

use std::sync::Arc;

use orch_core::{AssetGraph, AssetId};

use crate::materialize::MaterializeError;
use crate::plan::PlanError;
use crate::storage::{EventKind, Storage, StorageError};

/// The run store as the place `ctx.add_dynamic_partitions` writes to.
pub(crate) struct StoredDynamicPartitions(pub(crate) Arc<dyn Storage>);

impl orch_core::DynamicPartitionsStore for StoredDynamicPartitions {
    fn add_dynamic_partitions(
        &self,
        name: &str,
        keys: &[String],
    ) -> Result<usize, orch_core::BoxError> {
        Ok(self.0.add_dynamic_partitions(name, keys)?)
    }
}

/// Whether a selected consumer of `up` takes `up`'s value as it is (not through a partition
/// mapping, which the executor loads itself).
pub(crate) fn takes_same_partition(graph: &AssetGraph, selected: &[AssetId], up: AssetId) -> bool {
    graph.node(up).downstream.iter().any(|&down| {
        let node = graph.node(down);
        selected.contains(&down)
            && node.inputs.iter().enumerate().any(|(i, &u)| {
                u == up && node.input_mapping(i) == orch_core::PartitionMapping::Identity
            })
    })
}

/// In a run over a range, each selected partitioned asset is called once for the range and
/// its frame split by `partition_by`; partition mappings need one run per partition.
pub(crate) fn check_range(
    graph: &AssetGraph,
    selected: &[AssetId],
) -> Result<(), MaterializeError> {
    for &id in selected {
        let node = graph.node(id);
        if node.partitions.is_none() {
            continue;
        }
        let reason = if node.def.partition_by().is_none() {
            Some("it has no `partition_by = \"column\"` to split its output into partitions by; add one (its output must be a DataFrame or LazyFrame), or run one partition per run".to_owned())
        } else if (0..node.inputs.len())
            .any(|i| node.input_mapping(i) != orch_core::PartitionMapping::Identity)
        {
            Some("it reads other partitions of an input (`#[partitions(...)]`), which needs one run per partition".to_owned())
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(MaterializeError::Plan(PlanError::RangeNotSupported {
                asset: node.key.clone(),
                reason,
            }));
        }
    }
    Ok(())
}

/// A run with partitioned assets needs a partition, valid for each of them; a partition needs a
/// partitioned asset.
pub(crate) fn check_partition(
    graph: &AssetGraph,
    selected: &[AssetId],
    keys: Option<&[String]>,
    storage: Option<&dyn Storage>,
) -> Result<(), MaterializeError> {
    if keys.is_some_and(<[String]>::is_empty) {
        return Err(PlanError::BadRange("needs at least one partition key".to_owned()).into());
    }
    let partition = keys.and_then(|k| k.first()).map(String::as_str);
    let now = jiff::Timestamp::now();
    let mut any = false;
    for &id in selected {
        let node = graph.node(id);
        let Some(partitions) = &node.partitions else {
            continue;
        };
        any = true;
        // Dynamic keys live in the run store; a library run without one knows none.
        let dynamic = dynamic_keys(storage, partitions)?;
        let dynamic = dynamic.as_slice();
        match partition {
            None => {
                return Err(MaterializeError::Plan(PlanError::PartitionRequired {
                    asset: node.key.clone(),
                    partitions: partitions.describe(),
                    example: partitions
                        .keys(now, dynamic)
                        .pop()
                        .unwrap_or_else(|| "KEY".to_owned()),
                }));
            }
            Some(_) => {
                let mut previous: Option<(u64, &str)> = None;
                for key in keys.unwrap_or_default() {
                    let index = partitions.index_of(key, now, dynamic).map_err(|e| {
                        PlanError::InvalidPartition {
                            asset: node.key.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    // A range is consecutive keys, in order: a gap, a repeat or a step back
                    // would put rows in the wrong partition.
                    if let Some((before, prior)) = previous
                        && index != before + 1
                    {
                        return Err(PlanError::BadRange(format!(
                            "must list consecutive partitions in order, but `{key}` follows `{prior}`"
                        ))
                        .into());
                    }
                    previous = Some((index, key));
                }
            }
        }
    }
    if partition.is_some() {
        for &id in selected {
            let node = graph.node(id);
            if node.partitions.is_some() {
                continue;
            }
            if let Some(&up) = node
                .inputs
                .iter()
                .find(|&&up| graph.node(up).partitions.is_some())
            {
                return Err(PlanError::ReadsAllPartitions {
                    asset: node.key.clone(),
                    upstream: graph.node(up).key.clone(),
                }
                .into());
            }
        }
    }
    match partition {
        Some(partition) if !any => Err(PlanError::NotPartitioned {
            partition: partition.to_owned(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Every partition of `up` that exists now, in order, if all are materialized (their last
/// outcome); otherwise the error listing the ones that are not.
pub(crate) fn all_partitions(
    graph: &AssetGraph,
    consumer: AssetId,
    up: AssetId,
    storage: &dyn Storage,
) -> Result<(Vec<String>, Option<String>), MaterializeError> {
    let node = graph.node(up);
    let Some(partitions) = &node.partitions else {
        return Ok((Vec::new(), None));
    };
    let statuses = storage.partition_statuses(&node.key.to_string())?;
    let done: std::collections::HashMap<&str, Option<&str>> = statuses
        .iter()
        .filter(|s| s.kind == crate::storage::EventKind::Materialized)
        .map(|s| (s.partition.as_str(), s.data_version.as_deref()))
        .collect();
    let keys = partitions.keys(
        jiff::Timestamp::now(),
        &dynamic_keys(Some(storage), partitions)?,
    );
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !done.contains_key(k.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PlanError::PartitionsMissing {
            asset: graph.node(consumer).key.clone(),
            upstream: node.key.clone(),
            missing,
            total: keys.len(),
        }
        .into());
    }
    let version = combined_version(&keys, |k| done.get(k).copied().flatten());
    Ok((keys, version))
}

/// The data version of several partitions read as one input: one partition's own version, or
/// a hash of each key and its version, in order. The one formula for partitions taken
/// together: by loading (ranges, every partition, mappings), by a run over a range, and by
/// staleness, so what a consumer recorded compares equal to what it would read now. `None`
/// when no partition has a version (an I/O manager that gives none): then staleness compares
/// times instead.
pub(crate) fn combined_version<'a>(
    keys: &[String],
    version_of: impl Fn(&str) -> Option<&'a str>,
) -> Option<String> {
    if keys.iter().all(|k| version_of(k).is_none()) {
        return None;
    }
    if let [one] = keys {
        return version_of(one).map(str::to_owned);
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for k in keys {
        hasher.update(k.as_bytes());
        hasher.update(b"\0");
        hasher.update(version_of(k).unwrap_or("-").as_bytes());
        hasher.update(b"\n");
    }
    Some(format!("{:032x}", hasher.digest128()))
}

/// The stored data version of partitions `keys` of `asset` read as one input (`None` if one
/// of them is not materialized).
pub(crate) fn stored_version(
    storage: &dyn Storage,
    asset: &orch_core::AssetKey,
    keys: &[String],
) -> Result<Option<String>, MaterializeError> {
    let statuses = storage.partition_statuses(&asset.to_string())?;
    let done: std::collections::HashMap<&str, Option<&str>> = statuses
        .iter()
        .filter(|s| s.kind == crate::storage::EventKind::Materialized)
        .map(|s| (s.partition.as_str(), s.data_version.as_deref()))
        .collect();
    if keys.iter().any(|k| !done.contains_key(k.as_str())) {
        return Ok(None);
    }
    Ok(combined_version(keys, |k| done.get(k).copied().flatten()))
}

/// The stored keys of a dynamic partitions definition (none for other kinds, or without a
/// store).
pub(crate) fn dynamic_keys(
    storage: Option<&dyn Storage>,
    partitions: &orch_core::Partitions,
) -> Result<Vec<String>, StorageError> {
    match (partitions.dynamic_name(), storage) {
        (Some(name), Some(storage)) => storage.dynamic_partitions(name),
        _ => Ok(Vec::new()),
    }
}

/// The last outcome of a partition, as [`partition_spans`] groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionSpanState {
    /// Its latest outcome is a materialization.
    Materialized,
    /// Its latest outcome is a failure.
    Failed,
    /// It never ran (or its runs were deleted by retention).
    Missing,
}

impl PartitionSpanState {
    /// `materialized`, `failed` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionSpanState::Materialized => "materialized",
            PartitionSpanState::Failed => "failed",
            PartitionSpanState::Missing => "missing",
        }
    }
}

/// Consecutive partitions (in the definition's order) in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpan {
    /// Their state.
    pub state: PartitionSpanState,
    /// The first key.
    pub first: String,
    /// The last key.
    pub last: String,
    /// How many partitions.
    pub count: usize,
}

/// Every partition of a partitioned asset now (with the stored dynamic keys), folded into
/// spans of one state, in key order: what `partitions ASSET` prints and the web UI's
/// partition bar draws. Empty for an unpartitioned asset; every partition missing without a
/// store.
pub fn partition_spans(
    storage: Option<&dyn Storage>,
    node: &orch_core::AssetNode,
) -> Result<Vec<PartitionSpan>, StorageError> {
    let (keys, states) = partition_states(storage, node)?;
    Ok(spans(&keys, states.into_iter()))
}

/// Every partition of a partitioned asset now, in key order, with the state of each (what
/// [`partition_spans`] folds).
pub fn partition_states(
    storage: Option<&dyn Storage>,
    node: &orch_core::AssetNode,
) -> Result<(Vec<String>, Vec<PartitionSpanState>), StorageError> {
    let Some(partitions) = &node.partitions else {
        return Ok((Vec::new(), Vec::new()));
    };
    let statuses = match storage {
        Some(storage) => storage.partition_statuses(&node.key.to_string())?,
        None => Vec::new(),
    };
    let dynamic = dynamic_keys(storage, partitions)?;
    let keys = partitions.keys(jiff::Timestamp::now(), &dynamic);
    let by_key: std::collections::HashMap<&str, EventKind> = statuses
        .iter()
        .map(|s| (s.partition.as_str(), s.kind))
        .collect();
    let states = keys
        .iter()
        .map(|k| match by_key.get(k.as_str()) {
            Some(EventKind::Materialized) => PartitionSpanState::Materialized,
            Some(EventKind::Failed) => PartitionSpanState::Failed,
            _ => PartitionSpanState::Missing,
        })
        .collect();
    Ok((keys, states))
}

/// Folds keys and their states (in the same order) into spans.
pub(crate) fn fold_spans(keys: &[String], states: &[PartitionSpanState]) -> Vec<PartitionSpan> {
    spans(keys, states.iter().copied())
}

/// Folds keys and their states (in the same order) into spans.
fn spans(keys: &[String], states: impl Iterator<Item = PartitionSpanState>) -> Vec<PartitionSpan> {
    let mut out: Vec<PartitionSpan> = Vec::new();
    for (key, state) in keys.iter().zip(states) {
        match out.last_mut() {
            Some(span) if span.state == state => {
                span.last.clone_from(key);
                span.count += 1;
            }
            _ => out.push(PartitionSpan {
                state,
                first: key.clone(),
                last: key.clone(),
                count: 1,
            }),
        }
    }
    out
}

#[cfg(test)]
mod span_tests {
    use super::*;

    #[test]
    fn states_fold_into_spans_in_key_order() {
        use PartitionSpanState::{Failed as F, Materialized as M, Missing as N};
        let keys: Vec<String> = (1..=7).map(|d| format!("d{d}")).collect();
        let folded = spans(&keys, [M, M, N, F, M, N, N].into_iter());
        let got: Vec<(PartitionSpanState, &str, &str, usize)> = folded
            .iter()
            .map(|s| (s.state, s.first.as_str(), s.last.as_str(), s.count))
            .collect();
        assert_eq!(
            got,
            [
                (M, "d1", "d2", 2),
                (N, "d3", "d3", 1),
                (F, "d4", "d4", 1),
                (M, "d5", "d5", 1),
                (N, "d6", "d7", 2),
            ]
        );
        assert!(spans(&[], std::iter::empty()).is_empty());
    }
}
