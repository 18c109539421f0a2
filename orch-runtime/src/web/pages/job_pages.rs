//! Jobs, schedules and sensors.

use std::sync::Arc;

use axum::extract::{Path, State};
use maud::{Markup, PreEscaped, html};

use crate::web::data::{self};
use crate::web::{Ui, WebError, WebMode, blocking};

use super::*;

fn job_graph(ui: &Ui, assets: &[String]) -> Markup {
    let ids: Vec<usize> = assets
        .iter()
        .filter_map(|k| data::asset_id(ui.graph, k).ok())
        .collect();
    let layout = crate::web::graph::layout_of(ui.graph, &ids);
    html! { div #graph.graph.small { (PreEscaped(layout.svg(false))) } }
}

pub(crate) async fn jobs(State(ui): State<Arc<Ui>>) -> Page {
    let (jobs, op_jobs) =
        blocking(&ui, |ui| Ok((data::jobs(ui, 1)?, data::op_jobs(ui, 1)?))).await?;
    let body = html! {
        h1 { "Jobs" }
        @if jobs.is_empty() && op_jobs.is_empty() { p.empty { "No jobs: declare an asset job with " code { "asset_job!(name, \"selection\")" } ", or an op job with " code { "#[job]" } "." } }
        @if !op_jobs.is_empty() {
            h2 { "Op jobs" }
            div.scroll { table #op-jobs {
                thead { tr { th { "Job" } th.num { "Ops" } th { "Config" } th { "Schedules" } th { "Last run" } th {} } }
                tbody { @for j in &op_jobs { tr {
                    td { a href=(format!("/jobs/{}", j.name)) { (j.name) } @if let Some(d) = j.description { br; span.muted { (d) } } }
                    td.num { (j.steps.len()) }
                    td { (j.steps.iter().filter(|s| s.config.is_some()).map(|s| s.name).collect::<Vec<_>>().join(", ")) }
                    td { (j.schedules.join(", ")) }
                    td { @match j.runs.first() { Some(r) => { (run_link(r)) " " (badge(r.status)) }, None => "–" } }
                    td { a href=(format!("/jobs/{}#launch", j.name)) { "Launch…" } }
                } } }
            } }
        }
        @if !jobs.is_empty() { h2 { "Asset jobs" } }
        @if !jobs.is_empty() { div.scroll { table {
            thead { tr { th { "Job" } th { "Selection" } th.num { "Assets" } th { "Schedules" } th { "Last run" } th {} } }
            tbody { @for j in &jobs { tr {
                td { a href=(format!("/jobs/{}", j.name)) { (j.name) } @if let Some(d) = j.description { br; span.muted { (d) } } }
                td.mono { (j.selection) }
                td.num { (j.assets.len()) }
                td { (j.schedules.join(", ")) }
                td { @match j.runs.first() { Some(r) => { (run_link(r)) " " (badge(r.status)) }, None => "–" } }
                td { button data-post=(format!("/api/jobs/{}/launch", j.name)) data-body="{}" data-go="run" { "Launch" } }
            } } }
        } } }
    };
    Ok(frame(&ui, "jobs", "Jobs", true, body))
}

pub(crate) async fn job(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> Page {
    if crate::jobs::op_job(&name).is_ok() {
        return op_job(ui, name).await;
    }
    let (job, graph) = blocking(&ui, move |ui| {
        let job = data::jobs(ui, 20)?
            .into_iter()
            .find(|j| j.name == name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not a job")))?;
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

/// An op job: its steps as a graph and a table, the launch form with a run config, its runs.
async fn op_job(ui: Arc<Ui>, name: String) -> Page {
    let (job, graph) = blocking(&ui, move |ui| {
        let job = data::op_jobs(ui, 20)?
            .into_iter()
            .find(|j| j.name == name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not a job")))?;
        let steps = crate::jobs::op_job(&name).map_err(|e| WebError::NotFound(e.to_string()))?;
        let all: Vec<usize> = (0..steps.graph().len()).collect();
        let layout = crate::web::graph::layout_of(steps.graph(), &all);
        let graph =
            html! { div #graph.graph.small data-nolink { (PreEscaped(layout.svg(false))) } };
        Ok((job, graph))
    })
    .await?;
    let configured: Vec<&str> = job
        .steps
        .iter()
        .filter(|s| s.config.is_some())
        .map(|s| s.name)
        .collect();
    let placeholder = configured
        .iter()
        .map(|s| format!("[ops.{s}]\n"))
        .collect::<String>();
    let body = html! {
        div.toolbar { h1 { "Job " (job.name) } span.badge { "op job" } }
        @if let Some(d) = job.description { p.description { (d) } }
        dl.facts {
            dt { "Ops" } dd { (job.steps.len()) }
            dt { "Config" } dd { @if configured.is_empty() { "none" } @else { (configured.join(", ")) } }
            dt { "Schedules" } dd { @if job.schedules.is_empty() { "none" } @else { (job.schedules.join(", ")) } }
        }
        (graph)
        h2 { "Ops" }
        div.scroll { table #steps {
            thead { tr { th { "Step" } th { "Op" } th { "Inputs" } th { "Output" } th { "Config" } } }
            tbody { @for s in &job.steps { tr {
                td.mono { (s.name) @if let Some(d) = s.description { br; span.muted { (d) } } }
                td.mono { (s.op) @if let Some(over) = s.maps_over { br; span.muted { "per element of " (over) } } }
                td.mono { (s.inputs.join(", ")) }
                td.mono { (s.output) }
                td.mono { (s.config.unwrap_or("")) }
            } } }
        } }
        h2 #launch { "Launch" }
        form.launch.config data-job=(job.name) {
            label { "Run config (TOML or JSON, one table per op; checked before anything runs)"
                textarea name="config" rows="6" cols="60" spellcheck="false" placeholder=(placeholder) {} }
            label { "Tags " input name="tags" placeholder="key=value, key=value" size="28"; }
            button type="submit" { "Launch" }
        }
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
