//! Automation as the runtime sees it: the registered asset jobs and schedules, checked against
//! the asset graph once per process ([`automation`]), the run requests they make, and their
//! evaluation ([`evaluate_schedules`]), which queues runs. The daemon
//! ([`Daemon`](crate::Daemon)) evaluates and starts the queued runs; the CLI lists them.

mod declarative;
mod evaluate;
mod freshness;
mod reasons;
mod sensor;
mod tick;

use std::collections::HashMap;
use std::sync::OnceLock;

use jiff::Timestamp;
use orch_core::automation::{
    Cron, ResolvedFreshness, registered_jobs, registered_schedules, registered_sensors,
};
use orch_core::{
    AssetGraph, AssetId, AssetSelection, AutomationCondition, CronSchedule, DefinitionErrors,
    FreshnessPolicy, JobDef, Partitions, ScheduleDef, ScheduleTarget, SensorDef, SensorRun,
};

use crate::run::RunRequest;

pub use declarative::{
    AUTOMATION_TAG, AssetEvaluation, AutomationEvaluation, AutomationEvaluator, ConditionNode,
};
pub use evaluate::{Evaluated, ScheduleEvaluation, evaluate_schedules};
pub use freshness::{AssetFreshness, FreshnessMonitor, freshness_states};
pub(crate) use sensor::sensor_states;
pub use sensor::{
    SensorEvaluated, SensorEvaluation, SensorOutcome, evaluate_sensors, preview_sensor, run_sensor,
    sensor_cursor_key,
};
pub use tick::{TICK_TAG, TickError, TickOutcome, request_tick};

/// The tag every run of an asset job carries, with the job's name (Dagster's
/// `dagster/job_name`): `runs --tag orch/job=NAME` lists a job's runs.
pub const JOB_TAG: &str = "orch/job";
/// The tag every run a schedule launches carries, with the schedule's name.
pub const SCHEDULE_TAG: &str = "orch/schedule";
/// The tag every run a sensor launches carries, with the sensor's name.
pub const SENSOR_TAG: &str = "orch/sensor";

