//! The asset graph: every registered asset, its edges, and the checks the compiler cannot do.

use std::collections::HashMap;
use std::fmt;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::asset::{AssetDef, SourceLocation};
use crate::error::{DefinitionError, DefinitionErrors};
use crate::key::{AssetKey, StaticKey};
use crate::partitions::Partitions;

/// The group of an asset that declares none.
pub const DEFAULT_GROUP: &str = "default";

/// An asset's position in an [`AssetGraph`]. Indices are dense, from 0.
pub type AssetId = usize;

/// How a downstream asset depends on an upstream one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EdgeKind {
    /// The upstream's value is passed in as a parameter.
    Input,
    /// `deps = [...]`: order only, the value is not loaded.
    Order,
}

/// One asset in the graph.
#[derive(Debug)]
pub struct AssetNode {
    /// Its registration.
    pub def: &'static AssetDef,
    /// Its key.
    pub key: AssetKey,
    /// Upstream assets whose values it takes, in parameter order.
    pub inputs: Vec<AssetId>,
    /// Every upstream asset (inputs then order-only deps), without duplicates.
    pub upstream: Vec<AssetId>,
    /// Every downstream asset.
    pub downstream: Vec<AssetId>,
    /// How it is partitioned (resolved from `partitions = ...`), if it is.
    pub partitions: Option<Partitions>,
}

impl AssetNode {
    /// Which partitions of input `i` (in parameter order) a partition of this asset reads.
    pub fn input_mapping(&self, i: usize) -> crate::partitions::PartitionMapping {
        self.def
            .input_partitions()
            .get(i)
            .copied()
            .unwrap_or_default()
    }

    /// Its group (`default` when none is declared).
    pub fn group(&self) -> &'static str {
        self.def.group().unwrap_or(DEFAULT_GROUP)
    }
}

/// Every asset of a program and the edges between them, validated: keys are unique, every
/// dependency exists, and there is no cycle.
#[derive(Debug)]
pub struct AssetGraph {
    nodes: Vec<AssetNode>,
    by_key: HashMap<AssetKey, AssetId>,
    topo: Vec<AssetId>,
}

impl AssetGraph {
    /// Discovers every asset registered with `#[asset]` in this binary and validates the graph.
    pub fn discover() -> Result<Self, DefinitionErrors> {
        Self::from_defs(crate::asset::registered())
    }

