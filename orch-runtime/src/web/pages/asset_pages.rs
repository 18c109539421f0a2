//! Assets: the list, the lineage graph, one asset (its plots and partition bar).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use maud::{Markup, PreEscaped, html};

use crate::web::api::{AssetQuery, matches};
use crate::web::data::{self, AssetSummary};
use crate::web::graph::GraphLayout;
use crate::web::{Ui, blocking};

use super::*;

fn materialize_buttons() -> Markup {
    html! {
        div.actions {
            button data-action="materialize-selected" disabled { "Materialize selected" }
            button data-post="/api/materialize" data-body=r#"{"stale":true}"# data-go="run" { "Materialize stale" }
            button data-post="/api/materialize" data-body="{}" data-go="run" data-confirm="Materialize every asset?" { "Materialize all" }
        }
    }
}

fn asset_row(a: &AssetSummary) -> Markup {
    html! {
        tr data-key=(a.key) {
            td { input type="checkbox" class="pick" value=(a.key) aria-label=(format!("Select {}", a.key)); }
            td { a href=(format!("/assets/{}", a.key)) { (a.key) } }
            td { (a.group) }
            td { (badge(a.status)) }
            td { @if let Some(t) = &a.last_materialized { time datetime=(t) { (t) } } @else { "–" } }
            td { @if let Some(s) = &a.stale { span.warn title=(s) { "stale" } } @else { "up to date" } }
            td { @match a.freshness { Some(f) => (badge(f)), None => "–" } }
            td {
                @if a.checks.passed + a.checks.warned + a.checks.failed == 0 { "–" } @else {
                    span.ok { (a.checks.passed) "✓" }
                    @if a.checks.warned > 0 { " " span.warn { (a.checks.warned) "!" } }
                    @if a.checks.failed > 0 { " " span.bad { (a.checks.failed) "✗" } }
                }
            }
        }
    }
}

pub(crate) async fn assets(State(ui): State<Arc<Ui>>, Query(q): Query<AssetQuery>) -> Page {
    let all = blocking(&ui, data::asset_summaries).await?;
    let total = all.len();
    let query = q.q.clone().unwrap_or_default();
    let shown: Vec<&AssetSummary> = all.iter().filter(|a| matches(a, q.q.as_deref())).collect();
    let body = html! {
        h1 { "Assets" }
        div.toolbar {
            form.search role="search" method="get" action="/assets" {
                input type="search" name="q" value=(query) placeholder="Search keys and groups" aria-label="Search assets";
                button type="submit" { "Search" }
            }
            a.button href="/lineage" { "Lineage graph" }
            (materialize_buttons())
        }
        p.muted { (shown.len()) " of " (total) " assets" }
        div.scroll { table #asset-list.assets {
            thead { tr {
                th { input type="checkbox" #pick-all aria-label="Select all shown"; }
                th { "Asset" } th { "Group" } th { "Status" } th { "Last materialized" }
                th { "Staleness" } th { "Freshness" } th { "Checks" }
            } }
            tbody { @for a in &shown { (asset_row(a)) } }
        } }
    };
    Ok(frame(&ui, "assets", "Assets", true, body))
}

/// `/lineage?collapse=1` starts with every group collapsed whatever the graph's size.
#[derive(serde::Deserialize)]
pub(crate) struct LineageQuery {
    collapse: Option<u8>,
}

pub(crate) async fn lineage(State(ui): State<Arc<Ui>>, Query(q): Query<LineageQuery>) -> Page {
    let (layout, svg) = blocking(&ui, move |ui| {
        let layout = ui.layout();
        let collapsed = q.collapse == Some(1) || layout.nodes.len() > COLLAPSE_ABOVE;
        Ok((Arc::clone(&layout), ui.lineage_svg(&layout, collapsed)))
    })
    .await?;
    let body = html! {
        div.toolbar {
            h1 { "Lineage" }
            input #graph-filter type="search" placeholder="Highlight assets" aria-label="Highlight assets by key";
            button data-action="expand-all" { "Expand groups" }
            button data-action="collapse-all" { "Collapse groups" }
            button data-action="fit" { "Fit" }
            (materialize_buttons())
        }
        p.muted {
            (layout.nodes.len()) " assets in " (layout.groups.len()) " groups. "
            "Click an asset to open it; Ctrl- or Shift-click (or Space) selects; drag to pan, wheel to zoom; a group's name expands or collapses it."
        }
        div #graph.graph { (PreEscaped(svg.as_str())) }
    };
    Ok(frame(&ui, "assets", "Lineage", true, body))
}

