//! `/api/...`: each page's data as JSON, and the actions (all POST, behind `guard.rs`). An
//! action can only name assets, jobs, schedules, sensors and runs that exist; anything else
//! is a 4xx with a message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use orch_core::{AssetKey, AssetSelection, RunId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::data::{self, asset_id};
use super::{Ui, WebError, WebMode, blocking};
use crate::automation::{TickDecision, TickOutcome, request_tick};
use crate::run::{Backfill, Reexecution, RunRequest};
use crate::storage::{CancelOutcome, InstigatorStatus, RunCursor, RunFilter, RunStatus};

type ApiResult = Result<Json<Value>, WebError>;

/// A JSON request body, or why it cannot be read (413 over the limit, 400 otherwise).
fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, WebError> {
    match body {
        Ok(Json(body)) => Ok(body),
        Err(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(WebError::TooLarge(format!(
                "the request body is over 64 KiB: {}",
                e.body_text()
            )))
        }
        Err(e) => Err(WebError::BadRequest(e.body_text())),
    }
}

fn to_json<T: serde::Serialize>(value: T) -> ApiResult {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| WebError::Serve(std::io::Error::other(e)))
}

pub(crate) async fn session(State(ui): State<Arc<Ui>>) -> Json<Value> {
    Json(json!({
        "csrf": ui.csrf,
        "mode": match ui.mode { WebMode::Dev => "dev", WebMode::UiOnly => "ui" },
        "assets": ui.graph.len(),
    }))
}

pub(crate) async fn overview(State(ui): State<Arc<Ui>>) -> ApiResult {
    to_json(blocking(&ui, data::overview).await?)
}

#[derive(Deserialize)]
pub(crate) struct AssetQuery {
    pub(crate) q: Option<String>,
}

/// Whether an asset matches a search: every word appears in its key or group.
pub(crate) fn matches(a: &data::AssetSummary, q: Option<&str>) -> bool {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return true;
    };
    let hay = format!("{} {}", a.key, a.group).to_lowercase();
    q.to_lowercase().split_whitespace().all(|w| hay.contains(w))
}

pub(crate) async fn assets(
    State(ui): State<Arc<Ui>>,
    Query(query): Query<AssetQuery>,
) -> ApiResult {
    let all = blocking(&ui, data::asset_summaries).await?;
    let found: Vec<&data::AssetSummary> = all
        .iter()
        .filter(|a| matches(a, query.q.as_deref()))
        .collect();
    to_json(found)
}

pub(crate) async fn asset(State(ui): State<Arc<Ui>>, Path(key): Path<String>) -> ApiResult {
    to_json(blocking(&ui, move |ui| data::asset_detail(ui, &key)).await?)
}

/// `GET /api/graph/groups/{g}`: group `g`'s members and their edges, as SVG for the lineage
/// page to insert when the group opens.
pub(crate) async fn graph_group(
    State(ui): State<Arc<Ui>>,
    Path(g): Path<usize>,
) -> Result<axum::response::Response, WebError> {
    use axum::response::IntoResponse;
    let svg = blocking(&ui, move |ui| {
        ui.layout()
            .group_svg(g)
            .ok_or_else(|| WebError::NotFound(format!("the graph has no group {g}")))
    })
    .await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "image/svg+xml; charset=utf-8",
        )],
        svg,
    )
        .into_response())
}

pub(crate) async fn graph(State(ui): State<Arc<Ui>>) -> ApiResult {
    let layout = blocking(&ui, |ui| Ok(ui.layout())).await?;
    to_json(&*layout)
}

/// `/api/runs` filters: `status` (comma-separated), `trigger`, `job`, `tag` (`k=v`),
/// `since` and `before` (RFC 3339), `limit`, `cursor` (the `next` of the previous page).
#[derive(Deserialize, Default)]
pub(crate) struct RunQuery {
    pub(crate) status: Option<String>,
    pub(crate) trigger: Option<String>,
    pub(crate) job: Option<String>,
    pub(crate) tag: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) before: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) cursor: Option<String>,
}

