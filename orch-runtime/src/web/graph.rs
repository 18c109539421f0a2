//! The lineage graph's layout, computed once per program (the graph is fixed at compile
//! time), and its SVG. Left to right, in two levels: each group is laid out on its own with
//! Sugiyama's layered method (`rust-sugiyama`), then the groups, as boxes of that size, are
//! laid out the same way by the edges between them, so group boxes never overlap.

use std::collections::BTreeMap;
use std::fmt::Write;

use orch_core::AssetGraph;
use rust_sugiyama::configure::{Config, RankingType};
use serde::Serialize;

/// A node's height, and the gaps around nodes and inside group boxes (px).
const NODE_H: f64 = 38.0;
const NODE_GAP: f64 = 14.0;
const LAYER_GAP: f64 = 70.0;
const GROUP_PAD: f64 = 20.0;
const GROUP_HEADER: f64 = 26.0;
const GROUP_GAP: f64 = 50.0;
/// Above this many assets in one group, the faster layering and no transposition step (the
/// layout of 10,000 assets stays under a second).
const LARGE: usize = 400;

/// One asset's box.
#[derive(Serialize, Debug, Clone)]
pub struct NodeBox {
    /// The asset key.
    pub key: String,
    /// Index into [`GraphLayout::groups`].
    pub group: usize,
    /// Top-left corner and size.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
}

/// One group's box.
#[derive(Serialize, Debug, Clone)]
pub struct GroupBox {
    /// The group's name.
    pub name: &'static str,
    /// Top-left corner and size.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// How many assets.
    pub assets: usize,
}

/// Where everything goes.
#[derive(Serialize, Debug, Clone, Default)]
pub struct GraphLayout {
    /// The drawing's size.
    pub width: f64,
    /// Height.
    pub height: f64,
    /// In the graph's order (asset id).
    pub nodes: Vec<NodeBox>,
    /// The groups, by name.
    pub groups: Vec<GroupBox>,
    /// `(from, to)` asset ids.
    pub edges: Vec<(usize, usize)>,
    /// `(from, to)` group indices with at least one edge between them.
    pub group_edges: Vec<(usize, usize)>,
}

fn node_width(key: &str) -> f64 {
    (key.chars().count().min(34) as f64 * 7.8 + 34.0).clamp(120.0, 300.0)
}

fn config(n: usize) -> Config {
    Config {
        vertex_spacing: NODE_GAP,
        ranking_type: if n > LARGE {
            RankingType::Up
        } else {
            RankingType::MinimizeEdgeLength
        },
        transpose: n <= LARGE,
        dummy_vertices: false,
        ..Config::default()
    }
}

/// Lays out `vertices` (id and `(w, h)` as drawn left to right) joined by `edges`; returns
/// each vertex's top-left corner and the bounds. Components are stacked top to bottom.
fn layered(vertices: &[(u32, (f64, f64))], edges: &[(u32, u32)]) -> (Vec<(f64, f64)>, f64, f64) {
    let mut at = vec![(0.0, 0.0); vertices.len()];
    if vertices.is_empty() {
        return (at, 0.0, 0.0);
    }
    // Edges name vertices by id; the layouts that come back name them by their position in
    // `vertices` (petgraph's node index).
    // Sugiyama draws top-down; ours is left to right, so width and height swap going in and
    // coordinates swap coming out. Each layer is as deep as its widest node plus a gap.
    let swapped: Vec<(u32, (f64, f64))> = vertices
        .iter()
        .map(|&(v, (w, h))| (v, (h, w + LAYER_GAP)))
        .collect();
    let components =
        rust_sugiyama::from_vertices_and_edges(&swapped, edges, &config(vertices.len()));
    let (mut top, mut width) = (0.0f64, 0.0f64);
    for (coords, _, _) in components {
        let placed: Vec<(usize, f64, f64)> = coords
            .iter()
            .filter_map(|&(i, (sx, sy))| {
                let (w, h) = vertices.get(i)?.1;
                // Center (sx, sy) in Sugiyama's frame is (sy, sx) in ours.
                Some((i, sy - w / 2.0, sx - h / 2.0))
            })
            .collect();
        let min_x = placed.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let min_y = placed.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
        let mut bottom = top;
        for &(i, x, y) in &placed {
            let (w, h) = vertices[i].1;
            at[i] = (x - min_x, y - min_y + top);
            width = width.max(x - min_x + w);
            bottom = bottom.max(y - min_y + top + h);
        }
        top = bottom + NODE_GAP * 2.0;
    }
    (at, width, (top - NODE_GAP * 2.0).max(0.0))
}

