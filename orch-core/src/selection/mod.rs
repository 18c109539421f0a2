//! Asset selections: which assets a run, a listing or a schedule is about.
//!
//! An [`AssetSelection`] is an expression over the asset graph, modelled on Dagster's asset
//! selection. Build one in code with the builders and the `|`, `&` and `-` operators, or
//! parse one from a string (the form users type on the command line); then
//! [`resolve`](AssetSelection::resolve) it against an [`AssetGraph`] to get the asset ids.
//!
//! ```
//! use orch_core::AssetSelection;
//!
//! let typed: AssetSelection = "+users and not group:raw".parse()?;
//! let built = AssetSelection::keys(["users"])?.upstream() - AssetSelection::groups(["raw"]);
//! assert_eq!(typed, built);
//! assert_eq!(built.to_string(), "+users and not group:raw");
//! # Ok::<(), orch_core::SelectionError>(())
//! ```
//!
//! # Syntax
//!
//! | you write | it selects | in code |
//! | --- | --- | --- |
//! | `*` | every asset | [`AssetSelection::all()`] |
//! | `users`, `key:users` | the asset with the key `users` (see *Keys and names* below) | [`AssetSelection::keys(["users"])`](AssetSelection::keys) |
//! | `raw/users`, `key:raw/users`, `key:"raw/users"` | the asset with the prefixed key `raw/users` | `AssetSelection::keys(["raw/users"])` |
//! | `group:sources` | every asset in the group `sources` | [`AssetSelection::groups(["sources"])`](AssetSelection::groups) |
//! | `tag:tier=gold` | every asset with the tag `tier` set to `gold` | [`AssetSelection::tag("tier", "gold")`](AssetSelection::tag) |
//! | `tag:pii` | every asset with the tag `pii`, whatever its value | [`AssetSelection::tag_key("pii")`](AssetSelection::tag_key) |
//! | `+x` | `x` and everything upstream of it | [`x.upstream()`](AssetSelection::upstream) |
//! | `2+x` | `x` and its upstream up to two levels away | [`x.upstream_depth(2)`](AssetSelection::upstream_depth) |
//! | `x+` | `x` and everything downstream of it | [`x.downstream()`](AssetSelection::downstream) |
//! | `x+3` | `x` and its downstream up to three levels away | [`x.downstream_depth(3)`](AssetSelection::downstream_depth) |
//! | `+x+`, `1+x+1` | `x`, its upstream and its downstream | `x.clone().upstream() \| x.downstream()` |
//! | `upstream(x)`, `downstream(x)` | the same as `+(x)` and `(x)+` | |
//! | `roots(x)` | the members of `x` with no upstream asset inside `x` | [`x.roots()`](AssetSelection::roots) |
//! | `sinks(x)` | the members of `x` with no downstream asset inside `x` | [`x.sinks()`](AssetSelection::sinks) |
//! | `x and y` | the assets in both | `x & y`, [`x.intersect(y)`](AssetSelection::intersect) |
//! | `x or y` | the assets in either | `x \| y`, [`x.union(y)`](AssetSelection::union) |
//! | `x and not y` | the assets in `x` but not in `y` | `x - y`, [`x.difference(y)`](AssetSelection::difference) |
//! | `not y` | every asset except those in `y` | `AssetSelection::all() - y` |
//! | `(x)` | `x`: parentheses group | |
//!
//! - `+` binds tightest, then `not`, then `and`, then `or`: `not a or b and c` means
//!   `(not a) or (b and c)`. The `+` forms apply to any operand, including parenthesised ones
//!   and functions: `+(group:marts)`, `roots(x)+`.
//! - A depth is written against its `+`, with no space: `2+x`, `x+3`.
//! - `and`, `or`, `not`, the function names and `key:`, `group:`, `tag:` are case-insensitive;
//!   keys, groups and tags are not.
//! - Keys are `/`-separated segments of ASCII letters, digits, `_`, `-` and `.`. An asset
//!   whose key is a keyword or only digits is written with `key:`, e.g. `key:and`, `key:2024`.
//! - Group names, tag keys and tag values that use other characters go in double quotes:
//!   `tag:owner="team:data"`, with `\"` and `\\` for a quote and a backslash.
//! - An empty selection is a syntax error; errors give the byte offset of the problem.
//!
//! [`Display`](std::fmt::Display) writes a selection back in this syntax, in a form that parses
//! to an equivalent selection.
//!
//! # Keys and names
//!
//! A key selects the asset with exactly that key. If there is none and the key is a single
//! segment, it selects the asset whose *last* segment it is, so `users` finds `raw/users` when
//! that is the only asset named `users`; if several prefixed keys end in `users`, resolution
//! fails with [`SelectionError::AmbiguousKey`] listing them. `key:users` follows the same rule:
//! `key:` is only needed for keys that are keywords or numbers.
//!
//! # What fails to resolve
//!
//! A key or group that no asset has is an error, with the closest existing name suggested: a
//! typo in a selection should not silently run nothing. A tag that no asset has is *not* an
//! error and selects nothing: tags are open-ended labels, and a schedule for `tag:tier=gold`
//! should keep working (and run nothing) while no asset is gold.

