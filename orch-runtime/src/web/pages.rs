//! The HTML pages, rendered on the server from the same views as `/api/...`. One embedded
//! script (`static/app.js`) adds live updates, actions, the graph's pan, zoom and highlight,
//! and log streaming; without it every page still reads.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::api::{AssetQuery, RunQuery, matches};
use super::data::{self, AssetSummary, RunSummary};
use super::graph::GraphLayout;
use super::{Ui, WebError, WebMode, blocking};

/// Above this many assets the lineage graph starts with its groups collapsed.
const COLLAPSE_ABOVE: usize = 2_000;

const SCRIPT: &str = include_str!("static/app.js");
const STYLE: &str = include_str!("static/style.css");

pub(crate) async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

pub(crate) async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

/// An error as a page (the API answers JSON).
pub(crate) struct PageError(WebError);

impl From<WebError> for PageError {
    fn from(e: WebError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!("web UI: {}", self.0);
        }
        let body = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "orch: " (status.as_u16()) }
                    link rel="stylesheet" href="/static/style.css";
                }
                body {
                    main #main {
                        h1 { (status.canonical_reason().unwrap_or("Error")) }
                        p.error { (self.0.to_string()) }
                        p { a href="/" { "Back to the overview" } }
                    }
                }
            }
        };
        (status, Html(body.into_string())).into_response()
    }
}

pub(crate) type Page = Result<Html<String>, PageError>;

/// The frame every page shares: navigation naming the tabs, the CSRF token, the script.
fn frame(ui: &Ui, tab: &str, title: &str, live: bool, body: Markup) -> Html<String> {
    let tabs = [
        ("overview", "/", "Overview"),
        ("assets", "/assets", "Assets"),
        ("jobs", "/jobs", "Jobs"),
        ("schedules", "/schedules", "Schedules"),
        ("runs", "/runs", "Runs"),
    ];
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="csrf" content=(ui.csrf);
                    meta name="color-scheme" content="light dark";
                    // No favicon request (a 404 in the console on every page).
                    link rel="icon" href="data:,";
                    title { (title) " · orch" }
                    link rel="stylesheet" href="/static/style.css";
                    script src="/static/app.js" defer {}
                }
                body data-tab=(tab) data-live=[live.then_some("1")] {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "orch" }
                        nav aria-label="Main" {
                            @for (id, href, name) in tabs {
                                a href=(href) aria-current=[(id == tab).then_some("page")] { (name) }
                            }
                        }
                        span #conn.conn title="Live updates" aria-hidden="true" {}
                        @if ui.mode == WebMode::UiOnly {
                            span.mode title="Started with `ui`: schedules and sensors are read-only here" { "ui" }
                        }
                    }
                    main #main { (body) }
                    div #toast role="status" aria-live="polite" {}
                }
            }
        }
        .into_string(),
    )
}

fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge st-{status}")) { (status) } }
}

fn run_link(r: &RunSummary) -> Markup {
    html! { a.mono href=(format!("/runs/{}", r.id)) { (r.short) } }
}

/// The first `n` characters of `text` (ids and versions, shortened for a table).
fn prefix(text: &str, n: usize) -> &str {
    text.char_indices().nth(n).map_or(text, |(i, _)| &text[..i])
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "–".to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn runs_table(runs: &[RunSummary]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.empty { "No runs." }
        } @else {
            div.scroll { table.runs {
                thead { tr {
                    th { "Run" } th { "Status" } th { "Target" } th { "Trigger" }
                    th { "Started" } th.num { "Duration" } th.num { "Assets" }
                } }
                tbody {
                    @for r in runs {
                        tr data-run=(r.id) {
                            td { (run_link(r)) }
                            td { (badge(r.status)) }
                            td.target { (r.target) }
                            td { (r.trigger) }
                            td { time datetime=(r.started) { (r.started) } }
                            td.num { (duration(r.duration_ms)) }
                            td.num {
                                (r.materialized) "/" (r.planned)
                                @if r.failed > 0 { " · " span.bad { (r.failed) " failed" } }
                            }
                        }
                    }
                }
            } }
        }
    }
}

