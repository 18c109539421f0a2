//! Resolution: from an [`AssetSelection`] to the set of assets it selects in a graph.
//!
//! Every operator works on a `Vec<bool>` indexed by [`AssetId`], so each one costs time linear
//! in the graph (upstream and downstream are one breadth-first search from the whole set).

use std::cell::OnceCell;
use std::collections::HashMap;

use super::{AssetSelection, SelectionError};
use crate::graph::{AssetGraph, AssetId};
use crate::key::AssetKey;

/// Resolves selections against one graph, building the name index only if a bare name needs it.
pub(super) struct Resolver<'g> {
    graph: &'g AssetGraph,
    /// Assets with prefixed keys, by their last segment.
    by_name: OnceCell<HashMap<&'g str, Vec<AssetId>>>,
}

#[derive(Clone, Copy)]
enum Direction {
    Upstream,
    Downstream,
}

impl<'g> Resolver<'g> {
    pub(super) fn new(graph: &'g AssetGraph) -> Self {
        Resolver {
            graph,
            by_name: OnceCell::new(),
        }
    }

    pub(super) fn eval(&self, selection: &AssetSelection) -> Result<Vec<bool>, SelectionError> {
        let graph = self.graph;
        let len = graph.len();
        Ok(match selection {
            AssetSelection::All => vec![true; len],
            AssetSelection::Keys(keys) => {
                let mut set = vec![false; len];
                for key in keys {
                    set[self.id_of(key)?] = true;
                }
                set
            }
            AssetSelection::Groups(groups) => self.groups(groups)?,
            AssetSelection::Tag { key, value } => graph
                .nodes()
                .iter()
                .map(|node| {
                    node.def
                        .tags()
                        .iter()
                        .any(|(k, v)| k == key && value.as_ref().is_none_or(|value| v == value))
                })
                .collect(),
            AssetSelection::Upstream { of, depth } => {
                self.expand(self.eval(of)?, *depth, Direction::Upstream)
            }
            AssetSelection::Downstream { of, depth } => {
                self.expand(self.eval(of)?, *depth, Direction::Downstream)
            }
            AssetSelection::Roots(inner) => {
                let set = self.eval(inner)?;
                (0..len)
                    .map(|id| set[id] && !graph.node(id).upstream.iter().any(|&up| set[up]))
                    .collect()
            }
            AssetSelection::Sinks(inner) => {
                let set = self.eval(inner)?;
                (0..len)
                    .map(|id| set[id] && !graph.node(id).downstream.iter().any(|&down| set[down]))
                    .collect()
            }
            AssetSelection::Union(a, b) => combine(self.eval(a)?, &self.eval(b)?, |x, y| x || y),
            AssetSelection::Intersection(a, b) => {
                combine(self.eval(a)?, &self.eval(b)?, |x, y| x && y)
            }
            AssetSelection::Difference(a, b) => {
                combine(self.eval(a)?, &self.eval(b)?, |x, y| x && !y)
            }
        })
    }

    /// The asset with exactly this key or, for a one-segment key, the only prefixed asset
    /// with this name.
    fn id_of(&self, key: &AssetKey) -> Result<AssetId, SelectionError> {
        if let Some(id) = self.graph.id_of(key) {
            return Ok(id);
        }
        if key.path().len() == 1 {
            match self.by_name().get(key.name()).map(Vec::as_slice) {
                Some(&[id]) => return Ok(id),
                Some(ids @ [_, _, ..]) => {
                    return Err(SelectionError::AmbiguousKey {
                        name: key.to_string(),
                        candidates: ids
                            .iter()
                            .map(|&id| self.graph.node(id).key.to_string())
                            .collect(),
                    });
                }
                _ => {}
            }
        }
        let written = key.to_string();
        // Names that select something on their own are as good a suggestion as full keys.
        let unique_names = (key.path().len() == 1)
            .then(|| {
                self.by_name()
                    .iter()
                    .filter(|(_, ids)| ids.len() == 1)
                    .map(|(name, _)| (*name).to_owned())
            })
            .into_iter()
            .flatten();
        let candidates = self
            .graph
            .nodes()
            .iter()
            .map(|node| node.key.to_string())
            .chain(unique_names);
        Err(SelectionError::UnknownKey {
            suggestion: crate::suggest::closest(&written, candidates),
            key: written,
        })
    }

