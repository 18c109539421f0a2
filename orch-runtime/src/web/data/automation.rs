//! The jobs', schedules' and sensors' views.

use jiff::Timestamp;
use serde::Serialize;

use crate::automation::{JOB_TAG, target_text};
use crate::storage::{InstigatorStatus, RunFilter};
use crate::web::{Ui, WebError};

use super::{RunSummary, instant, status_of};

/// One asset job.
#[derive(Serialize, Debug)]
pub(crate) struct JobView {
    pub(crate) name: &'static str,
    pub(crate) selection: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) assets: Vec<String>,
    pub(crate) schedules: Vec<&'static str>,
    pub(crate) runs: Vec<RunSummary>,
}

pub(crate) fn jobs(ui: &Ui, runs_per_job: usize) -> Result<Vec<JobView>, WebError> {
    let store = &**ui.instance.storage();
    ui.automation
        .jobs()
        .iter()
        .map(|job| {
            let assets = job
                .selection()
                .parse::<orch_core::AssetSelection>()
                .ok()
                .and_then(|s| s.resolve(ui.graph).ok())
                .map(|ids| {
                    ids.iter()
                        .map(|&i| ui.graph.node(i).key.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let schedules = schedules_of(ui, job.name());
            let runs = runs_of(store, job.name(), runs_per_job)?;
            Ok(JobView {
                name: job.name(),
                selection: job.selection(),
                description: job.description(),
                assets,
                schedules,
                runs,
            })
        })
        .collect()
}

/// The schedules that run job `name`.
fn schedules_of(ui: &Ui, name: &'static str) -> Vec<&'static str> {
    ui.automation
        .schedules()
        .iter()
        .filter(|(s, _)| s.target() == orch_core::ScheduleTarget::Job(name))
        .map(|(s, _)| s.name())
        .collect()
}

/// The latest `n` runs of job `name` (tagged with it).
fn runs_of(
    store: &dyn crate::storage::Storage,
    name: &str,
    n: usize,
) -> Result<Vec<RunSummary>, WebError> {
    match n {
        0 => Ok(Vec::new()),
        n => Ok(store
            .runs(&RunFilter::recent(n).tag(JOB_TAG, name))?
            .iter()
            .map(RunSummary::of)
            .collect()),
    }
}

/// One op job.
#[derive(Serialize, Debug)]
pub(crate) struct OpJobView {
    pub(crate) name: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) steps: Vec<StepView>,
    pub(crate) schedules: Vec<&'static str>,
    pub(crate) runs: Vec<RunSummary>,
}

/// One step of an op job.
#[derive(Serialize, Debug)]
pub(crate) struct StepView {
    pub(crate) name: &'static str,
    pub(crate) op: &'static str,
    pub(crate) inputs: Vec<String>,
    pub(crate) output: String,
    /// For a step mapped over a `Dynamic`: the step whose elements it runs on.
    pub(crate) maps_over: Option<&'static str>,
    pub(crate) config: Option<&'static str>,
    pub(crate) description: Option<&'static str>,
}

pub(crate) fn op_jobs(ui: &Ui, runs_per_job: usize) -> Result<Vec<OpJobView>, WebError> {
    let store = &**ui.instance.storage();
    let jobs = crate::jobs::op_jobs().map_err(|e| WebError::BadRequest(e.to_string()))?;
    jobs.iter()
        .map(|job| {
            let graph = job.graph();
            let steps = graph
                .topological_order()
                .iter()
                .map(|&id| {
                    let op = job.op(id);
                    let node = graph.node(id);
                    StepView {
                        name: job.step_name(id),
                        op: op.name(),
                        inputs: op
                            .inputs()
                            .iter()
                            .zip(&node.inputs)
                            .map(|((name, ty), &up)| {
                                format!("{name}: {ty} ← {}", job.step_name(up))
                            })
                            .collect(),
                        output: job.output_text(id),
                        maps_over: job.maps_over(id),
                        config: op.config().map(|c| c.type_name),
                        description: op.description(),
                    }
                })
                .collect();
            let schedules = schedules_of(ui, job.name());
            let runs = runs_of(store, job.name(), runs_per_job)?;
            Ok(OpJobView {
                name: job.name(),
                description: job.def().description(),
                steps,
                schedules,
                runs,
            })
        })
        .collect()
}

/// One schedule.
#[derive(Serialize, Debug)]
pub(crate) struct ScheduleView {
    pub(crate) name: &'static str,
    pub(crate) target: String,
    pub(crate) cron: &'static str,
    pub(crate) timezone: &'static str,
    pub(crate) description: Option<&'static str>,
    pub(crate) running: bool,
    pub(crate) next: Vec<String>,
    pub(crate) ticks: Vec<TickView>,
}

/// One recorded tick (of a schedule or a sensor).
#[derive(Serialize, Debug)]
pub(crate) struct TickView {
    pub(crate) at: String,
    pub(crate) status: &'static str,
    pub(crate) runs: Vec<String>,
    pub(crate) reason: Option<String>,
}

/// One sensor.
#[derive(Serialize, Debug)]
pub(crate) struct SensorView {
    pub(crate) name: &'static str,
    pub(crate) target: Option<String>,
    pub(crate) interval: String,
    pub(crate) description: Option<&'static str>,
    pub(crate) running: bool,
    pub(crate) cursor: Option<String>,
    pub(crate) ticks: Vec<TickView>,
}

/// The schedules and sensors, and whether automation is paused.
#[derive(Serialize, Debug)]
pub(crate) struct Instigators {
    pub(crate) paused: bool,
    pub(crate) schedules: Vec<ScheduleView>,
    pub(crate) sensors: Vec<SensorView>,
}

fn tick_view(t: crate::storage::TickRecord, zone: Option<&jiff::tz::TimeZone>) -> TickView {
    let at = match (Timestamp::try_from(t.scheduled), zone) {
        (Ok(ts), Some(zone)) => ts
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        _ => instant(t.scheduled),
    };
    TickView {
        at,
        status: t.status.as_str(),
        runs: t.run_ids.iter().map(ToString::to_string).collect(),
        reason: t.reason,
    }
}

pub(crate) fn instigators(ui: &Ui, ticks: usize) -> Result<Instigators, WebError> {
    let store = &**ui.instance.storage();
    let states = store.instigator_states()?;
    let now = Timestamp::now();
    let schedules = ui
        .automation
        .schedules()
        .iter()
        .map(|(s, cron)| {
            Ok(ScheduleView {
                name: s.name(),
                target: target_text(s),
                cron: s.cron(),
                timezone: s.timezone(),
                description: s.description(),
                running: status_of(&states, s.name(), s.default_status())
                    == InstigatorStatus::Running,
                next: cron
                    .ticks_after(now)
                    .take(5)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M %Z").to_string())
                    .collect(),
                ticks: store
                    .ticks(s.name(), ticks)?
                    .into_iter()
                    .map(|t| tick_view(t, Some(cron.zone())))
                    .collect(),
            })
        })
        .collect::<Result<_, WebError>>()?;
    let sensors = ui
        .automation
        .sensors()
        .iter()
        .map(|s| {
            Ok(SensorView {
                name: s.name(),
                target: s.target().map(|t| match t {
                    orch_core::ScheduleTarget::Job(job) => format!("job {job}"),
                    orch_core::ScheduleTarget::Selection(text) => text.to_owned(),
                    _ => String::new(),
                }),
                interval: humantime::format_duration(s.interval()).to_string(),
                description: s.description(),
                running: status_of(&states, s.name(), s.default_status())
                    == InstigatorStatus::Running,
                cursor: store.cursor(&crate::automation::sensor_cursor_key(s.name()))?,
                ticks: store
                    .ticks(s.name(), ticks)?
                    .into_iter()
                    .map(|t| tick_view(t, None))
                    .collect(),
            })
        })
        .collect::<Result<_, WebError>>()?;
    Ok(Instigators {
        paused: store.automation_paused()?,
        schedules,
        sensors,
    })
}