/// Lays out `graph`: see the module docs.
pub fn layout_graph(graph: &AssetGraph) -> GraphLayout {
    let all: Vec<usize> = (0..graph.len()).collect();
    layout_of(graph, &all)
}

/// Lays out the assets `ids` of `graph` and the edges between them (a job's assets): node
/// `i` of the layout is asset `ids[i]`.
pub fn layout_of(graph: &AssetGraph, ids: &[usize]) -> GraphLayout {
    let nodes: Vec<&orch_core::AssetNode> = ids.iter().map(|&id| graph.node(id)).collect();
    let local_of: std::collections::HashMap<usize, usize> =
        ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut names: BTreeMap<&'static str, usize> = BTreeMap::new();
    for node in &nodes {
        let next = names.len();
        names.entry(node.group()).or_insert(next);
    }
    // Group indices in name order.
    let order: Vec<&'static str> = names.keys().copied().collect();
    let group_of: Vec<usize> = nodes
        .iter()
        .map(|n| order.binary_search(&n.group()).unwrap_or(0))
        .collect();
    let edges: Vec<(usize, usize)> = nodes
        .iter()
        .enumerate()
        .flat_map(|(to, n)| {
            let local_of = &local_of;
            n.upstream
                .iter()
                .filter_map(move |up| local_of.get(up).map(|&from| (from, to)))
        })
        .collect();
    let widths: Vec<f64> = nodes
        .iter()
        .map(|n| node_width(&n.key.to_string()))
        .collect();
    // Level one: inside each group.
    let mut local = vec![(0.0, 0.0); nodes.len()];
    let mut sizes = Vec::with_capacity(order.len());
    for g in 0..order.len() {
        let members: Vec<usize> = (0..nodes.len()).filter(|&i| group_of[i] == g).collect();
        let vertices: Vec<(u32, (f64, f64))> = members
            .iter()
            .map(|&i| (i as u32, (widths[i], NODE_H)))
            .collect();
        let inner: Vec<(u32, u32)> = edges
            .iter()
            .filter(|&&(a, b)| group_of[a] == g && group_of[b] == g)
            .map(|&(a, b)| (a as u32, b as u32))
            .collect();
        let (at, w, h) = layered(&vertices, &inner);
        for (k, &i) in members.iter().enumerate() {
            local[i] = at[k];
        }
        sizes.push((
            w + 2.0 * GROUP_PAD,
            h + 2.0 * GROUP_PAD + GROUP_HEADER,
            members.len(),
        ));
    }
    // Level two: the groups.
    let mut group_edges: Vec<(usize, usize)> = edges
        .iter()
        .map(|&(a, b)| (group_of[a], group_of[b]))
        .filter(|(a, b)| a != b)
        .collect();
    group_edges.sort_unstable();
    group_edges.dedup();
    let vertices: Vec<(u32, (f64, f64))> = sizes
        .iter()
        .enumerate()
        .map(|(g, &(w, h, _))| (g as u32, (w + GROUP_GAP - LAYER_GAP, h)))
        .collect();
    let ge: Vec<(u32, u32)> = group_edges
        .iter()
        .map(|&(a, b)| (a as u32, b as u32))
        .collect();
    let (placed, width, height) = layered(&vertices, &ge);
    let groups: Vec<GroupBox> = order
        .iter()
        .enumerate()
        .map(|(g, &name)| GroupBox {
            name,
            x: placed[g].0 + GROUP_GAP / 2.0,
            y: placed[g].1 + GROUP_GAP / 2.0,
            w: sizes[g].0,
            h: sizes[g].1,
            assets: sizes[g].2,
        })
        .collect();
    let boxes = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let g = &groups[group_of[i]];
            NodeBox {
                key: n.key.to_string(),
                group: group_of[i],
                x: g.x + GROUP_PAD + local[i].0,
                y: g.y + GROUP_PAD + GROUP_HEADER + local[i].1,
                w: widths[i],
            }
        })
        .collect();
    GraphLayout {
        width: width + GROUP_GAP,
        height: height + GROUP_GAP,
        nodes: boxes,
        groups,
        edges,
        group_edges,
    }
}