    /// Builds and validates a graph from explicit registrations.
    pub fn from_defs<I>(defs: I) -> Result<Self, DefinitionErrors>
    where
        I: IntoIterator<Item = &'static AssetDef>,
    {
        let mut errors = Vec::new();
        let mut defs: Vec<&'static AssetDef> = defs.into_iter().collect();
        // Link order is not stable across builds; sort so ids and listings are.
        defs.sort_by(|a, b| a.key().path.cmp(b.key().path));

        let mut nodes: Vec<AssetNode> = Vec::with_capacity(defs.len());
        let mut by_key: HashMap<AssetKey, AssetId> = HashMap::with_capacity(defs.len());
        let mut first_location: HashMap<AssetKey, SourceLocation> = HashMap::new();
        for def in defs {
            let key = match AssetKey::new(def.key().path.iter().copied()) {
                Ok(key) => key,
                Err(source) => {
                    errors.push(DefinitionError::InvalidKey {
                        location: def.location(),
                        source,
                    });
                    continue;
                }
            };
            if let Some(first) = first_location.get(&key) {
                errors.push(DefinitionError::DuplicateKey {
                    key,
                    first: *first,
                    second: def.location(),
                });
                continue;
            }
            first_location.insert(key.clone(), def.location());
            let partitions = match def.partitions().map(|declare| declare().resolve()) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    errors.push(DefinitionError::InvalidPartitions {
                        asset: key.clone(),
                        location: def.location(),
                        message: e.to_string(),
                    });
                    None
                }
            };
            by_key.insert(key.clone(), nodes.len());
            nodes.push(AssetNode {
                def,
                key,
                inputs: Vec::new(),
                upstream: Vec::new(),
                downstream: Vec::new(),
                partitions,
            });
        }

        let mut graph = DiGraph::<AssetId, EdgeKind>::with_capacity(nodes.len(), nodes.len());
        for id in 0..nodes.len() {
            graph.add_node(id);
        }
        let resolve = |dep: &StaticKey| -> Result<AssetId, String> {
            let key = dep.path.join("/");
            match key.parse::<AssetKey>() {
                Ok(k) => by_key.get(&k).copied().ok_or(key),
                Err(_) => Err(key),
            }
        };
        for id in 0..nodes.len() {
            let def = nodes[id].def;
            let edges = def
                .inputs()
                .iter()
                .map(|d| (d, EdgeKind::Input))
                .chain(def.deps().iter().map(|d| (d, EdgeKind::Order)));
            for (dep, kind) in edges {
                match resolve(dep) {
                    Ok(up) => {
                        if kind == EdgeKind::Input {
                            nodes[id].inputs.push(up);
                        }
                        if !nodes[id].upstream.contains(&up) {
                            nodes[id].upstream.push(up);
                            nodes[up].downstream.push(id);
                            graph.add_edge(NodeIndex::new(up), NodeIndex::new(id), kind);
                        }
                    }
                    Err(missing) => {
                        let suggestion =
                            crate::suggest::closest(&missing, by_key.keys().map(|k| k.to_string()));
                        errors.push(DefinitionError::UnknownDependency {
                            asset: nodes[id].key.clone(),
                            dependency: missing,
                            location: def.location(),
                            suggestion,
                        });
                    }
                }
            }
        }

        check_partition_inputs(&nodes, &mut errors);

        let topo = match toposort(&graph, None) {
            Ok(order) => order.into_iter().map(NodeIndex::index).collect(),
            Err(_) => {
                for scc in tarjan_scc(&graph) {
                    let is_cycle = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
                    if is_cycle {
                        let mut keys: Vec<AssetKey> =
                            scc.iter().map(|n| nodes[n.index()].key.clone()).collect();
                        keys.sort();
                        errors.push(DefinitionError::Cycle { assets: keys });
                    }
                }
                Vec::new()
            }
        };

        if errors.is_empty() {
            Ok(AssetGraph {
                nodes,
                by_key,
                topo,
            })
        } else {
            Err(DefinitionErrors(errors))
        }
    }

    /// Whether any asset is partitioned.
    pub fn has_partitions(&self) -> bool {
        self.nodes.iter().any(|n| n.partitions.is_some())
    }

    /// How many assets there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every asset, sorted by key.
    pub fn nodes(&self) -> &[AssetNode] {
        &self.nodes
    }

    /// One asset.
    pub fn node(&self, id: AssetId) -> &AssetNode {
        &self.nodes[id]
    }

    /// The id of the asset with this key.
    pub fn id_of(&self, key: &AssetKey) -> Option<AssetId> {
        self.by_key.get(key).copied()
    }

    /// Every asset id in an order where each asset comes after all of its upstreams.
    pub fn topological_order(&self) -> &[AssetId] {
        &self.topo
    }

    /// Every group name in use, sorted.
    pub fn groups(&self) -> Vec<&'static str> {
        let mut groups: Vec<&'static str> = self.nodes.iter().map(AssetNode::group).collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }
}