impl RunQuery {
    pub(crate) fn filter(&self) -> Result<RunFilter, WebError> {
        let mut filter = RunFilter::recent(self.limit.unwrap_or(50).clamp(1, 500));
        for s in self.status.iter().flat_map(|s| s.split(',')) {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            let status = RunStatus::parse(s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`{s}` is not a run status: queued, starting, running, succeeded, failed, canceled or crashed"
                ))
            })?;
            filter = filter.status(status);
        }
        if let Some(t) = self.trigger.as_deref().filter(|t| !t.is_empty()) {
            filter.trigger = Some(t.to_owned());
        }
        if let Some(job) = self.job.as_deref().filter(|j| !j.is_empty()) {
            filter = filter.tag(crate::automation::JOB_TAG, job);
        }
        if let Some(tag) = self.tag.as_deref().filter(|t| !t.is_empty()) {
            if filter.tag.is_some() {
                return Err(WebError::BadRequest(
                    "filter by a job or by a tag, not both (a job is the tag orch/job=NAME)".into(),
                ));
            }
            let (k, v) = tag.split_once('=').ok_or_else(|| {
                WebError::BadRequest(format!("`{tag}` is not a tag: write `key=value`"))
            })?;
            filter = filter.tag(k, v);
        }
        let instant = |t: &str| {
            t.parse::<Timestamp>()
                .map(std::time::SystemTime::from)
                .map_err(|e| {
                    WebError::BadRequest(format!("`{t}` is not an RFC 3339 instant ({e})"))
                })
        };
        if let Some(t) = self.since.as_deref().filter(|t| !t.is_empty()) {
            filter.since = Some(instant(t)?);
        }
        if let Some(t) = self.before.as_deref().filter(|t| !t.is_empty()) {
            filter.before = Some(instant(t)?);
        }
        if let Some(c) = self.cursor.as_deref().filter(|c| !c.is_empty()) {
            filter.cursor = Some(c.parse::<RunCursor>().map_err(WebError::BadRequest)?);
        }
        Ok(filter)
    }
}

pub(crate) async fn runs(State(ui): State<Arc<Ui>>, Query(query): Query<RunQuery>) -> ApiResult {
    let filter = query.filter()?;
    to_json(blocking(&ui, move |ui| data::runs_page(ui, &filter)).await?)
}

