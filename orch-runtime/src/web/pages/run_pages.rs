//! Runs: the filtered list, one run (its timeline, steps, events and streamed logs).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use maud::{Markup, html};

use crate::web::api::RunQuery;
use crate::web::data::{self};
use crate::web::{Ui, blocking};

use super::*;

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
        format!(
            "/runs?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
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

/// The run's per-asset timeline, as SVG (bars from each step's start to its end, or to now).
/// A link to what a run's step is: its asset's page, or, for a step of an op job (which has
/// no asset page), its job's.
fn step_link(key: &str) -> Markup {
    let job = key
        .parse::<orch_core::AssetKey>()
        .ok()
        .and_then(|k| crate::jobs::job_of_step(&k));
    match job {
        Some(job) => html! { a.mono href=(format!("/jobs/{}", job.name())) { (key) } },
        None => html! { a href=(format!("/assets/{key}")) { (key) } },
    }
}

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
                @if !d.phases.is_empty() {
                    dt { "Phases" }
                    dd.phases { @for (i, p) in d.phases.iter().enumerate() {
                        @if i > 0 { " · " }
                        span data-phase=(p.name) { (p.name) " " (micros(p.us)) }
                    } }
                }
                @if !r.tags.is_empty() { dt { "Tags" } dd { @for (k, v) in &r.tags { span.tag { (k) "=" (v) } " " } } }
            }
            @if let Some(e) = &d.error { h2 { "Error" } pre.error { (e) } }
            h2 { "Timeline" }
            @if d.steps.is_empty() { p.empty { "No asset has started." } } @else { (gantt(&d)) }
            h2 { "Steps" }
            div.scroll { table.steps {
                thead { tr { th { "Asset" } th { "Partition" } th { "Status" } th.num { "Duration" } th.num { "Compute" } th.num { "Store" } th.num { "Attempts" } } }
                tbody { @for s in &d.steps { tr {
                    td { (step_link(&s.asset)) }
                    td { (s.partition.clone().unwrap_or_default()) }
                    td { (badge(s.status)) }
                    td.num { (duration(match (s.start_ms, s.end_ms) { (Some(a), Some(b)) => Some(b - a), _ => None })) }
                    td.num.compute { (s.compute_us.map_or_else(|| "–".to_owned(), micros)) }
                    td.num.store title=[s.store_background.then_some("written in the background while its consumers ran")] {
                        (s.store_us.map_or_else(|| "–".to_owned(), micros))
                        @if s.store_background { " (background)" }
                    }
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

/// Microseconds as people read them (`68 µs`, `1.7 ms`, `2.80 s`).
fn micros(us: u64) -> String {
    crate::events::format_duration(std::time::Duration::from_micros(us))
}
