//! `lineage`: the graph as text, Graphviz DOT or Mermaid.

use std::collections::BTreeMap;
use std::fmt::Write;

use orch_core::AssetGraph;

use super::LineageFormat;

/// Renders the selected assets and the edges between them.
pub(super) fn render(
    graph: &AssetGraph,
    ids: &[usize],
    format: LineageFormat,
    stale: &[Option<crate::StaleReason>],
) -> String {
    let mut selected = vec![false; graph.len()];
    for &id in ids {
        selected[id] = true;
    }
    let order: Vec<usize> = graph
        .topological_order()
        .iter()
        .copied()
        .filter(|&id| selected[id])
        .collect();
    let mut out = String::new();
    match format {
        LineageFormat::Text => {
            for &id in &order {
                let node = graph.node(id);
                let _ = write!(out, "{}  [{}]", node.key, node.group());
                let ups: Vec<String> = node
                    .upstream
                    .iter()
                    .filter(|&&u| selected[u])
                    .map(|&u| graph.node(u).key.to_string())
                    .collect();
                if !ups.is_empty() {
                    let _ = write!(out, "  <- {}", ups.join(", "));
                }
                if let Some(reason) = &stale[id] {
                    let _ = write!(out, "  (stale: {reason})");
                }
                out.push('\n');
            }
        }
        LineageFormat::Dot => {
            out.push_str("digraph assets {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for &id in &order {
                groups.entry(graph.node(id).group()).or_default().push(id);
            }
            for (i, (group, members)) in groups.iter().enumerate() {
                let _ = writeln!(out, "  subgraph cluster_{i} {{\n    label=\"{group}\";");
                for &id in members {
                    let style = if stale[id].is_some() {
                        " [style=\"rounded,dashed\"]"
                    } else {
                        ""
                    };
                    let _ = writeln!(out, "    \"{}\"{style};", graph.node(id).key);
                }
                out.push_str("  }\n");
            }
            for &id in &order {
                for &up in &graph.node(id).upstream {
                    if selected[up] {
                        let _ = writeln!(
                            out,
                            "  \"{}\" -> \"{}\";",
                            graph.node(up).key,
                            graph.node(id).key
                        );
                    }
                }
            }
            out.push_str("}\n");
        }
        LineageFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            let ident = |id: usize| format!("n{id}");
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for &id in &order {
                groups.entry(graph.node(id).group()).or_default().push(id);
            }
            for (group, members) in &groups {
                let _ = writeln!(out, "  subgraph {group}");
                for &id in members {
                    let _ = writeln!(out, "    {}[\"{}\"]", ident(id), graph.node(id).key);
                }
                out.push_str("  end\n");
            }
            for &id in &order {
                for &up in &graph.node(id).upstream {
                    if selected[up] {
                        let _ = writeln!(out, "  {} --> {}", ident(up), ident(id));
                    }
                }
            }
        }
    }
    out
}