pub(crate) async fn run(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> ApiResult {
    to_json(blocking(&ui, move |ui| data::run_detail(ui, &id)).await?)
}

#[derive(Deserialize)]
pub(crate) struct LogQuery {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

pub(crate) async fn logs(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult {
    let lines = blocking(&ui, move |ui| {
        data::log_page(ui, &id, q.before, q.after, q.limit.unwrap_or(500))
    })
    .await?;
    to_json(lines)
}

pub(crate) async fn jobs(State(ui): State<Arc<Ui>>) -> ApiResult {
    to_json(
        blocking(&ui, |ui| {
            Ok(json!({
                "asset_jobs": data::jobs(ui, 10)?,
                "op_jobs": data::op_jobs(ui, 10)?,
            }))
        })
        .await?,
    )
}

pub(crate) async fn schedules(State(ui): State<Arc<Ui>>) -> ApiResult {
    to_json(blocking(&ui, |ui| data::instigators(ui, 20)).await?)
}

/// Queues `request` (after planning it, so a bad request is a 400 and queues nothing); without
/// a daemon in this process, this process starts it (see `local.rs`).
pub(crate) fn launch(ui: &Ui, request: RunRequest) -> Result<RunId, WebError> {
    ui.instance
        .plan(&request)
        .map_err(|e| WebError::BadRequest(e.to_string()))?;
    let id = ui.instance.enqueue(request)?;
    if ui.mode == WebMode::UiOnly {
        ui.local.start(ui.instance.clone(), id.clone());
    }
    Ok(id)
}

/// `POST /api/materialize`: `{"assets": [...]}`, `{"selection": "..."}`, `{"stale": true}`
/// or `{}` (everything); with `"partition"` for one partition.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct MaterializeBody {
    #[serde(default)]
    assets: Vec<String>,
    selection: Option<String>,
    #[serde(default)]
    stale: bool,
    partition: Option<String>,
}

pub(crate) async fn materialize(
    State(ui): State<Arc<Ui>>,
    body: Result<Json<MaterializeBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let body = json_body(body)?;
    let id = blocking(&ui, move |ui| {
        if body.assets.len() > ui.graph.len() {
            return Err(WebError::BadRequest("more assets than there are".into()));
        }
        let mut request = match (&body.selection, body.assets.is_empty()) {
            (Some(_), false) => {
                return Err(WebError::BadRequest(
                    "send `assets` or `selection`, not both".into(),
                ));
            }
            (Some(selection), true) => {
                RunRequest::select(selection).map_err(|e| WebError::BadRequest(e.to_string()))?
            }
            (None, false) => {
                let mut keys: Vec<AssetKey> = Vec::new();
                for key in &body.assets {
                    keys.push(ui.graph.node(asset_id(ui.graph, key)?).key.clone());
                }
                RunRequest::selection(AssetSelection::Keys(keys))
            }
            (None, true) => RunRequest::all(),
        };
        if body.stale {
            request = request.only_stale();
        }
        if let Some(p) = body.partition {
            request = request.partition(p);
        }
        launch(ui, request.tag("orch/launched_by", "web"))
    })
    .await?;
    to_json(json!({ "run_id": id.to_string() }))
}

/// `POST /api/backfill`: `{"asset": KEY, "from": K1, "to": K2}`: one run per partition,
/// queued (the daemon, or this process, runs them within the queue's limits).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackfillBody {
    asset: String,
    from: String,
    to: String,
}

pub(crate) async fn backfill(
    State(ui): State<Arc<Ui>>,
    body: Result<Json<BackfillBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let body = json_body(body)?;
    let (id, runs) = blocking(&ui, move |ui| {
        let key = ui.graph.node(asset_id(ui.graph, &body.asset)?).key.clone();
        let plan = Backfill::range(AssetSelection::Keys(vec![key]), body.from, body.to)
            .tag("orch/launched_by", "web")
            .plan(&ui.instance)
            .map_err(|e| WebError::BadRequest(e.to_string()))?;
        let mut runs = Vec::new();
        for request in plan.requests() {
            runs.push(launch(ui, request)?.to_string());
        }
        Ok((plan.id().to_owned(), runs))
    })
    .await?;
    to_json(json!({ "backfill_id": id, "runs": runs }))
}

pub(crate) async fn cancel(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> ApiResult {
    let outcome = blocking(&ui, move |ui| {
        // A run whose process died is crashed, not "asked to stop" (nothing would hear it).
        let _ = ui.instance.storage().recover_crashed();
        let run = ui.instance.storage().run(&id)?;
        let outcome = ui.instance.storage().request_cancel(run.id.as_str())?;
        // A run started here stops without waiting for its next look at the store.
        ui.local.cancel(&run.id);
        match outcome {
            CancelOutcome::AlreadyEnded(status) => Err(WebError::Conflict(format!(
                "run {} already ended ({status}): nothing to cancel",
                run.id.short()
            ))),
            CancelOutcome::Canceled => Ok("canceled"),
            CancelOutcome::Requested => Ok("cancel requested"),
        }
    })
    .await?;
    to_json(json!({ "outcome": outcome }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReexecuteBody {
    #[serde(default)]
    from_failure: bool,
}

pub(crate) async fn reexecute(
    State(ui): State<Arc<Ui>>,
    Path(id): Path<String>,
    body: Result<Json<ReexecuteBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let from_failure = json_body(body)?.from_failure;
    let new = blocking(&ui, move |ui| {
        let mut re = Reexecution::of(&**ui.instance.storage(), &id)?;
        if re.checks_only() {
            return Err(WebError::Conflict(
                "that run only ran asset checks; re-running it would materialize the asset (use `check run`)".into(),
            ));
        }
        if from_failure {
            re = re.from_failure();
        }
        let request = re
            .request(ui.graph)
            .map_err(|e| WebError::BadRequest(e.to_string()))?
            .ok_or_else(|| {
                WebError::Conflict("every asset of that run succeeded: nothing to re-execute".into())
            })?;
        launch(ui, request.tag("orch/launched_by", "web"))
    })
    .await?;
    to_json(json!({ "run_id": new.to_string() }))
}

/// `POST /api/jobs/{name}/launch`: `{"tags": {...}}` optional; for an op job, `"config"`:
/// the run config as TOML or JSON text, or as a JSON object.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LaunchBody {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    config: Option<serde_json::Value>,
}

pub(crate) async fn launch_job(
    State(ui): State<Arc<Ui>>,
    Path(name): Path<String>,
    body: Result<Json<LaunchBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let LaunchBody { tags, config } = json_body(body)?;
    let id = blocking(&ui, move |ui| {
        let mut request = ui
            .automation
            .job_request(&name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not a job")))?;
        if let Some(config) = config {
            if request.target().job().is_none() {
                return Err(WebError::BadRequest(format!(
                    "`{name}` is an asset job: it takes no run config"
                )));
            }
            let parsed = match config {
                serde_json::Value::String(text) => orch_core::RunConfig::parse(&text),
                value => orch_core::RunConfig::from_value(value),
            };
            request = request.config(parsed.map_err(|e| WebError::BadRequest(e.to_string()))?);
        }
        if tags.len() > 64 {
            return Err(WebError::BadRequest("at most 64 tags".into()));
        }
        for (k, v) in tags {
            if k.starts_with("orch/") {
                return Err(WebError::BadRequest(format!(
                    "tag `{k}`: the `orch/` prefix is orch's own"
                )));
            }
            request = request.tag(k, v);
        }
        launch(ui, request.tag("orch/launched_by", "web"))
    })
    .await?;
    to_json(json!({ "run_id": id.to_string() }))
}

/// Refuses what only `dev` (which runs the daemon) may change.
fn dev_only(ui: &Ui, what: &str) -> Result<(), WebError> {
    match ui.mode {
        WebMode::Dev => Ok(()),
        WebMode::UiOnly => Err(WebError::Forbidden(format!(
            "`ui` shows {what} read-only: change it with `dev`, or on the command line"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusBody {
    running: bool,
}

/// Starts or stops schedule (or sensor) `name`, which must exist.
async fn set_status(
    ui: Arc<Ui>,
    name: String,
    kind: &'static str,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let body = json_body(body)?;
    let v = blocking(&ui, move |ui| {
        let exists = match kind {
            "schedule" => ui.automation.schedule(&name).is_some(),
            _ => ui.automation.sensor(&name).is_some(),
        };
        if !exists {
            return Err(WebError::NotFound(format!("`{name}` is not a {kind}")));
        }
        dev_only(ui, "schedules and sensors")?;
        let status = match body.running {
            true => InstigatorStatus::Running,
            false => InstigatorStatus::Stopped,
        };
        ui.instance
            .storage()
            .set_instigator_status(&name, kind, status)?;
        Ok(json!({ "name": name, "status": status.as_str() }))
    })
    .await?;
    Ok(Json(v))
}

pub(crate) async fn schedule_status(
    State(ui): State<Arc<Ui>>,
    Path(name): Path<String>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    set_status(ui, name, "schedule", body).await
}

pub(crate) async fn sensor_status(
    State(ui): State<Arc<Ui>>,
    Path(name): Path<String>,
    body: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    set_status(ui, name, "sensor", body).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PausedBody {
    paused: bool,
}

pub(crate) async fn set_paused(
    State(ui): State<Arc<Ui>>,
    body: Result<Json<PausedBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let body = json_body(body)?;
    let v = blocking(&ui, move |ui| {
        dev_only(ui, "the global pause")?;
        ui.instance.storage().set_automation_paused(body.paused)?;
        Ok(json!({ "paused": body.paused }))
    })
    .await?;
    Ok(Json(v))
}

/// `POST /api/schedules/{name}/preview`: what the next tick would run. Launches nothing.
pub(crate) async fn preview_tick(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> ApiResult {
    let v = blocking(&ui, move |ui| {
        let (schedule, cron) = ui
            .automation
            .schedule(&name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not a schedule")))?;
        let Some(tick) = cron.next_after(Timestamp::now()) else {
            return Ok(json!({ "tick": null, "decision": "none" }));
        };
        let when = tick.strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
        Ok(
            match ui.automation.decide_tick(schedule, tick.timestamp()) {
                TickDecision::Run(requests) => {
                    let mut runs = Vec::new();
                    for request in &requests {
                        let plan = ui
                            .instance
                            .plan(request)
                            .map_err(|e| WebError::BadRequest(e.to_string()))?;
                        runs.push(json!({
                            "target": request.to_string(),
                            "tags": request.tags(),
                            "plan": plan.to_string(),
                        }));
                    }
                    json!({ "tick": when, "decision": "run", "runs": runs })
                }
                TickDecision::Skip(reason) => {
                    json!({ "tick": when, "decision": "skip", "reason": reason })
                }
                TickDecision::Fail(reason) => {
                    json!({ "tick": when, "decision": "fail", "reason": reason })
                }
            },
        )
    })
    .await?;
    Ok(Json(v))
}

/// `POST /api/schedules/{name}/tick`: runs the latest tick at or before now (once, ever, as
/// `schedule tick` does) and queues its runs.
pub(crate) async fn launch_tick(State(ui): State<Arc<Ui>>, Path(name): Path<String>) -> ApiResult {
    let v = blocking(&ui, move |ui| {
        let (schedule, cron) = ui
            .automation
            .schedule(&name)
            .ok_or_else(|| WebError::NotFound(format!("`{name}` is not a schedule")))?;
        let tick = cron.latest_at_or_before(Timestamp::now()).ok_or_else(|| {
            WebError::Conflict(format!("schedule `{name}` has no tick before now"))
        })?;
        let when = tick.strftime("%Y-%m-%d %H:%M:%S %Z").to_string();
        let outcome = request_tick(
            &ui.instance,
            ui.automation,
            schedule,
            tick.timestamp(),
            None,
        )
        .map_err(|e| WebError::Conflict(e.to_string()))?;
        Ok(match outcome {
            TickOutcome::Requested(ids) => {
                ui.instance.notify_enqueued();
                if ui.mode == WebMode::UiOnly {
                    for id in &ids {
                        ui.local.start(ui.instance.clone(), id.clone());
                    }
                }
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                json!({ "tick": when, "outcome": "requested", "runs": ids })
            }
            TickOutcome::AlreadyDone(record) => json!({
                "tick": when,
                "outcome": "already done",
                "status": record.status.as_str(),
                "runs": record.run_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            TickOutcome::Skipped(reason) => {
                json!({ "tick": when, "outcome": "skipped", "reason": reason })
            }
            TickOutcome::Failed(reason) => {
                json!({ "tick": when, "outcome": "failed", "reason": reason })
            }
        })
    })
    .await?;
    Ok(Json(v))
}