impl fmt::Display for AssetGraph {
    /// One line per asset: `key <- upstream, ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for node in &self.nodes {
            write!(f, "{}", node.key)?;
            if !node.upstream.is_empty() {
                f.write_str(" <- ")?;
                for (i, up) in node.upstream.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", self.nodes[*up].key)?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// An input's partitions must line up with its consumer's: the same definition (partition `k`
/// reads partition `k`), or an unpartitioned upstream (read whole by every partition).
fn check_partition_inputs(nodes: &[AssetNode], errors: &mut Vec<DefinitionError>) {
    for node in nodes {
        for (i, &up) in node.inputs.iter().enumerate() {
            let upstream = &nodes[up];
            let frames = upstream
                .def
                .storage_codec()
                .is_some_and(|c| c.frame.is_some());
            let mapping = node.input_mapping(i);
            if mapping != crate::partitions::PartitionMapping::Identity {
                let problem = match (&node.partitions, &upstream.partitions) {
                    (None, _) => Some(format!("`{}` is not partitioned", node.key)),
                    (_, None) => Some(format!("`{}` is not partitioned", upstream.key)),
                    (Some(ours), Some(theirs)) if ours != theirs => Some(format!(
                        "they are partitioned differently (`{}`: {}; `{}`: {})",
                        upstream.key,
                        theirs.describe(),
                        node.key,
                        ours.describe()
                    )),
                    (Some(ours), _) if ours.dynamic_name().is_some() => {
                        Some("dynamic partitions have no order to map along".to_owned())
                    }
                    _ if matches!(mapping, crate::partitions::PartitionMapping::Last(_))
                        && !frames =>
                    {
                        Some(format!(
                            "`{}` does not output frames, so its partitions cannot be concatenated",
                            upstream.key
                        ))
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    errors.push(DefinitionError::PartitionMismatch {
                        asset: node.key.clone(),
                        location: node.def.location(),
                        input: upstream.key.clone(),
                        message: format!(
                            "`#[partitions(...)]` on it asks for {mapping}, and {problem}; a mapping needs both assets partitioned the same way by time windows or a static list"
                        ),
                    });
                }
                continue;
            }
            let Some(theirs) = &upstream.partitions else {
                continue;
            };
            let message = match &node.partitions {
                Some(ours) if ours == theirs => continue,
                // An unpartitioned consumer of a frame reads every partition, concatenated.
                None if frames => continue,
                Some(ours) => format!(
                    "they are partitioned differently (`{}`: {}; `{}`: {}); give both the same `partitions = ...`",
                    upstream.key,
                    theirs.describe(),
                    node.key,
                    ours.describe()
                ),
                None => format!(
                    "`{}` is partitioned ({}) and `{}` is not; partition `{}` the same way (an unpartitioned asset reads every partition at once only of DataFrame or LazyFrame outputs, concatenated)",
                    upstream.key,
                    theirs.describe(),
                    node.key,
                    node.key
                ),
            };
            errors.push(DefinitionError::PartitionMismatch {
                asset: node.key.clone(),
                location: node.def.location(),
                input: upstream.key.clone(),
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::{PartitionsDefinition, daily, static_partitions};
    use crate::test_support::def;

    fn partitioned(
        key: &str,
        inputs: &[&str],
        partitions: fn() -> PartitionsDefinition,
    ) -> &'static AssetDef {
        Box::leak(Box::new(AssetDef::from_parts(crate::asset::AssetParts {
            partitions: Some(partitions),
            ..*def(key, inputs, None, &[]).parts()
        })))
    }

    fn errors(defs: Vec<&'static AssetDef>) -> Vec<String> {
        match AssetGraph::from_defs(defs) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn partitions_are_resolved_and_checked_along_edges() {
        let days = || daily("2024-01-01").into();
        let regions = || static_partitions(["eu", "us"]);
        // Same definition along the edge, and an unpartitioned input: fine.
        let ok = AssetGraph::from_defs([
            def("lookup", &[], None, &[]),
            partitioned("raw", &["lookup"], days),
            partitioned("clean", &["raw"], days),
        ])
        .unwrap();
        assert!(ok.has_partitions());
        let clean = ok.node(ok.id_of(&"clean".parse().unwrap()).unwrap());
        assert!(clean.partitions.as_ref().unwrap().is_time_window());

        let found = errors(vec![
            partitioned("bad_date", &[], || daily("2024-02-30").into()),
            partitioned("raw", &[], days),
            partitioned("by_region", &["raw"], regions),
            def("report", &["raw"], None, &[]),
        ]);
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(found[0].starts_with("asset `bad_date` (at test.rs:1 (test)) has invalid partitions: start `2024-02-30` is not a date"), "{}", found[0]);
        assert!(found[1].contains("asset `by_region` (at test.rs:1 (test)) takes `raw` as an input, but they are partitioned differently"), "{}", found[1]);
        assert!(
            found[2].contains(
                "`raw` is partitioned (daily from 2024-01-01T00:00:00 (UTC)) and `report` is not"
            ),
            "{}",
            found[2]
        );
    }

    #[test]
    fn partition_mappings_need_the_same_ordered_partitions() {
        use crate::partitions::{PartitionMapping, dynamic};
        let days = || daily("2024-01-01").into();
        let mapped =
            |key: &str, input: &str, m: PartitionMapping, p: fn() -> PartitionsDefinition| {
                Box::leak(Box::new(AssetDef::from_parts(crate::asset::AssetParts {
                    input_partitions: Box::leak(vec![m].into_boxed_slice()),
                    input_adapters: &[],
                    ..*partitioned(key, &[input], p).parts()
                }))) as &'static AssetDef
            };
        // The same daily definition on both sides: fine.
        AssetGraph::from_defs([
            partitioned("raw", &[], days),
            mapped("yesterday", "raw", PartitionMapping::Offset(-1), days),
        ])
        .unwrap();
        let found = errors(vec![
            def("lookup", &[], None, &[]),
            partitioned("raw", &[], days),
            partitioned("users", &[], || dynamic("users")),
            mapped("a", "lookup", PartitionMapping::Offset(-1), days),
            mapped("b", "raw", PartitionMapping::Last(7), days),
            mapped("c", "users", PartitionMapping::Offset(-1), || {
                dynamic("users")
            }),
            Box::leak(Box::new(AssetDef::from_parts(crate::asset::AssetParts {
                input_partitions: &[PartitionMapping::Offset(-1)],
                input_adapters: &[],
                ..*def("d", &["raw"], None, &[]).parts()
            }))),
        ]);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("asset `a` (at test.rs:1 (test)) takes `lookup` as an input, but `#[partitions(...)]` on it asks for offset -1, and `lookup` is not partitioned"), "{}", found[0]);
        assert!(
            found[1].contains("asks for the last 7 partitions, and `raw` does not output frames"),
            "{}",
            found[1]
        );
        assert!(
            found[2].contains("dynamic partitions have no order to map along"),
            "{}",
            found[2]
        );
        assert!(found[3].contains("`d` is not partitioned"), "{}", found[3]);
    }
}