mod display;
mod error;
mod lex;
mod parse;
mod resolve;

use std::ops::{BitAnd, BitOr, Sub};

pub use error::SelectionError;

use crate::asset::Asset;
use crate::graph::{AssetGraph, AssetId};
use crate::key::AssetKey;

/// A set of assets, described by keys, groups, tags and the graph's edges. See the
/// [module documentation](self) for the string syntax and how each form resolves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssetSelection {
    /// Every asset (`*`).
    All,
    /// The assets with these keys (`users`, `key:raw/users`); a single-segment key also
    /// matches a unique prefixed key ending in it.
    Keys(Vec<AssetKey>),
    /// The assets in any of these groups (`group:sources`).
    Groups(Vec<String>),
    /// The assets with the tag `key`, set to `value` if given (`tag:k=v`, `tag:k`).
    Tag {
        /// The tag's key.
        key: String,
        /// The value it must have; `None` for any value.
        value: Option<String>,
    },
    /// The selection and its upstream assets (`+x`, `2+x`).
    Upstream {
        /// The selection to start from.
        of: Box<AssetSelection>,
        /// How many levels to follow; `None` for all of them.
        depth: Option<u32>,
    },
    /// The selection and its downstream assets (`x+`, `x+2`).
    Downstream {
        /// The selection to start from.
        of: Box<AssetSelection>,
        /// How many levels to follow; `None` for all of them.
        depth: Option<u32>,
    },
    /// The members of the inner selection with no upstream asset inside it (`roots(x)`).
    Roots(Box<AssetSelection>),
    /// The members of the inner selection with no downstream asset inside it (`sinks(x)`).
    Sinks(Box<AssetSelection>),
    /// The assets in either selection (`x or y`).
    Union(Box<AssetSelection>, Box<AssetSelection>),
    /// The assets in both selections (`x and y`).
    Intersection(Box<AssetSelection>, Box<AssetSelection>),
    /// The assets in the first selection but not the second (`x and not y`).
    Difference(Box<AssetSelection>, Box<AssetSelection>),
}

impl AssetSelection {
    /// Every asset.
    pub fn all() -> Self {
        AssetSelection::All
    }

    /// The assets with these keys, written `prefix/name`.
    ///
    /// Fails only if a string is not a valid key; whether the assets exist is checked by
    /// [`resolve`](Self::resolve). To build from [`AssetKey`]s, `collect()` them into a
    /// selection instead.
    pub fn keys<I, K>(keys: I) -> Result<Self, SelectionError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<str>,
    {
        keys.into_iter()
            .map(|k| k.as_ref().parse::<AssetKey>())
            .collect::<Result<Vec<_>, _>>()
            .map(AssetSelection::Keys)
            .map_err(|source| SelectionError::InvalidKey { source })
    }

