//! The HTML pages, rendered on the server from the same views as `/api/...`. One embedded
//! script (`static/app.js`) adds live updates, actions, the graph's pan, zoom and highlight,
//! and log streaming; without it every page still reads.

mod asset_pages;
mod job_pages;
mod run_pages;

pub(crate) use asset_pages::*;
pub(crate) use job_pages::*;
pub(crate) use run_pages::*;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::data::{self, RunSummary};
use super::{Ui, WebError, WebMode, blocking};

/// Above this many assets the lineage graph starts with its groups collapsed.
const COLLAPSE_ABOVE: usize = 2_000;

const SCRIPT: &str = include_str!("../static/app.js");
const STYLE: &str = include_str!("../static/style.css");

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