impl Ui {
    /// The lineage SVG, built once for each way of starting (groups open, or collapsed with
    /// their members on demand).
    fn lineage_svg(&self, layout: &GraphLayout, collapsed: bool) -> Arc<String> {
        Arc::clone(self.svg[usize::from(collapsed)].get_or_init(|| Arc::new(layout.svg(collapsed))))
    }
}

/// A line plot of one series, as inline SVG.
fn plot(name: &str, points: &[(i64, f64)]) -> Markup {
    let (w, h, pad) = (320.0, 90.0, 6.0);
    let (t0, t1) = (
        points.first().map_or(0, |p| p.0),
        points.last().map_or(0, |p| p.0),
    );
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let x = |t: i64| match t1 - t0 {
        0 => w / 2.0,
        span => pad + (t - t0) as f64 / span as f64 * (w - 2.0 * pad),
    };
    let y = |v: f64| match hi - lo {
        d if d <= 0.0 => h / 2.0,
        d => h - pad - (v - lo) / d * (h - 2.0 * pad),
    };
    let path: Vec<String> = points
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect();
    let last = points.last().map_or(0.0, |p| p.1);
    html! {
        figure.plot {
            figcaption { (name) ": " strong { (format_number(last)) }
                span.muted { " (" (points.len()) " points, " (format_number(lo)) "–" (format_number(hi)) ")" } }
            svg viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(format!("{name} over time")) {
                polyline points=(path.join(" ")) {}
                @for &(t, v) in points {
                    circle cx=(format!("{:.1}", x(t))) cy=(format!("{:.1}", y(v))) r="2.5" { title { (format_number(v)) } }
                }
            }
        }
    }
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.3}")
    }
}

