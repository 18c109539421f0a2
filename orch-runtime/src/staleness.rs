//! Which assets are stale, and why: Dagster's "unsynced", decided from the run store alone.
//!
//! An asset is stale when it was never materialized, when its code version changed since its
//! latest materialization, when an upstream's latest data version differs from the one it
//! consumed, when an upstream is stale, or when it is marked `always_run`. A partitioned asset
//! is decided partition by partition, each against the partitions of its inputs it reads.

use std::collections::HashMap;
use std::fmt;

use orch_core::{AssetGraph, AssetId, AssetKey, PartitionMapping};

use crate::run::partitions::{combined_version, dynamic_keys};
use crate::storage::{EventRecord, Storage, StorageError};

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
    /// Some of its partitions are stale: how many of how many, the first one and why.
    PartitionsStale {
        /// How many partitions are stale.
        stale: usize,
        /// How many partitions there are.
        total: usize,
        /// The first stale partition.
        first: String,
        /// Why that one is.
        reason: Box<StaleReason>,
    },
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverMaterialized => f.write_str("never materialized"),
            StaleReason::CodeChanged => f.write_str("code changed"),
            StaleReason::UpstreamChanged(k) => write!(f, "upstream `{k}` changed"),
            StaleReason::UpstreamStale(k) => write!(f, "upstream `{k}` is stale"),
            StaleReason::AlwaysRun => f.write_str("always runs"),
            StaleReason::PartitionsStale {
                stale,
                total,
                first,
                reason,
            } => write!(f, "{stale} of {total} partitions ({first}: {reason})"),
        }
    }
}

/// What staleness is decided from, read from the run store once: each asset's latest
/// materialization, and for partitioned assets their partitions now and each one's latest
/// materialization.
#[derive(Debug, Default)]
pub struct StaleInputs {
    latest: HashMap<String, EventRecord>,
    /// Per asset id, for partitioned assets.
    partitions: Vec<Option<PartitionsNow>>,
}

#[derive(Debug)]
struct PartitionsNow {
    /// The partitions that exist now, in order.
    keys: Vec<String>,
    /// Each partition's latest materialization.
    latest: HashMap<String, EventRecord>,
}

impl StaleInputs {
    /// Reads what staleness needs from `storage`: two queries, plus one per partitioned asset.
    pub fn load(graph: &AssetGraph, storage: &dyn Storage) -> Result<StaleInputs, StorageError> {
        let latest = storage.latest_materializations()?;
        let mut partitions = Vec::with_capacity(graph.len());
        for node in graph.nodes() {
            partitions.push(match &node.partitions {
                Some(defined) => {
                    let dynamic = dynamic_keys(Some(storage), defined)?;
                    Some(PartitionsNow {
                        keys: defined.keys(jiff::Timestamp::now(), &dynamic),
                        latest: storage.partition_materializations(&node.key.to_string())?,
                    })
                }
                None => None,
            });
        }
        Ok(StaleInputs { latest, partitions })
    }

    /// Nothing recorded (no run store): every asset is stale, never materialized.
    pub fn none() -> StaleInputs {
        StaleInputs::default()
    }

    /// The latest materialization of every asset that has one, by key.
    pub fn latest(&self) -> &HashMap<String, EventRecord> {
        &self.latest
    }

    fn partitions_of(&self, id: AssetId) -> Option<&PartitionsNow> {
        self.partitions.get(id).and_then(Option::as_ref)
    }
}

/// Each partition of an asset, in order, with `Some(reason)` if it is stale.
#[derive(Clone, Debug)]
struct PartitionDecisions {
    list: Vec<(String, Option<StaleReason>)>,
    /// Position in `list` by key: consumers look partitions up one by one.
    index: HashMap<String, usize>,
}

impl PartitionDecisions {
    fn new(list: Vec<(String, Option<StaleReason>)>) -> Self {
        let index = list
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        PartitionDecisions { list, index }
    }