/// A problem with the registered jobs and schedules, found at startup.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AutomationError {
    /// Two jobs, or two schedules, have one name.
    #[error("{kind} `{name}` is declared twice: at {first} and at {second}; rename one")]
    Duplicate {
        /// `asset job` or `schedule`.
        kind: &'static str,
        /// The name.
        name: String,
        /// Where the first is.
        first: String,
        /// Where the second is.
        second: String,
    },
    /// A job's or schedule's selection names no asset, or an unknown one.
    #[error("{kind} `{name}` (at {location}): {reason}")]
    Selection {
        /// `asset job` or `schedule`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Where it is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule's cron string or time zone is refused (the macro checks both, so only a
    /// hand-built definition gets here).
    #[error("schedule `{name}` (at {location}): {reason}")]
    Cron {
        /// Its name.
        name: String,
        /// Where it is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule targets partitioned assets it cannot choose one partition of per tick
    /// (static or dynamic partitions, or two different time-window definitions).
    #[error("schedule `{name}` (at {location}): {reason}")]
    Partitions {
        /// The schedule.
        name: String,
        /// Where it is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An asset's automation condition cannot be evaluated (a bad cron string, partitions).
    #[error("asset `{asset}` (at {location}): its automation condition: {reason}")]
    Condition {
        /// The asset.
        asset: String,
        /// Where it is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// An asset's freshness policy cannot be evaluated (a bad duration, cron string or time
    /// zone).
    #[error("asset `{asset}` (at {location}): its freshness policy: {reason}")]
    Freshness {
        /// The asset.
        asset: String,
        /// Where it is.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule names a job that is not registered.
    #[error("schedule `{name}` (at {location}) runs job `{job}`, which is not registered")]
    UnknownJob {
        /// The schedule.
        name: String,
        /// Where it is.
        location: String,
        /// The job it names.
        job: String,
    },
    /// A schedule runs an op job whose ops need run config, and has no `decide` function to
    /// give it: every tick's run would be refused.
    #[error(
        "schedule `{name}` (at {location}) runs op job `{job}`, whose config it cannot give: {reason}; give the schedule a `decide` function that sets it (`ScheduleDecision::runs([SensorRun::new().config(...)])`)"
    )]
    JobNeedsConfig {
        /// The schedule.
        name: String,
        /// Where it is.
        location: String,
        /// The op job.
        job: String,
        /// What the job's ops lack.
        reason: String,
    },
}

/// The checked jobs and schedules of this binary.
#[derive(Debug)]
pub struct Automation {
    jobs: Vec<&'static JobDef>,
    sensors: Vec<&'static SensorDef>,
    schedules: Vec<(&'static ScheduleDef, CronSchedule)>,
    /// The time-window partitions of each partitioned schedule's target, by schedule name:
    /// each tick runs the partition whose window ended last.
    partitioned: HashMap<&'static str, Partitions>,
    /// The assets' declarative automation conditions.
    conditions: Option<Conditions>,
    /// The assets' freshness policies, in topological order.
    freshness: Vec<(AssetId, FreshnessPolicy, ResolvedFreshness)>,
}

/// The assets with an `automation = ...` condition, checked.
#[derive(Debug)]
struct Conditions {
    graph: &'static AssetGraph,
    /// In topological order: the asset, its condition, and the condition as written.
    assets: Vec<(AssetId, AutomationCondition, String)>,
    /// Every cron string they name, parsed.
    crons: HashMap<Cron, CronSchedule>,
    /// The cron strings of each condition, in the order of `assets`.
    crons_of: Vec<Vec<Cron>>,
}

/// Every registered job and schedule, checked against the asset graph once per process.
pub fn automation() -> Result<&'static Automation, &'static [AutomationError]> {
    static CHECKED: OnceLock<Result<Automation, Vec<AutomationError>>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let graph = crate::materialize::definitions().map_err(|e: &DefinitionErrors| {
                // Asset errors are reported first, by `definitions()`; nothing to add here.
                let _ = e;
                Vec::new()
            })?;
            Automation::check(
                graph,
                registered_jobs().collect(),
                registered_schedules().collect(),
            )
            .and_then(|a| a.with_sensors(graph, registered_sensors().collect()))
            .and_then(|a| a.with_assets(graph))
        })
        .as_ref()
        .map_err(Vec::as_slice)
}

impl Automation {
    /// Checks `jobs` and `schedules` against `graph`: unique names, selections that select
    /// assets, known jobs, valid cron strings and time zones. Every problem at once.
    pub fn check(
        graph: &AssetGraph,
        mut jobs: Vec<&'static JobDef>,
        mut schedules: Vec<&'static ScheduleDef>,
    ) -> Result<Automation, Vec<AutomationError>> {
        jobs.sort_by_key(|j| j.name());
        schedules.sort_by_key(|s| s.name());
        let mut errors = Vec::new();
        let names = |kind, found: Vec<(&'static str, orch_core::__private::SourceLocation)>| {
            found
                .windows(2)
                .filter(|pair| pair[0].0 == pair[1].0)
                .map(|pair| AutomationError::Duplicate {
                    kind,
                    name: pair[0].0.to_owned(),
                    first: pair[0].1.to_string(),
                    second: pair[1].1.to_string(),
                })
                .collect::<Vec<_>>()
        };
        errors.extend(names(
            "asset job",
            jobs.iter().map(|j| (j.name(), j.location())).collect(),
        ));
        errors.extend(names(
            "schedule",
            schedules.iter().map(|s| (s.name(), s.location())).collect(),
        ));
        let selects = |kind, name: &str, location: String, text: &str, errors: &mut Vec<_>| {
            let Some(reason) = selection_problem(graph, text) else {
                return;
            };
            errors.push(AutomationError::Selection {
                kind,
                name: name.to_owned(),
                location,
                reason,
            });
        };
        for job in &jobs {
            let location = job.location().to_string();
            selects(
                "asset job",
                job.name(),
                location,
                job.selection(),
                &mut errors,
            );
        }
        let by_name: HashMap<&str, &JobDef> = jobs.iter().map(|j| (j.name(), *j)).collect();
        let mut checked = Vec::with_capacity(schedules.len());
        let mut partitioned = HashMap::new();
        for schedule in schedules {
            let location = schedule.location().to_string();
            let selection = match schedule.target() {
                ScheduleTarget::Job(job) => by_name.get(job).map(|j| j.selection()),
                ScheduleTarget::Selection(text) => Some(text),
                _ => None,
            };
            match selection.map(|text| target_partitions(graph, text)) {
                Some(Ok(Some(partitions))) => {
                    partitioned.insert(schedule.name(), partitions);
                }
                Some(Err(reason)) => errors.push(AutomationError::Partitions {
                    name: schedule.name().to_owned(),
                    location: location.clone(),
                    reason,
                }),
                _ => {}
            }
            match schedule.target() {
                ScheduleTarget::Job(job)
                    if !by_name.contains_key(job) && crate::jobs::op_job(job).is_err() =>
                {
                    errors.push(AutomationError::UnknownJob {
                        name: schedule.name().to_owned(),
                        location: location.clone(),
                        job: job.to_owned(),
                    });
                }
                // A tick without `decide` runs the job with no config: it must need none.
                ScheduleTarget::Job(job) if schedule.decide().is_none() => {
                    if let Ok(op_job) = crate::jobs::op_job(job)
                        && let Err(e) = op_job.check_config(&orch_core::RunConfig::empty())
                    {
                        errors.push(AutomationError::JobNeedsConfig {
                            name: schedule.name().to_owned(),
                            location: location.clone(),
                            job: job.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                }
                ScheduleTarget::Selection(text) => {
                    selects(
                        "schedule",
                        schedule.name(),
                        location.clone(),
                        text,
                        &mut errors,
                    );
                }
                _ => {}
            }
            match schedule.cron_schedule() {
                Ok(cron) => checked.push((schedule, cron)),
                Err(e) => errors.push(AutomationError::Cron {
                    name: schedule.name().to_owned(),
                    location,
                    reason: e.to_string(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(Automation {
                jobs,
                sensors: Vec::new(),
                schedules: checked,
                partitioned,
                conditions: None,
                freshness: Vec::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// Adds `sensors`, checked against `graph` and the jobs: names unique among schedules and
    /// sensors (they share the store's tick and status tables), known jobs, selections that
    /// select assets.
    pub fn with_sensors(
        mut self,
        graph: &AssetGraph,
        mut sensors: Vec<&'static SensorDef>,
    ) -> Result<Automation, Vec<AutomationError>> {
        sensors.sort_by_key(|s| s.name());
        let mut errors = Vec::new();
        let mut seen: HashMap<&str, String> = self
            .schedules
            .iter()
            .map(|(s, _)| (s.name(), s.location().to_string()))
            .collect();
        for sensor in &sensors {
            let location = sensor.location().to_string();
            if let Some(first) = seen.insert(sensor.name(), location.clone()) {
                errors.push(AutomationError::Duplicate {
                    kind: "schedule or sensor",
                    name: sensor.name().to_owned(),
                    first,
                    second: location.clone(),
                });
            }
            match sensor.target() {
                Some(ScheduleTarget::Job(job))
                    if self.job(job).is_none() && crate::jobs::op_job(job).is_err() =>
                {
                    errors.push(AutomationError::UnknownJob {
                        name: sensor.name().to_owned(),
                        location,
                        job: job.to_owned(),
                    });
                }
                Some(ScheduleTarget::Selection(text)) => {
                    let reason = selection_problem(graph, text);
                    if let Some(reason) = reason {
                        errors.push(AutomationError::Selection {
                            kind: "sensor",
                            name: sensor.name().to_owned(),
                            location,
                            reason,
                        });
                    }
                }
                _ => {}
            }
        }
        if errors.is_empty() {
            self.sensors = sensors;
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// Adds the assets' `automation = ...` conditions and `freshness = ...` policies,
    /// checked: cron strings, time zones and durations that parse; conditions on
    /// unpartitioned assets.
    pub fn with_assets(
        mut self,
        graph: &'static AssetGraph,
    ) -> Result<Automation, Vec<AutomationError>> {
        let mut errors = Vec::new();
        let mut assets = Vec::new();
        let mut crons = HashMap::new();
        let mut crons_of = Vec::new();
        for &id in graph.topological_order() {
            let node = graph.node(id);
            if let Some(policy) = node.def.freshness_policy() {
                match policy.resolve() {
                    Ok(resolved) => self.freshness.push((id, policy, resolved)),
                    Err(reason) => errors.push(AutomationError::Freshness {
                        asset: node.key.to_string(),
                        location: node.def.location().to_string(),
                        reason,
                    }),
                }
            }
            let Some(condition) = node.def.automation_condition() else {
                continue;
            };
            let problem = |reason: String| AutomationError::Condition {
                asset: node.key.to_string(),
                location: node.def.location().to_string(),
                reason,
            };
            if let Some(partitions) = &node.partitions {
                errors.push(problem(format!(
                    "it has {} partitions, and automation conditions are evaluated for unpartitioned assets only so far; run its partitions with a partitioned schedule or `backfill`",
                    partitions.describe()
                )));
                continue;
            }
            for cron in condition.crons() {
                match cron.schedule() {
                    Ok(schedule) => {
                        crons.insert(cron.clone(), schedule);
                    }
                    Err(e) => errors.push(problem(format!("`{cron}`: {e}"))),
                }
            }
            let written = condition.to_string();
            crons_of.push(condition.crons().into_iter().cloned().collect());
            assets.push((id, condition, written));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.conditions = Some(Conditions {
            graph,
            assets,
            crons,
            crons_of,
        });
        Ok(self)
    }

    /// The assets with an automation condition, in topological order: the asset, its
    /// condition, and the condition as written.
    pub fn conditions(&self) -> &[(AssetId, AutomationCondition, String)] {
        self.conditions.as_ref().map_or(&[], |c| &c.assets)
    }

    /// The assets' freshness policies, in topological order: the asset, its policy, resolved.
    pub fn freshness(&self) -> &[(AssetId, FreshnessPolicy, ResolvedFreshness)] {
        &self.freshness
    }

    /// The asset graph the conditions are evaluated on.
    ///
    /// # Panics
    /// If the assets were not added ([`Automation::with_assets`]).
    pub fn graph(&self) -> &'static AssetGraph {
        self.conditions
            .as_ref()
            .map(|c| c.graph)
            .expect("Automation::graph is called after with_assets")
    }

    /// The cron strings of the `index`th condition (in [`Automation::conditions`]' order).
    pub(crate) fn crons_of(&self, index: usize) -> &[Cron] {
        self.conditions
            .as_ref()
            .and_then(|c| c.crons_of.get(index))
            .map_or(&[], Vec::as_slice)
    }

    /// The parsed schedule of a cron string a condition names.
    pub fn condition_cron(&self, cron: &Cron) -> Option<&CronSchedule> {
        self.conditions.as_ref()?.crons.get(cron)
    }

    /// The sensors, by name.
    pub fn sensors(&self) -> &[&'static SensorDef] {
        &self.sensors
    }

    /// The sensor called `name`.
    pub fn sensor(&self, name: &str) -> Option<&'static SensorDef> {
        self.sensors.iter().copied().find(|s| s.name() == name)
    }

    /// The run request of one run a sensor asked for: its job's (or its own) selection, with
    /// the run's partition and tags, tagged with the sensor (and the job, and the run key).
    /// `None` for a sensor without a target (a run-failure sensor that only alerts).
    pub fn sensor_request(&self, sensor: &SensorDef, run: &SensorRun) -> Option<RunRequest> {
        let mut request = match sensor.target()? {
            ScheduleTarget::Job(job) => self.job_request(job)?,
            ScheduleTarget::Selection(text) => RunRequest::selection(text.parse().ok()?),
            _ => return None,
        };
        for (k, v) in run.tags() {
            request = request.tag(k, v);
        }
        if let Some(key) = run.partition_key() {
            request = request.partition(key);
        }
        if let Some(key) = run.run_key() {
            request = request.tag(crate::storage::RUN_KEY_TAG, key);
        }
        if let Some(config) = run.run_config() {
            request = request.config(config.clone());
        }
        Some(
            request
                .tag(SENSOR_TAG, sensor.name())
                .with_trigger(crate::run::Trigger::Sensor {
                    name: sensor.name().to_owned(),
                }),
        )
    }

    /// The asset jobs, by name.
    pub fn jobs(&self) -> &[&'static JobDef] {
        &self.jobs
    }

    /// The job called `name`.
    pub fn job(&self, name: &str) -> Option<&'static JobDef> {
        self.jobs.iter().copied().find(|j| j.name() == name)
    }

    /// The schedules, by name, each with its parsed cron schedule.
    pub fn schedules(&self) -> &[(&'static ScheduleDef, CronSchedule)] {
        &self.schedules
    }

    /// The schedule called `name`, with its parsed cron schedule.
    pub fn schedule(&self, name: &str) -> Option<&(&'static ScheduleDef, CronSchedule)> {
        self.schedules.iter().find(|(s, _)| s.name() == name)
    }

    /// The run request of job `name`: an asset job's selection, or all the steps of an op
    /// job, tagged with [`JOB_TAG`].
    pub fn job_request(&self, name: &str) -> Option<RunRequest> {
        let Some(job) = self.job(name) else {
            return crate::jobs::op_job(name).ok().map(|job| job.request());
        };
        let selection = job.selection().parse().ok()?;
        Some(RunRequest::selection(selection).tag(JOB_TAG, job.name()))
    }

    /// The time-window partitions a tick of schedule `name` chooses from, if its target is
    /// partitioned.
    pub fn schedule_partitions(&self, name: &str) -> Option<&Partitions> {
        self.partitioned.get(name)
    }

    /// What the tick of `schedule` at `tick` does: its run request, or, for a schedule with a
    /// `decide` function, what that function asks for (each run with its tags, partition and
    /// run key; an error or a panic in it is a failed tick, not a crash).
    pub fn decide_tick(&self, schedule: &ScheduleDef, tick: Timestamp) -> TickDecision {
        let request = match self.schedule_request(schedule, tick) {
            Ok(request) => request,
            Err(reason) => return TickDecision::Skip(reason),
        };
        let Some(decide) = schedule.decide() else {
            return TickDecision::Run(vec![request]);
        };
        let zone = self
            .schedule(schedule.name())
            .map_or(jiff::tz::TimeZone::UTC, |(_, cron)| cron.zone().clone());
        let partition = self
            .schedule_partitions(schedule.name())
            .and_then(|p| p.last_key(tick, &[]));
        let ctx = orch_core::ScheduleContext::new(schedule.name(), tick.to_zoned(zone), partition);
        // On a thread of its own, with a time-out: a function that hangs fails its tick
        // instead of holding up the daemon (it is left to finish; what it returns is ignored),
        // and is not called again until it returns: a hung call costs one thread, not one per
        // tick.
        static IN_FLIGHT: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
        let name = schedule.name();
        {
            let mut going = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
            if going.contains(&name) {
                return TickDecision::Fail(
                    "its previous decide call timed out and has not returned yet; it is not called again until it does"
                        .to_owned(),
                );
            }
            going.push(name);
        }
        let done = move || {
            IN_FLIGHT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|n| *n != name);
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(format!("orch-schedule-{name}"))
            .spawn(move || {
                let decided =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decide(&ctx)));
                done();
                let _ = tx.send(decided);
            });
        if let Err(e) = spawned {
            done();
            return TickDecision::Fail(format!(
                "its decide function could not be called: no thread ({e})"
            ));
        }
        let timeout = schedule.decide_timeout();
        let decision = match rx.recv_timeout(timeout) {
            Ok(Ok(Ok(decision))) => decision,
            Ok(Ok(Err(e))) => {
                return TickDecision::Fail(format!(
                    "its decide function returned an error: {}",
                    crate::events::AssetFailure::from_error(&*e)
                ));
            }
            Ok(Err(panic)) => {
                return TickDecision::Fail(format!(
                    "its decide function {}",
                    crate::events::AssetFailure::from_panic(&*panic)
                ));
            }
            Err(_) => {
                return TickDecision::Fail(format!(
                    "its decide function did not return within its time-out of {} (set `timeout` on the schedule)",
                    humantime::format_duration(timeout)
                ));
            }
        };
        if let Some(reason) = decision.skip_reason() {
            return TickDecision::Skip(reason.to_owned());
        }
        TickDecision::Run(
            decision
                .requested_runs()
                .iter()
                .map(|run| {
                    let mut r = request.clone();
                    // orch's own tags (`orch/schedule`, `orch/job`) are kept: `skip_if_running`
                    // and `runs --tag` rely on them.
                    for (k, v) in run.tags() {
                        if !request.tags().contains_key(k) {
                            r = r.tag(k, v);
                        }
                    }
                    if let Some(key) = run.partition_key() {
                        r = r.partition(key);
                    }
                    if let Some(key) = run.run_key() {
                        r = r.tag(crate::storage::RUN_KEY_TAG, key);
                    }
                    if let Some(config) = run.run_config() {
                        r = r.config(config.clone());
                    }
                    r
                })
                .collect(),
        )
    }

    /// The run request the tick of `schedule` at `tick` makes: its job's (or its own)
    /// selection, tagged with the schedule (and the job); for a partitioned target, of the
    /// partition whose window ended last by `tick` (Dagster's
    /// `build_schedule_from_partitioned_job`). `Err` says why the tick runs nothing: no
    /// partition has ended yet.
    pub fn schedule_request(
        &self,
        schedule: &ScheduleDef,
        tick: Timestamp,
    ) -> Result<RunRequest, String> {
        let request = match schedule.target() {
            ScheduleTarget::Job(job) => self.job_request(job),
            ScheduleTarget::Selection(text) => text.parse().ok().map(RunRequest::selection),
            _ => None,
        }
        .ok_or_else(|| "its target does not resolve to a run".to_owned())?
        .tag(SCHEDULE_TAG, schedule.name());
        match self.partitioned.get(schedule.name()) {
            None => Ok(request),
            Some(partitions) => match partitions.last_key(tick, &[]) {
                Some(key) => Ok(request.partition(key)),
                None => Err(format!(
                    "no partition of its assets ({}) has ended by this tick",
                    partitions.describe()
                )),
            },
        }
    }
}

/// What is wrong with a job's, schedule's or sensor's selection `text` in `graph`, if
/// anything: it does not parse, names an unknown asset, or selects none.
fn selection_problem(graph: &AssetGraph, text: &str) -> Option<String> {
    match text.parse::<AssetSelection>().map(|s| s.resolve(graph)) {
        Ok(Ok(ids)) if !ids.is_empty() => None,
        Ok(Ok(_)) => Some("its selection selects no asset".to_owned()),
        Ok(Err(e)) | Err(e) => Some(e.to_string()),
    }
}

/// The time-window partitions of the partitioned assets `selection` selects in `graph`
/// (`None` if it selects none); an error if they are not time windows or not all the same.
fn target_partitions(graph: &AssetGraph, selection: &str) -> Result<Option<Partitions>, String> {
    let Ok(Ok(ids)) = selection
        .parse::<AssetSelection>()
        .map(|s| s.resolve(graph))
    else {
        return Ok(None); // reported as a selection error
    };
    let mut found: Option<(&Partitions, String)> = None;
    for id in ids {
        let node = graph.node(id);
        let Some(partitions) = &node.partitions else {
            continue;
        };
        if !partitions.is_time_window() {
            return Err(format!(
                "asset `{}` has {} partitions, and a tick cannot choose which to run; schedule a selection without it, or run its partitions with `backfill`",
                node.key,
                partitions.describe()
            ));
        }
        match &found {
            Some((first, key)) if first.declared() != partitions.declared() => {
                return Err(format!(
                    "its assets have different partitions (`{key}`: {}, `{}`: {}), and a tick runs one partition; give it one of them",
                    first.describe(),
                    node.key,
                    partitions.describe()
                ));
            }
            Some(_) => {}
            None => found = Some((partitions, node.key.to_string())),
        }
    }
    Ok(found.map(|(p, _)| p.clone()))
}

/// What one tick of a schedule does.
#[derive(Debug)]
#[non_exhaustive]
pub enum TickDecision {
    /// Queue these runs (one for a plain schedule; what its `decide` function asked for).
    Run(Vec<RunRequest>),
    /// Nothing, on purpose (why).
    Skip(String),
    /// Nothing: its `decide` function returned an error or panicked (why).
    Fail(String),
}

/// What a schedule's ticks run, as text: `job daily_refresh` or the selection.
pub fn target_text(schedule: &ScheduleDef) -> String {
    match schedule.target() {
        ScheduleTarget::Job(job) => format!("job {job}"),
        ScheduleTarget::Selection(text) => text.to_owned(),
        _ => String::new(),
    }
}

/// A run of the schedule or sensor `name` (tagged `tag=name`) that is still queued or going,
/// other than `except`: what `skip_if_running` skips for.
pub(crate) fn still_going(
    store: &dyn crate::storage::Storage,
    tag: &str,
    name: &str,
    except: &[orch_core::RunId],
) -> Result<Option<crate::storage::RunRecord>, crate::storage::StorageError> {
    use crate::storage::{RunFilter, RunStatus};
    let going = RunFilter::default()
        .tag(tag, name)
        .status(RunStatus::Queued)
        .status(RunStatus::Starting)
        .status(RunStatus::Running);
    Ok(store
        .runs(&going)?
        .into_iter()
        .find(|r| !except.contains(&r.id)))
}