/// XML-escapes text for an attribute or an element.
fn esc(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

/// Shortens a label to fit its box.
fn label(key: &str) -> String {
    match key.chars().count() {
        n if n <= 34 => key.to_owned(),
        _ => {
            let tail: String = key
                .chars()
                .rev()
                .take(32)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        }
    }
}

impl GraphLayout {
    /// The SVG of the graph, statuses left to the page's script (so this string is built once
    /// and served as is). With `collapsed`, every group starts collapsed and its members are
    /// not in it: the page asks for them ([`GraphLayout::group_svg`]) when a group opens, so
    /// a graph of 10,000 assets costs the browser its group boxes only.
    pub fn svg(&self, collapsed: bool) -> String {
        let mut s = String::with_capacity(match collapsed {
            true => self.groups.len() * 600 + 4096,
            false => self.nodes.len() * 320 + 4096,
        });
        let _ = write!(
            s,
            r#"<svg id="lineage" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0} {h:.0}" data-width="{w:.0}" data-height="{h:.0}" role="img" aria-label="Lineage graph of {n} assets"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs><g class="viewport">"#,
            w = self.width.max(1.0),
            h = self.height.max(1.0),
            n = self.nodes.len()
        );
        for (g, group) in self.groups.iter().enumerate() {
            let _ = write!(
                s,
                r#"<g class="group{c}" data-g="{g}" data-name="{name}"{lazy}><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="8"/><text class="group-label" x="{tx:.1}" y="{ty:.1}" tabindex="0" role="button" aria-label="Group {name}: {n} assets (Enter expands or collapses)">{name} · {n}</text></g>"#,
                c = if collapsed { " collapsed" } else { "" },
                lazy = if collapsed { r#" data-lazy="1""# } else { "" },
                name = esc(group.name),
                x = group.x,
                y = group.y,
                w = group.w,
                h = group.h,
                tx = group.x + 10.0,
                ty = group.y + 18.0,
                n = group.assets
            );
        }
        s.push_str(r#"<g class="group-edges">"#);
        for &(a, b) in &self.group_edges {
            let (ga, gb) = (&self.groups[a], &self.groups[b]);
            let from = (ga.x + ga.w, ga.y + ga.h / 2.0);
            let to = (gb.x, gb.y + gb.h / 2.0);
            let _ = write!(
                s,
                r#"<path data-a="{a}" data-b="{b}" d="{}" marker-end="url(#arrow)"/>"#,
                curve(from, to)
            );
        }
        s.push_str(r#"</g><g class="edges">"#);
        if !collapsed {
            for &(a, b) in &self.edges {
                self.edge(&mut s, a, b);
            }
        }
        s.push_str(r#"</g><g class="nodes">"#);
        if !collapsed {
            for i in 0..self.nodes.len() {
                self.node(&mut s, i);
            }
        }
        s.push_str("</g></g></svg>");
        s
    }

    /// Group `g`'s members and every edge that touches them, as the two parts the page puts
    /// into its `edges` and `nodes` layers: `<g class="edges">...</g><g class="nodes">...</g>`
    /// inside an `<svg>` (so it parses on its own). `None` if there is no group `g`.
    pub fn group_svg(&self, g: usize) -> Option<String> {
        self.groups.get(g)?;
        let mut s = String::from(r#"<svg xmlns="http://www.w3.org/2000/svg"><g class="edges">"#);
        for &(a, b) in &self.edges {
            if self.nodes[a].group == g || self.nodes[b].group == g {
                self.edge(&mut s, a, b);
            }
        }
        s.push_str(r#"</g><g class="nodes">"#);
        for (i, node) in self.nodes.iter().enumerate() {
            if node.group == g {
                self.node(&mut s, i);
            }
        }
        s.push_str("</g></svg>");
        Some(s)
    }

    fn edge(&self, s: &mut String, a: usize, b: usize) {
        let (na, nb) = (&self.nodes[a], &self.nodes[b]);
        let from = (na.x + na.w, na.y + NODE_H / 2.0);
        let to = (nb.x, nb.y + NODE_H / 2.0);
        let _ = write!(
            s,
            r#"<path data-a="{a}" data-b="{b}" data-ga="{}" data-gb="{}" d="{}" marker-end="url(#arrow)"/>"#,
            na.group,
            nb.group,
            curve(from, to)
        );
    }

    fn node(&self, s: &mut String, i: usize) {
        let node = &self.nodes[i];
        let _ = write!(
            s,
            r#"<g class="node" id="n{i}" data-i="{i}" data-g="{g}" data-key="{key}" transform="translate({x:.1},{y:.1})" tabindex="0" role="link" aria-label="{key}"><rect width="{w:.1}" height="{NODE_H}" rx="6"/><circle cx="14" cy="{cy}" r="5"/><text x="26" y="{ty}">{label}</text></g>"#,
            g = node.group,
            key = esc(&node.key),
            x = node.x,
            y = node.y,
            w = node.w,
            cy = NODE_H / 2.0,
            ty = NODE_H / 2.0 + 4.5,
            label = esc(&label(&node.key))
        );
    }
}

/// A left-to-right Bézier curve between two points.
fn curve((x1, y1): (f64, f64), (x2, y2): (f64, f64)) -> String {
    let dx = ((x2 - x1) / 2.0).abs().max(30.0);
    format!(
        "M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}",
        x1 + dx,
        x2 - dx
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
        a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
    }

    #[test]
    fn a_chain_goes_left_to_right_and_nothing_overlaps() {
        // a -> b -> c, and d alone.
        let vertices: Vec<(u32, (f64, f64))> = (0..4).map(|i| (i, (120.0, NODE_H))).collect();
        let (at, w, h) = layered(&vertices, &[(0, 1), (1, 2)]);
        assert!(at[0].0 < at[1].0 && at[1].0 < at[2].0, "{at:?}");
        for i in 0..4 {
            for j in i + 1..4 {
                let a = (at[i].0, at[i].1, 120.0, NODE_H);
                let b = (at[j].0, at[j].1, 120.0, NODE_H);
                assert!(!overlaps(a, b), "{i} and {j} overlap: {at:?}");
            }
        }
        for &(x, y) in &at {
            assert!(x >= 0.0 && y >= 0.0 && x + 120.0 <= w + 0.01 && y + NODE_H <= h + 0.01);
        }
    }

    #[test]
    fn vertices_keep_their_places_whatever_their_ids() {
        // A group's members have the graph's ids, not 0..n.
        let vertices = [(9, (200.0, NODE_H)), (4, (120.0, NODE_H))];
        let (at, w, _) = layered(&vertices, &[(4, 9)]);
        assert!(
            at[1].0 + 120.0 <= at[0].0,
            "4 feeds 9, so 4 is left of it: {at:?}"
        );
        assert!(w >= 320.0, "{w}");
    }

    #[test]
    fn collapsed_groups_leave_their_members_to_be_asked_for() {
        let layout = GraphLayout {
            width: 10.0,
            height: 10.0,
            nodes: vec![
                NodeBox {
                    key: "a".into(),
                    group: 0,
                    x: 0.0,
                    y: 0.0,
                    w: 120.0,
                },
                NodeBox {
                    key: "b<&>".into(),
                    group: 1,
                    x: 200.0,
                    y: 0.0,
                    w: 120.0,
                },
            ],
            groups: ["one", "two"]
                .iter()
                .map(|&name| GroupBox {
                    name,
                    x: 0.0,
                    y: 0.0,
                    w: 1.0,
                    h: 1.0,
                    assets: 1,
                })
                .collect(),
            edges: vec![(0, 1)],
            group_edges: vec![(0, 1)],
        };
        let open = layout.svg(false);
        assert_eq!(open.matches(r#"class="node""#).count(), 2);
        let closed = layout.svg(true);
        assert_eq!(closed.matches(r#"class="node""#).count(), 0);
        assert_eq!(closed.matches(r#"data-lazy="1""#).count(), 2);
        let two = layout.group_svg(1).unwrap();
        assert_eq!(two.matches(r#"class="node""#).count(), 1);
        assert!(two.contains("b&lt;&amp;&gt;"), "keys are escaped: {two}");
        assert_eq!(
            two.matches(r#"data-a="0" data-b="1""#).count(),
            1,
            "the edge into it"
        );
        assert!(layout.group_svg(2).is_none());
    }

    #[test]
    fn nothing_to_lay_out_is_empty() {
        assert_eq!(layered(&[], &[]), (vec![], 0.0, 0.0));
    }

    #[test]
    fn long_keys_are_shortened_from_the_left() {
        let key = "a".repeat(10) + &"b".repeat(40);
        let l = label(&key);
        assert!(l.starts_with('…') && l.ends_with('b'));
        assert_eq!(l.chars().count(), 33);
        assert_eq!(label("short"), "short");
    }
}