    /// `None` for a key that is not a partition now; else `Some(reason if stale)`.
    fn get(&self, key: &str) -> Option<&Option<StaleReason>> {
        self.index.get(key).map(|&i| &self.list[i].1)
    }
}

/// Which assets, and which partitions of partitioned assets, are stale, and why.
#[derive(Clone, Debug)]
pub struct Staleness {
    assets: Vec<Option<StaleReason>>,
    /// Per partitioned asset id: its partitions now, each with `Some(reason)` if stale.
    partitions: Vec<Option<PartitionDecisions>>,
}

impl Staleness {
    /// Per asset id: `Some(reason)` if it is stale (a partitioned asset when any of its
    /// partitions is).
    pub fn assets(&self) -> &[Option<StaleReason>] {
        &self.assets
    }

    /// Why asset `id` is stale, if it is.
    pub fn of(&self, id: AssetId) -> Option<&StaleReason> {
        self.assets.get(id).and_then(Option::as_ref)
    }

    /// The stale partitions of partitioned asset `id`, in order (empty for others).
    pub fn stale_partitions(&self, id: AssetId) -> Vec<&str> {
        self.partitions
            .get(id)
            .and_then(Option::as_ref)
            .map(|parts| {
                parts
                    .list
                    .iter()
                    .filter(|(_, r)| r.is_some())
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Why partition `key` of asset `id` is stale (for an unpartitioned asset: why the asset
    /// is).
    pub fn partition(&self, id: AssetId, key: &str) -> Option<&StaleReason> {
        match self.partitions.get(id).and_then(Option::as_ref) {
            Some(parts) => parts.get(key).and_then(Option::as_ref),
            None => self.of(id),
        }
    }
}

/// Per asset id: `Some(reason)` if it is stale. Partitioned assets are decided per
/// partition (see [`staleness`]); this is their asset-level summary.
pub fn stale_assets(graph: &AssetGraph, inputs: &StaleInputs) -> Vec<Option<StaleReason>> {
    staleness(graph, inputs).assets
}

/// Decides staleness for every asset, and for every partition of partitioned assets, in one
/// pass in topological order. A partition compares what it consumed with what its inputs hold
/// now: the same partition of an identically partitioned upstream, the mapped partitions of a
/// mapped one (combined as when they were loaded), an unpartitioned upstream's latest. An
/// unpartitioned consumer of a partitioned upstream compares with all of its partitions,
/// combined.
pub fn staleness(graph: &AssetGraph, inputs: &StaleInputs) -> Staleness {
    let n = graph.len();
    let mut assets: Vec<Option<StaleReason>> = vec![None; n];
    let mut partitions: Vec<Option<PartitionDecisions>> = vec![None; n];
    let keys: Vec<String> = graph
        .nodes()
        .iter()
        .map(|node| node.key.to_string())
        .collect();
    let now = jiff::Timestamp::now();
    for &id in graph.topological_order() {
        let node = graph.node(id);
        match inputs.partitions_of(id) {
            None => {
                let record = inputs.latest.get(&keys[id]);
                assets[id] = decide(graph, node, record, |up, _| {
                    upstream_now(inputs, &assets, &partitions, &keys, up, None)
                });
            }
            Some(now_parts) => {
                let mut decided = Vec::with_capacity(now_parts.keys.len());
                for key in &now_parts.keys {
                    let record = now_parts.latest.get(key);
                    let reason = decide(graph, node, record, |up, mapping| {
                        let scope = match mapping {
                            PartitionMapping::Identity => Some(vec![key.clone()]),
                            mapping => graph
                                .node(up)
                                .partitions
                                .as_ref()
                                .and_then(|p| p.mapped(key, mapping, now).ok()),
                        };
                        upstream_now(inputs, &assets, &partitions, &keys, up, scope.as_deref())
                    });
                    decided.push((key.clone(), reason));
                }
                let stale: Vec<&(String, Option<StaleReason>)> =
                    decided.iter().filter(|(_, r)| r.is_some()).collect();
                assets[id] = stale.first().map(|(first, reason)| {
                    match (stale.len(), decided.len()) {
                        // One partition in all: its reason is the asset's.
                        (_, 1) => reason.clone().unwrap_or(StaleReason::NeverMaterialized),
                        (count, total) => StaleReason::PartitionsStale {
                            stale: count,
                            total,
                            first: first.clone(),
                            reason: Box::new(
                                reason.clone().unwrap_or(StaleReason::NeverMaterialized),
                            ),
                        },
                    }
                });
                if decided.is_empty() {
                    assets[id] = None;
                }
                partitions[id] = Some(PartitionDecisions::new(decided));
            }
        }
    }
    Staleness { assets, partitions }
}

/// What an upstream holds now, as a consumer would read it.
enum UpstreamNow {
    /// It (or a partition read) is stale, so it will change.
    Stale,
    /// Its current data version (`None`: its manager gives none), and when it was written.
    Version(Option<String>, Option<std::time::SystemTime>),
}

/// The decision for one asset (or one partition of it) whose latest materialization is
/// `record`; `now_of(up, mapping)` says what upstream `up` holds now for it.
fn decide(
    graph: &AssetGraph,
    node: &orch_core::AssetNode,
    record: Option<&EventRecord>,
    now_of: impl Fn(AssetId, PartitionMapping) -> UpstreamNow,
) -> Option<StaleReason> {
    let Some(record) = record else {
        return Some(StaleReason::NeverMaterialized);
    };
    if node.def.always_run() {
        return Some(StaleReason::AlwaysRun);
    }
    if record.code_version.as_deref() != Some(node.def.code_version()) {
        return Some(StaleReason::CodeChanged);
    }
    node.upstream.iter().find_map(|&up| {
        let mapping = node
            .inputs
            .iter()
            .position(|&i| i == up)
            .map_or(PartitionMapping::Identity, |i| node.input_mapping(i));
        let up_key = graph.node(up).key.clone();
        match now_of(up, mapping) {
            UpstreamNow::Stale => Some(StaleReason::UpstreamStale(up_key)),
            UpstreamNow::Version(current, written) => {
                let up_text = up_key.to_string();
                let consumed = record
                    .inputs
                    .iter()
                    .find(|(k, _)| *k == up_text)
                    .and_then(|(_, v)| v.as_deref());
                // A newer materialization of the upstream counts even if the manager gives no
                // version: compare times then.
                let changed = match (current.as_deref(), consumed) {
                    (Some(c), Some(d)) => c != d,
                    (Some(_), None) => true,
                    (None, _) => written.is_some_and(|t| t > record.time),
                };
                changed.then_some(StaleReason::UpstreamChanged(up_key))
            }
        }
    })
}

/// What upstream `up` holds now for a consumer reading `scope` of its partitions (`None`: an
/// unpartitioned upstream's value, or every partition of a partitioned one).
fn upstream_now(
    inputs: &StaleInputs,
    assets: &[Option<StaleReason>],
    partitions: &[Option<PartitionDecisions>],
    keys: &[String],
    up: AssetId,
    scope: Option<&[String]>,
) -> UpstreamNow {
    let Some(now) = inputs.partitions_of(up) else {
        if assets[up].is_some() {
            return UpstreamNow::Stale;
        }
        let latest = inputs.latest.get(&keys[up]);
        return UpstreamNow::Version(
            latest.and_then(|r| r.data_version.clone()),
            latest.map(|r| r.time),
        );
    };
    let read: &[String] = scope.unwrap_or(&now.keys);
    let decided = partitions[up].as_ref();
    // A partition that is stale, or that does not exist now, will change.
    let stale_now = |k: &str| decided.and_then(|d| d.get(k)).is_none_or(Option::is_some);
    if read.iter().any(|k| stale_now(k)) {
        return UpstreamNow::Stale;
    }
    let version = combined_version(read, |k| {
        now.latest.get(k).and_then(|r| r.data_version.as_deref())
    });
    let written = read
        .iter()
        .filter_map(|k| now.latest.get(k).map(|r| r.time))
        .max();
    UpstreamNow::Version(version, written)
}