pub(crate) async fn overview(State(ui): State<Arc<Ui>>) -> Page {
    let o = blocking(&ui, data::overview).await?;
    let h = &o.health;
    let body = html! {
        h1 { "Overview" }
        section.cards aria-label="Asset health" {
            a.card href="/assets" { strong { (h.assets) } span { "assets" } }
            a.card href="/assets" { strong { (h.materialized) } span { "materialized" } }
            a.card.warn[h.stale > 0] href="/assets?q=" { strong { (h.stale) } span { "stale" } }
            a.card.bad[h.failed > 0] href="/assets" { strong { (h.failed) } span { "failed" } }
            div.card { strong { (h.fresh) } span { "fresh" } }
            div.card.warn[h.freshness_warn > 0] { strong { (h.freshness_warn) } span { "freshness warnings" } }
            div.card.bad[h.freshness_fail > 0] { strong { (h.freshness_fail) } span { "overdue" } }
            div.card.bad[h.checks_failed > 0] { strong { (h.checks_failed) } span { "failed checks" } }
        }
        section.split {
            div {
                h2 { "Daemon" }
                @match &o.daemon {
                    Some(d) => p {
                        span class=(if d.alive { "dot ok" } else { "dot bad" }) {}
                        (d.holder) " · last heartbeat " time datetime=(d.heartbeat) { (d.heartbeat) }
                        @if !d.alive { " · " strong.bad { "not running" } }
                    },
                    None => p { span.dot.bad {} "No daemon has run on this store (`dev` or `daemon` starts one)." },
                }
                @if o.paused { p.warn { "Automation is paused." } }
            }
            div {
                h2 { "Next ticks" }
                @if o.next_ticks.is_empty() { p.empty { "No schedules." } }
                ul.plain {
                    @for t in &o.next_ticks {
                        li { a href="/schedules" { (t.schedule) } " · " (t.at)
                            @if !t.running { " · " span.muted { "stopped" } } }
                    }
                }
            }
        }
        h2 { "In progress" }
        (runs_table(&o.in_progress))
        h2 { "Recent failures" }
        (runs_table(&o.recent_failures))
        h2 { "Recent runs" }
        (runs_table(&o.recent_runs))
    };
    Ok(frame(&ui, "overview", "Overview", true, body))
}

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

pub(crate) async fn runs(State(ui): State<Arc<Ui>>, Query(q): Query<RunQuery>) -> Page {
    let filter = q.filter()?;
    let page = blocking(&ui, move |ui| data::runs_page(ui, &filter)).await?;
    let next = page.next.as_ref().map(|cursor| {
        let mut params: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("status", &q.status),
            ("trigger", &q.trigger),
            ("job", &q.job),
            ("tag", &q.tag),
            ("since", &q.since),
            ("before", &q.before),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                params.push((k, v.clone()));
            }
        }
        if let Some(limit) = q.limit {
            params.push(("limit", limit.to_string()));
        }
        params.push(("cursor", cursor.clone()));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        format!("/runs?{}", query.join("&"))
    });
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "Status "
                select name="status" {
                    option value="" { "any" }
                    @for s in ["queued", "running", "succeeded", "failed", "canceled", "crashed"] {
                        option value=(s) selected[q.status.as_deref() == Some(s)] { (s) }
                    }
                } }
            label { "Trigger "
                select name="trigger" {
                    option value="" { "any" }
                    @for t in ["manual", "schedule", "sensor", "automation", "backfill", "reexecution"] {
                        option value=(t) selected[q.trigger.as_deref() == Some(t)] { (t) }
                    }
                } }
            label { "Job " input name="job" value=(v(&q.job)) size="12"; }
            label { "Tag " input name="tag" value=(v(&q.tag)) placeholder="key=value" size="14"; }
            label { "Since " input name="since" value=(v(&q.since)) placeholder="2026-01-01T00:00:00Z" size="20"; }
            button type="submit" { "Filter" }
        }
        (runs_table(&page.runs))
        @if let Some(next) = next { p { a.button href=(next) { "Older runs →" } } }
    };
    Ok(frame(&ui, "runs", "Runs", true, body))
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The run's per-asset timeline, as SVG (bars from each step's start to its end, or to now).
fn gantt(d: &data::RunDetail) -> Markup {
    let now = d.run.duration_ms.unwrap_or_else(|| {
        let started = d.run.started_ms;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(started, |t| i64::try_from(t.as_millis()).unwrap_or(started));
        now - started
    });
    let span = d
        .steps
        .iter()
        .filter_map(|s| s.end_ms)
        .chain([now])
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (row, label_w, w) = (22.0, 220.0, 900.0);
    let h = d.steps.len() as f64 * row + 24.0;
    html! {
        svg.gantt viewBox=(format!("0 0 {} {h}", label_w + w + 10.0)) role="img" aria-label="Timeline of the run's assets" {
            @for (i, s) in d.steps.iter().enumerate() {
                @let y = i as f64 * row;
                @let x0 = s.start_ms.unwrap_or(0) as f64 / span * w;
                @let x1 = s.end_ms.map_or(now, |e| e) as f64 / span * w;
                text x="0" y=(format!("{:.1}", y + 15.0)) class="label" {
                    (s.asset) @if let Some(p) = &s.partition { " [" (p) "]" } }
                @if s.start_ms.is_some() {
                    rect class=(format!("bar st-{}", s.status)) x=(format!("{:.1}", label_w + x0))
                        y=(format!("{:.1}", y + 4.0)) width=(format!("{:.1}", (x1 - x0).max(2.0))) height="14" rx="3" {
                        title { (s.asset) ": " (s.status) ", " (duration(s.end_ms.map(|e| e - s.start_ms.unwrap_or(0)))) }
                    }
                }
            }
            text x=(label_w) y=(format!("{:.1}", h - 4.0)) class="axis" { "0" }
            text x=(label_w + w) y=(format!("{:.1}", h - 4.0)) class="axis" text-anchor="end" { (duration(Some(span as i64))) }
        }
    }
}