    fn by_name(&self) -> &HashMap<&'g str, Vec<AssetId>> {
        self.by_name.get_or_init(|| {
            let mut by_name: HashMap<&'g str, Vec<AssetId>> = HashMap::new();
            // Ids ascend, so each list is sorted by key.
            for (id, node) in self.graph.nodes().iter().enumerate() {
                if node.key.path().len() > 1 {
                    by_name.entry(node.key.name()).or_default().push(id);
                }
            }
            by_name
        })
    }

    fn groups(&self, groups: &[String]) -> Result<Vec<bool>, SelectionError> {
        let mut seen = vec![false; groups.len()];
        let set = self
            .graph
            .nodes()
            .iter()
            .map(|node| {
                let mut selected = false;
                for (i, group) in groups.iter().enumerate() {
                    if group == node.group() {
                        seen[i] = true;
                        selected = true;
                    }
                }
                selected
            })
            .collect();
        match seen.iter().position(|seen| !seen) {
            None => Ok(set),
            Some(missing) => {
                let known = self.graph.groups();
                Err(SelectionError::UnknownGroup {
                    group: groups[missing].clone(),
                    suggestion: crate::suggest::closest(&groups[missing], &known),
                    groups: known.iter().map(|g| (*g).to_owned()).collect(),
                })
            }
        }
    }

    /// Adds to `set` every asset up to `depth` edges away in `direction` (all if `None`).
    fn expand(&self, mut set: Vec<bool>, depth: Option<u32>, direction: Direction) -> Vec<bool> {
        let mut frontier: Vec<AssetId> = (0..set.len()).filter(|&id| set[id]).collect();
        let mut next = Vec::new();
        let mut level = 0;
        // Breadth-first from the whole set: an asset is first reached at its distance from the
        // set, and reached assets are never expanded twice.
        while !frontier.is_empty() && depth.is_none_or(|depth| level < depth) {
            for &id in &frontier {
                let node = self.graph.node(id);
                let neighbours = match direction {
                    Direction::Upstream => &node.upstream,
                    Direction::Downstream => &node.downstream,
                };
                for &n in neighbours {
                    if !set[n] {
                        set[n] = true;
                        next.push(n);
                    }
                }
            }
            std::mem::swap(&mut frontier, &mut next);
            next.clear();
            level += 1;
        }
        set
    }
}