pub(crate) async fn asset(State(ui): State<Arc<Ui>>, Path(key): Path<String>) -> Page {
    let d = blocking(&ui, move |ui| data::asset_detail(ui, &key)).await?;
    let a = &d.summary;
    let body = html! {
        div.toolbar {
            h1.mono { (a.key) }
            (badge(a.status))
            @if a.partitions.is_none() {
                button data-post="/api/materialize" data-body=(serde_json::json!({"assets": [a.key]}).to_string()) data-go="run" { "Materialize" }
            }
            button data-post="/api/materialize" data-body=(serde_json::json!({"selection": format!("+{}", a.key), "stale": true}).to_string()) data-go="run" { "Materialize stale upstream" }
        }
        @if let Some(desc) = a.description { p.description { (desc) } }
        dl.facts {
            dt { "Group" } dd { (a.group) }
            dt { "Output" } dd.mono { (d.output_type) }
            dt { "Code version" } dd.mono { (d.code_version) }
            dt { "Defined at" } dd.mono { (d.source) }
            @if !d.owners.is_empty() { dt { "Owners" } dd { (d.owners.join(", ")) } }
            @if !d.tags.is_empty() { dt { "Tags" } dd { @for (k, v) in &d.tags { span.tag { (k) "=" (v) } " " } } }
            dt { "Staleness" } dd { @match &a.stale { Some(s) => span.warn { "stale: " (s) }, None => "up to date" } }
            @if let Some(p) = &d.freshness_policy {
                dt { "Freshness" } dd { (p) " · " @if let Some(f) = a.freshness { (badge(f)) } " " (a.freshness_detail.clone().unwrap_or_default()) }
            }
            @if let Some(c) = &d.automation { dt { "Automation" } dd.mono { (c) } }
            @if let Some(p) = &a.partitions { dt { "Partitions" } dd { (p) } }
        }
        section.split {
            div { h2 { "Upstream" }
                @if a.upstream.is_empty() { p.empty { "None." } }
                ul.plain { @for k in &a.upstream { li { a href=(format!("/assets/{k}")) { (k) } } } } }
            div { h2 { "Downstream" }
                @if a.downstream.is_empty() { p.empty { "None." } }
                ul.plain { @for k in &a.downstream { li { a href=(format!("/assets/{k}")) { (k) } } } } }
        }
        @if let Some(bar) = &d.partitions {
            h2 { "Partitions" }
            p { (bar.definition) ": " (bar.total) " partitions · "
                span.ok { (bar.materialized) " materialized" } " · "
                span.bad { (bar.failed) " failed" } " · "
                span.muted { (bar.missing) " missing" } }
            (partition_bar(bar))
            @if bar.bucketed {
                p.muted { "Each segment is about " (bar.total.div_ceil(data::BAR_SEGMENTS)) " partitions, drawn in the state most of them are in (failed if any failed). Click one to fill the range." }
            }
            form.backfill data-asset=(a.key) {
                label { "From " input name="from" required value=(bar.spans.first().map(|s| s.first.as_str()).unwrap_or("")); }
                label { "to " input name="to" required value=(bar.spans.last().map(|s| s.last.as_str()).unwrap_or("")); }
                button type="submit" { "Backfill this range" }
            }
        }
        @if let Some(preview) = &d.preview {
            h2 { "Preview" }
            pre.preview-table { (preview) }
            @if let Some(schema) = &d.schema { details { summary { "Schema" } pre { (schema) } } }
        }
        @if !d.series.is_empty() {
            h2 { "Metadata over time" }
            div.plots { @for (name, points) in &d.series { (plot(name, points)) } }
        }
        h2 { "Materializations" }
        @if d.materializations.is_empty() { p.empty { "Never materialized." } } @else {
            div.scroll { table {
                thead { tr { th { "When" } th { "Run" } th { "Partition" } th.num { "Duration" } th { "Data version" } th { "Metadata" } } }
                tbody { @for m in &d.materializations { tr {
                    td { time datetime=(m.at) { (m.at) } }
                    td { a.mono href=(format!("/runs/{}", m.run_id)) { (m.run_short) } }
                    td { (m.partition.clone().unwrap_or_default()) }
                    td.num { (duration(m.duration_ms.map(|d| d as i64))) }
                    td.mono { (m.data_version.as_deref().map(|v| prefix(v, 12)).unwrap_or("")) }
                    td { @for (k, v) in &m.metadata { span.tag { (k) "=" (v) } " " } }
                } } }
            } }
        }
        h2 { "Checks" }
        @if d.checks.is_empty() { p.empty { "No check results." } } @else {
            div.scroll { table {
                thead { tr { th { "Check" } th { "Result" } th { "Severity" } th { "When" } th { "Run" } th { "Detail" } } }
                tbody { @for c in &d.checks { tr {
                    td.mono { (c.check) @if c.blocking { " " span.tag { "blocking" } } }
                    td { @if c.passed { span.badge.st-pass { "passed" } } @else { span class=(format!("badge st-{}", if c.severity == "warn" { "warn" } else { "fail" })) { "failed" } } }
                    td { (c.severity) }
                    td { time datetime=(c.at) { (c.at) } }
                    td { a.mono href=(format!("/runs/{}", c.run_id)) { (prefix(&c.run_id, 8)) } }
                    td { (c.detail) }
                } } }
            } }
        }
        @if let Some(e) = &d.evaluation {
            h2 { "Automation" }
            p { "Condition " code { (e.condition) } ", evaluated " time datetime=(e.evaluated) { (e.evaluated) } ": "
                @if e.requested { strong.ok { "requested a run" } } @else { "did not request a run" }
                @if let (Some(at), Some(run)) = (&e.last_requested, &e.last_run) {
                    " · last requested " (at) " (run " a.mono href=(format!("/runs/{run}")) { (prefix(run, 8)) } ")"
                } }
            pre.tree { (e.tree) }
        }
    };
    Ok(frame(&ui, "assets", &d.summary.key, true, body))
}

/// The partition bar: one segment per span, widths proportional to their counts.
fn partition_bar(bar: &data::PartitionBar) -> Markup {
    let total = bar.total.max(1) as f64;
    let mut x = 0.0;
    let segments: Vec<(f64, f64, &data::BarSegment)> = bar
        .spans
        .iter()
        .map(|span| {
            let w = span.count as f64 / total * 1000.0;
            x += w;
            (x - w, w, span)
        })
        .collect();
    html! {
        svg.partitions viewBox="0 0 1000 24" preserveAspectRatio="none" role="img" aria-label="Partition status" {
            @for (x, w, s) in segments {
                rect class=(format!("p-{}", s.state)) x=(format!("{x:.2}")) y="0" width=(format!("{:.2}", w.max(0.5))) height="24"
                    data-first=(s.first) data-last=(s.last) {
                    title { (s.state) ": " (s.first) @if s.count > 1 { " … " (s.last) } " (" (s.count) ")" }
                }
            }
        }
    }
}