    /// The asset `A`, named by its `#[asset]` marker type (checked by the compiler).
    pub fn asset<A: Asset>() -> Self {
        AssetSelection::Keys(vec![A::KEY.to_key()])
    }

    /// The assets in any of these groups.
    pub fn groups<I, G>(groups: I) -> Self
    where
        I: IntoIterator<Item = G>,
        G: Into<String>,
    {
        AssetSelection::Groups(groups.into_iter().map(Into::into).collect())
    }

    /// The assets with the tag `key` set to `value`.
    pub fn tag(key: impl Into<String>, value: impl Into<String>) -> Self {
        AssetSelection::Tag {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// The assets with the tag `key`, whatever its value.
    pub fn tag_key(key: impl Into<String>) -> Self {
        AssetSelection::Tag {
            key: key.into(),
            value: None,
        }
    }

    /// This selection and everything upstream of it.
    pub fn upstream(self) -> Self {
        AssetSelection::Upstream {
            of: Box::new(self),
            depth: None,
        }
    }

    /// This selection and its upstream assets up to `depth` levels away (0 adds nothing).
    pub fn upstream_depth(self, depth: u32) -> Self {
        AssetSelection::Upstream {
            of: Box::new(self),
            depth: Some(depth),
        }
    }

    /// This selection and everything downstream of it.
    pub fn downstream(self) -> Self {
        AssetSelection::Downstream {
            of: Box::new(self),
            depth: None,
        }
    }

    /// This selection and its downstream assets up to `depth` levels away (0 adds nothing).
    pub fn downstream_depth(self, depth: u32) -> Self {
        AssetSelection::Downstream {
            of: Box::new(self),
            depth: Some(depth),
        }
    }

    /// The members of this selection with no upstream asset inside it.
    pub fn roots(self) -> Self {
        AssetSelection::Roots(Box::new(self))
    }

    /// The members of this selection with no downstream asset inside it.
    pub fn sinks(self) -> Self {
        AssetSelection::Sinks(Box::new(self))
    }

    /// The assets in this selection or `other` (also `self | other`).
    pub fn union(self, other: AssetSelection) -> Self {
        AssetSelection::Union(Box::new(self), Box::new(other))
    }

    /// The assets in both this selection and `other` (also `self & other`).
    pub fn intersect(self, other: AssetSelection) -> Self {
        AssetSelection::Intersection(Box::new(self), Box::new(other))
    }

    /// The assets in this selection but not in `other` (also `self - other`).
    pub fn difference(self, other: AssetSelection) -> Self {
        AssetSelection::Difference(Box::new(self), Box::new(other))
    }

    /// The ids of the selected assets, sorted (which is also key order).
    ///
    /// Fails if a key or group names nothing in `graph`; see the
    /// [module documentation](self#what-fails-to-resolve). Runs in time linear in the size of
    /// the graph for each operator.
    pub fn resolve(&self, graph: &AssetGraph) -> Result<Vec<AssetId>, SelectionError> {
        let set = self.resolve_set(graph)?;
        Ok(set
            .iter()
            .enumerate()
            .filter_map(|(id, &selected)| selected.then_some(id))
            .collect())
    }

    /// Whether each asset is selected, indexed by [`AssetId`] (`graph.len()` entries).
    pub fn resolve_set(&self, graph: &AssetGraph) -> Result<Vec<bool>, SelectionError> {
        resolve::Resolver::new(graph).eval(self)
    }
}

impl From<AssetKey> for AssetSelection {
    fn from(key: AssetKey) -> Self {
        AssetSelection::Keys(vec![key])
    }
}

impl FromIterator<AssetKey> for AssetSelection {
    fn from_iter<I: IntoIterator<Item = AssetKey>>(keys: I) -> Self {
        AssetSelection::Keys(keys.into_iter().collect())
    }
}

impl BitOr for AssetSelection {
    type Output = AssetSelection;

    /// [`union`](AssetSelection::union).
    fn bitor(self, other: AssetSelection) -> AssetSelection {
        self.union(other)
    }
}

impl BitAnd for AssetSelection {
    type Output = AssetSelection;

    /// [`intersect`](AssetSelection::intersect).
    fn bitand(self, other: AssetSelection) -> AssetSelection {
        self.intersect(other)
    }
}

impl Sub for AssetSelection {
    type Output = AssetSelection;

    /// [`difference`](AssetSelection::difference).
    fn sub(self, other: AssetSelection) -> AssetSelection {
        self.difference(other)
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! The graphs the selection tests share.

    use crate::graph::{AssetGraph, AssetId};
    use crate::test_support::def;

    /// ```text
    /// raw/users ─┬─> users_cleaned ─┬─> report
    /// raw/orders ┴─> orders_cleaned ┘      └─> dashboards/report_view
    /// events (alone)                 marts/report (no edges, shares the name `report`)
    /// ```
    /// Groups: `raw` (the two `raw/` assets), `staging` (the cleaned ones), `marts`
    /// (`report`, `marts/report`, `dashboards/report_view`); `events` is in `default`.
    pub(crate) fn graph() -> AssetGraph {
        AssetGraph::from_defs([
            def(
                "raw/users",
                &[],
                Some("raw"),
                &[("pii", "yes"), ("tier", "bronze")],
            ),
            def("raw/orders", &[], Some("raw"), &[("tier", "bronze")]),
            def(
                "users_cleaned",
                &["raw/users", "raw/orders"],
                Some("staging"),
                &[("pii", "no"), ("tier", "silver")],
            ),
            def(
                "orders_cleaned",
                &["raw/orders"],
                Some("staging"),
                &[("tier", "silver")],
            ),
            def(
                "report",
                &["users_cleaned", "orders_cleaned"],
                Some("marts"),
                &[("tier", "gold")],
            ),
            def("dashboards/report_view", &["report"], Some("marts"), &[]),
            def("marts/report", &[], Some("marts"), &[]),
            def("events", &[], None, &[]),
        ])
        .unwrap()
    }

    /// The keys of `ids`, sorted, for readable assertions.
    pub(crate) fn keys(graph: &AssetGraph, ids: &[AssetId]) -> Vec<String> {
        let mut keys: Vec<String> = ids
            .iter()
            .map(|&id| graph.node(id).key.to_string())
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{graph, keys};
    use super::*;

    fn sel(keys: &[&str]) -> AssetSelection {
        AssetSelection::keys(keys).unwrap()
    }

    fn names(s: &AssetSelection) -> Vec<String> {
        let g = graph();
        keys(&g, &s.resolve(&g).unwrap())
    }

    #[test]
    fn builders_make_the_variants() {
        assert_eq!(AssetSelection::all(), AssetSelection::All);
        assert_eq!(
            AssetSelection::keys(["a", "p/b"]).unwrap(),
            AssetSelection::Keys(vec!["a".parse().unwrap(), "p/b".parse().unwrap()])
        );
        assert_eq!(
            AssetSelection::tag_key("pii"),
            AssetSelection::Tag {
                key: "pii".into(),
                value: None
            }
        );
        let a = sel(&["a"]);
        let b = sel(&["b"]);
        assert_eq!(a.clone() | b.clone(), a.clone().union(b.clone()));
        assert_eq!(a.clone() & b.clone(), a.clone().intersect(b.clone()));
        assert_eq!(a.clone() - b.clone(), a.clone().difference(b.clone()));
        let from_keys: AssetSelection = ["a".parse::<AssetKey>().unwrap()].into_iter().collect();
        assert_eq!(from_keys, a);
        assert_eq!(AssetSelection::from("a".parse::<AssetKey>().unwrap()), a);
    }

    #[test]
    fn keys_rejects_invalid_keys_without_panicking() {
        let err = AssetSelection::keys(["ok", "not ok"]).unwrap_err();
        assert!(matches!(err, SelectionError::InvalidKey { .. }), "{err}");
        assert!(err.to_string().contains("`not ok`"), "{err}");
    }

    #[test]
    fn keys_groups_and_tags() {
        assert_eq!(
            names(&sel(&["report", "raw/users"])),
            ["raw/users", "report"]
        );
        assert_eq!(
            names(&AssetSelection::groups(["raw", "staging"])),
            ["orders_cleaned", "raw/orders", "raw/users", "users_cleaned"]
        );
        assert_eq!(names(&AssetSelection::groups(["default"])), ["events"]);
        assert_eq!(
            names(&AssetSelection::tag("tier", "silver")),
            ["orders_cleaned", "users_cleaned"]
        );
        assert_eq!(
            names(&AssetSelection::tag_key("pii")),
            ["raw/users", "users_cleaned"]
        );
        assert!(names(&AssetSelection::tag("tier", "platinum")).is_empty());
        assert_eq!(names(&AssetSelection::all()).len(), 8);
    }

    #[test]
    fn upstream_and_downstream_with_depths() {
        assert_eq!(
            names(&sel(&["report"]).upstream()),
            [
                "orders_cleaned",
                "raw/orders",
                "raw/users",
                "report",
                "users_cleaned"
            ]
        );
        assert_eq!(
            names(&sel(&["report"]).upstream_depth(1)),
            ["orders_cleaned", "report", "users_cleaned"]
        );
        assert_eq!(names(&sel(&["report"]).upstream_depth(0)), ["report"]);
        assert_eq!(
            names(&sel(&["raw/orders"]).downstream()),
            [
                "dashboards/report_view",
                "orders_cleaned",
                "raw/orders",
                "report",
                "users_cleaned"
            ]
        );
        assert_eq!(
            names(&sel(&["raw/orders"]).downstream_depth(2)),
            ["orders_cleaned", "raw/orders", "report", "users_cleaned"]
        );
    }

    #[test]
    fn roots_and_sinks_are_relative_to_the_inner_selection() {
        assert_eq!(
            names(&AssetSelection::all().roots()),
            ["events", "marts/report", "raw/orders", "raw/users"]
        );
        assert_eq!(
            names(&AssetSelection::all().sinks()),
            ["dashboards/report_view", "events", "marts/report"]
        );
        // Inside `staging + marts`, the cleaned assets have no upstream.
        let later = AssetSelection::groups(["staging", "marts"]);
        assert_eq!(
            names(&later.clone().roots()),
            ["marts/report", "orders_cleaned", "users_cleaned"]
        );
        assert_eq!(
            names(&AssetSelection::groups(["staging"]).sinks()),
            ["orders_cleaned", "users_cleaned"]
        );
    }

    #[test]
    fn set_operators() {
        let raw = AssetSelection::groups(["raw"]);
        let bronze = AssetSelection::tag("tier", "bronze");
        let pii = AssetSelection::tag_key("pii");
        assert_eq!(
            names(&(raw.clone() | pii.clone())),
            ["raw/orders", "raw/users", "users_cleaned"]
        );
        assert_eq!(names(&(raw.clone() & pii.clone())), ["raw/users"]);
        assert_eq!(names(&(raw.clone() - pii)), ["raw/orders"]);
        assert!(names(&(raw - bronze)).is_empty());
    }

    #[test]
    fn resolve_set_is_indexed_by_id() {
        let g = graph();
        let set = sel(&["events"]).resolve_set(&g).unwrap();
        assert_eq!(set.len(), g.len());
        let id = g.id_of(&"events".parse().unwrap()).unwrap();
        assert!(set[id]);
        assert_eq!(set.iter().filter(|s| **s).count(), 1);
    }
}