pub(crate) async fn run(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Page {
    let (d, logs) = blocking(&ui, move |ui| {
        let d = data::run_detail(ui, &id)?;
        let logs = data::log_page(ui, &d.run.id, None, None, 500)?;
        Ok((d, logs))
    })
    .await?;
    let r = &d.run;
    let last_seq = d.events.last().map_or(0, |e| e.seq);
    let last_log = logs.last().map_or(0, |l| l.id);
    let first_log = logs.first().map_or(0, |l| l.id);
    let body = html! {
        section #summary data-refresh="#summary" {
            div.toolbar {
                h1 { "Run " span.mono { (r.short) } }
                (badge(r.status))
                @if !r.finished {
                    button.danger data-post=(format!("/api/runs/{}/cancel", r.id)) data-confirm="Cancel this run?" { "Cancel" }
                }
                @if r.finished {
                    button data-post=(format!("/api/runs/{}/reexecute", r.id)) data-body="{}" data-go="run" { "Re-execute" }
                }
                @if r.finished && r.failed > 0 {
                    button data-post=(format!("/api/runs/{}/reexecute", r.id)) data-body=r#"{"from_failure":true}"# data-go="run" { "Re-execute from failure" }
                }
            }
            @if d.cancel_requested && !r.finished { p.warn { "Cancel requested: the run stops at its next step." } }
            dl.facts {
                dt { "Target" } dd.mono { (r.target) }
                dt { "Trigger" } dd { (r.trigger) }
                @if let Some(job) = &r.job { dt { "Job" } dd { a href=(format!("/jobs/{job}")) { (job) } } }
                dt { "Started" } dd { time datetime=(r.started) { (r.started) } }
                dt { "Duration" } dd { (duration(r.duration_ms)) }
                dt { "Assets" } dd { (r.materialized) " materialized, " (r.failed) " failed, " (r.skipped) " skipped of " (r.planned) }
                @if let Some(p) = &r.parent { dt { "Re-executes" } dd { a.mono href=(format!("/runs/{p}")) { (prefix(p, 8)) } } }
                @if !r.tags.is_empty() { dt { "Tags" } dd { @for (k, v) in &r.tags { span.tag { (k) "=" (v) } " " } } }
            }
            @if let Some(e) = &d.error { h2 { "Error" } pre.error { (e) } }
            h2 { "Timeline" }
            @if d.steps.is_empty() { p.empty { "No asset has started." } } @else { (gantt(&d)) }
            h2 { "Steps" }
            div.scroll { table.steps {
                thead { tr { th { "Asset" } th { "Partition" } th { "Status" } th.num { "Duration" } th.num { "Attempts" } } }
                tbody { @for s in &d.steps { tr {
                    td { a href=(format!("/assets/{}", s.asset)) { (s.asset) } }
                    td { (s.partition.clone().unwrap_or_default()) }
                    td { (badge(s.status)) }
                    td.num { (duration(match (s.start_ms, s.end_ms) { (Some(a), Some(b)) => Some(b - a), _ => None })) }
                    td.num { (s.attempts) }
                } } }
            } }
        }
        h2 { "Events" }
        div.scroll.events { table #events {
            thead { tr { th { "At" } th { "Asset" } th { "Event" } th { "Detail" } } }
            tbody { @for e in &d.events { tr data-seq=(e.seq) {
                td { time datetime=(e.at) { (e.at) } }
                td { (e.asset.clone().unwrap_or_default()) @if let Some(p) = &e.partition { " [" (p) "]" } }
                td { (e.kind) }
                td { (e.message) }
            } } }
        } }
        h2 { "Logs" }
        div.logbar {
            @if logs.len() == 500 { button #older-logs data-before=(first_log) { "Load earlier lines" } }
            label { input type="checkbox" #follow checked; " Follow" }
        }
        pre #logs.logs role="log" aria-live="off"
            data-run=(r.id) data-seq=(last_seq) data-log=(last_log) data-finished=[r.finished.then_some("1")] {
            @for l in &logs { span.line data-id=(l.id) { span.t { (l.at) } " " span class=(format!("lv lv-{}", l.level.to_lowercase())) { (l.level) } " " span.a { (l.asset) } " " (l.message) "\n" } }
        }
    };
    Ok(frame(&ui, "runs", &format!("Run {}", r.short), false, body))
}

fn job_graph(ui: &Ui, assets: &[String]) -> Markup {
    let ids: Vec<usize> = assets
        .iter()
        .filter_map(|k| data::asset_id(ui.graph, k).ok())
        .collect();
    let layout = super::graph::layout_of(ui.graph, &ids);
    html! { div #graph.graph.small { (PreEscaped(layout.svg(false))) } }
}

pub(crate) async fn jobs(State(ui): State<Arc<Ui>>) -> Page {
    let jobs = blocking(&ui, |ui| data::jobs(ui, 1)).await?;
    let body = html! {
        h1 { "Jobs" }
        @if jobs.is_empty() { p.empty { "No asset jobs: declare one with " code { "asset_job!(name, \"selection\")" } "." } }
        div.scroll { table {
            thead { tr { th { "Job" } th { "Selection" } th.num { "Assets" } th { "Schedules" } th { "Last run" } th {} } }
            tbody { @for j in &jobs { tr {
                td { a href=(format!("/jobs/{}", j.name)) { (j.name) } @if let Some(d) = j.description { br; span.muted { (d) } } }
                td.mono { (j.selection) }
                td.num { (j.assets.len()) }
                td { (j.schedules.join(", ")) }
                td { @match j.runs.first() { Some(r) => { (run_link(r)) " " (badge(r.status)) }, None => "–" } }
                td { button data-post=(format!("/api/jobs/{}/launch", j.name)) data-body="{}" data-go="run" { "Launch" } }
            } } }
        } }
    };
    Ok(frame(&ui, "jobs", "Jobs", true, body))
}

pub(crate) async fn job(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> Page {
    let (job, graph) = blocking(&ui, move |ui| {
        let job = data::jobs(ui, 20)?
            .into_iter()
            .find(|j| j.name == name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not an asset job")))?;
        let graph = job_graph(ui, &job.assets);
        Ok((job, graph))
    })
    .await?;
    let body = html! {
        div.toolbar {
            h1 { "Job " (job.name) }
            form.launch data-job=(job.name) {
                label { "Tags " input name="tags" placeholder="key=value, key=value" size="28"; }
                button type="submit" { "Launch" }
            }
        }
        @if let Some(d) = job.description { p.description { (d) } }
        dl.facts {
            dt { "Selection" } dd.mono { (job.selection) }
            dt { "Assets" } dd { (job.assets.len()) }
            dt { "Schedules" } dd { @if job.schedules.is_empty() { "none" } @else { (job.schedules.join(", ")) } }
        }
        (graph)
        section #job-runs data-refresh="#job-runs" {
            h2 { "Runs" }
            (runs_table(&job.runs))
        }
    };
    Ok(frame(&ui, "jobs", job.name, true, body))
}

pub(crate) async fn schedules(State(ui): State<Arc<Ui>>) -> Page {
    let all = blocking(&ui, |ui| data::instigators(ui, 10)).await?;
    let editable = ui.mode == WebMode::Dev;
    let body = html! {
        div.toolbar {
            h1 { "Schedules and sensors" }
            @if all.paused {
                span.badge.st-failed { "automation paused" }
                button data-post="/api/automation/paused" data-body=r#"{"paused":false}"# disabled[!editable] { "Resume all" }
            } @else {
                button data-post="/api/automation/paused" data-body=r#"{"paused":true}"# disabled[!editable] data-confirm="Pause every schedule, sensor and automation condition?" { "Pause all" }
            }
        }
        @if !editable { p.muted { "Read-only: `ui` runs no daemon. Start `dev` (or use the command line) to change them." } }
        h2 { "Schedules" }
        @if all.schedules.is_empty() { p.empty { "No schedules." } }
        @for s in &all.schedules {
            article.instigator #(format!("schedule-{}", s.name)) data-name=(s.name) {
                div.toolbar {
                    h3 { (s.name) }
                    span class=(if s.running { "badge st-running" } else { "badge st-stopped" }) { (if s.running { "running" } else { "stopped" }) }
                    button.toggle data-post=(format!("/api/schedules/{}/status", s.name))
                        data-body=(serde_json::json!({"running": !s.running}).to_string()) disabled[!editable]
                        aria-pressed=(s.running.to_string()) { (if s.running { "Stop" } else { "Start" }) }
                    button data-post=(format!("/api/schedules/{}/preview", s.name)) data-show="preview" { "Preview tick" }
                    button data-post=(format!("/api/schedules/{}/tick", s.name)) data-confirm="Run the latest tick now?" { "Launch tick" }
                }
                @if let Some(d) = s.description { p.muted { (d) } }
                p { "Runs " span.mono { (s.target) } " at " code { (s.cron) } " (" (s.timezone) ")" }
                p { "Next: " (s.next.join(" · ")) }
                pre.preview hidden {}
                (ticks(&s.ticks))
            }
        }
        h2 { "Sensors" }
        @if all.sensors.is_empty() { p.empty { "No sensors." } }
        @for s in &all.sensors {
            article.instigator #(format!("sensor-{}", s.name)) data-name=(s.name) {
                div.toolbar {
                    h3 { (s.name) }
                    span class=(if s.running { "badge st-running" } else { "badge st-stopped" }) { (if s.running { "running" } else { "stopped" }) }
                    button.toggle data-post=(format!("/api/sensors/{}/status", s.name))
                        data-body=(serde_json::json!({"running": !s.running}).to_string()) disabled[!editable]
                        aria-pressed=(s.running.to_string()) { (if s.running { "Stop" } else { "Start" }) }
                }
                @if let Some(d) = s.description { p.muted { (d) } }
                p { "Every " (s.interval) @if let Some(t) = &s.target { ", runs " span.mono { (t) } } }
                p { "Cursor: " code { (s.cursor.clone().unwrap_or_else(|| "none".into())) } }
                (ticks(&s.ticks))
            }
        }
    };
    Ok(frame(&ui, "schedules", "Schedules", true, body))
}

fn ticks(ticks: &[data::TickView]) -> Markup {
    html! {
        @if ticks.is_empty() { p.empty { "No ticks yet." } } @else {
            details { summary { (ticks.len()) " latest ticks" }
                table { tbody { @for t in ticks { tr {
                    td { (t.at) } td { (badge(t.status)) }
                    td { @for r in &t.runs { a.mono href=(format!("/runs/{r}")) { (prefix(r, 8)) } " " } }
                    td { (t.reason.clone().unwrap_or_default()) }
                } } } }
            }
        }
    }
}

pub(crate) async fn not_found(State(ui): State<Arc<Ui>>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return WebError::NotFound(format!("no endpoint {}", uri.path())).into_response();
    }
    let body = html! {
        h1 { "Not found" }
        p { "Nothing at " code { (uri.path()) } ". " a href="/" { "Back to the overview" } }
    };
    (
        StatusCode::NOT_FOUND,
        frame(&ui, "", "Not found", false, body),
    )
        .into_response()
}