fn combine(mut a: Vec<bool>, b: &[bool], op: impl Fn(bool, bool) -> bool) -> Vec<bool> {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = op(*x, y);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{graph, keys};
    use super::*;
    use crate::test_support::def;

    fn resolve(s: &AssetSelection) -> Result<Vec<String>, SelectionError> {
        let g = graph();
        s.resolve(&g).map(|ids| keys(&g, &ids))
    }

    fn key_sel(k: &str) -> AssetSelection {
        AssetSelection::keys([k]).unwrap()
    }

    #[test]
    fn a_bare_name_finds_a_unique_prefixed_key() {
        assert_eq!(resolve(&key_sel("users")).unwrap(), ["raw/users"]);
        assert_eq!(
            resolve(&key_sel("report_view")).unwrap(),
            ["dashboards/report_view"]
        );
    }

    #[test]
    fn an_exact_key_wins_over_prefixed_names() {
        // `report` is a key, and also the name of `marts/report`.
        assert_eq!(resolve(&key_sel("report")).unwrap(), ["report"]);
        assert_eq!(resolve(&key_sel("marts/report")).unwrap(), ["marts/report"]);
    }

    #[test]
    fn a_name_shared_by_prefixed_keys_is_ambiguous() {
        let g = AssetGraph::from_defs([def("a/x", &[], None, &[]), def("b/x", &[], None, &[])])
            .unwrap();
        let err = key_sel("x").resolve(&g).unwrap_err();
        assert_eq!(
            err,
            SelectionError::AmbiguousKey {
                name: "x".into(),
                candidates: vec!["a/x".into(), "b/x".into()],
            }
        );
        assert_eq!(key_sel("a/x").resolve(&g).unwrap().len(), 1);
    }

    #[test]
    fn unknown_keys_suggest_keys_and_names() {
        let err = resolve(&key_sel("user_cleaned")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no asset has the key `user_cleaned`; did you mean `users_cleaned`?"
        );
        let err = resolve(&key_sel("raw/user")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no asset has the key `raw/user`; did you mean `raw/users`?"
        );
        // A misspelt name is close to the name, not to the prefixed key.
        let err = resolve(&key_sel("usres")).unwrap_err();
        assert_eq!(
            err,
            SelectionError::UnknownKey {
                key: "usres".into(),
                suggestion: Some("users".into())
            }
        );
        let err = resolve(&key_sel("zzzzz")).unwrap_err();
        assert_eq!(err.to_string(), "no asset has the key `zzzzz`");
    }

    #[test]
    fn unknown_groups_are_errors() {
        let err = resolve(&AssetSelection::groups(["stagin"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no asset is in the group `stagin`; did you mean `staging`?"
        );
        let err = resolve(&AssetSelection::groups(["raw", "qqq"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no asset is in the group `qqq`; the groups are `default`, `marts`, `raw` and `staging`"
        );
        // Repeating a group is fine.
        assert_eq!(
            resolve(&AssetSelection::groups(["raw", "raw"]))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn errors_inside_operators_surface() {
        let s = AssetSelection::all() - key_sel("nope").upstream();
        assert!(matches!(
            resolve(&s),
            Err(SelectionError::UnknownKey { .. })
        ));
    }

    #[test]
    fn an_empty_graph_selects_nothing() {
        let g = AssetGraph::from_defs([]).unwrap();
        assert!(AssetSelection::all().resolve(&g).unwrap().is_empty());
        assert!(AssetSelection::tag_key("x").resolve(&g).unwrap().is_empty());
        assert_eq!(
            AssetSelection::groups(["x"])
                .resolve(&g)
                .unwrap_err()
                .to_string(),
            "no asset is in the group `x`; the graph has no assets"
        );
    }

    #[test]
    fn diamond_depths_count_shortest_paths() {
        // a -> b -> c -> d and a -> d: d's upstream at depth 1 includes a.
        let g = AssetGraph::from_defs([
            def("a", &[], None, &[]),
            def("b", &["a"], None, &[]),
            def("c", &["b"], None, &[]),
            def("d", &["c", "a"], None, &[]),
        ])
        .unwrap();
        let ids = key_sel("d").upstream_depth(1).resolve(&g).unwrap();
        assert_eq!(keys(&g, &ids), ["a", "c", "d"]);
        let ids = key_sel("a").downstream_depth(1).resolve(&g).unwrap();
        assert_eq!(keys(&g, &ids), ["a", "b", "d"]);
    }

    #[test]
    fn a_long_chain_resolves() {
        const N: usize = 10_000;
        let names: Vec<String> = (0..N).map(|i| format!("n{i:05}")).collect();
        let defs: Vec<_> = (0..N)
            .map(|i| {
                let inputs: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![names[i - 1].as_str()]
                };
                def(&names[i], &inputs, None, &[])
            })
            .collect();
        let g = AssetGraph::from_defs(defs).unwrap();
        let last: AssetSelection = format!("+{}", names[N - 1]).parse().unwrap();
        assert_eq!(last.resolve(&g).unwrap().len(), N);
        let first = key_sel(&names[0]);
        assert_eq!(first.clone().downstream().resolve(&g).unwrap().len(), N);
        assert_eq!(
            first
                .clone()
                .downstream_depth(10)
                .resolve(&g)
                .unwrap()
                .len(),
            11
        );
        let ends = AssetSelection::all().roots() | AssetSelection::all().sinks();
        assert_eq!(ends.resolve(&g).unwrap(), [0, N - 1]);
    }
}
