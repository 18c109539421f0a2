//! Sensor evaluations: each running sensor whose interval has passed is called on a thread of
//! its own, with a time-out; what it decides is committed as one tick (its runs queued, the
//! new cursor stored, in one transaction). An error, a panic or a time-out is a failed tick
//! with the cause, and the cursor stays where it was. Run keys make each keyed run happen
//! once per sensor, ever (the store drops repeats in the same transaction).

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::time::SystemTime;

use jiff::Timestamp;
use orch_core::{DefaultStatus, RunId, SensorContext, SensorDef, SensorKind, SensorResult};

use super::{Automation, SENSOR_TAG, TickError};
use crate::instance::Instance;
use crate::storage::{InstigatorStatus, RunRecord, TickCommit, TickStatus};

/// What one evaluation of a sensor decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SensorOutcome {
    /// It asked for runs: these were queued; `repeated` more had run keys launched before.
    Requested {
        /// The runs queued.
        runs: Vec<RunId>,
        /// Runs asked for whose run key this sensor launched before (dropped).
        repeated: usize,
    },
    /// It asked for nothing (with its reason, or "no run requested").
    Skipped(String),
    /// It failed: an error, a panic or a time-out (the cause). Its cursor did not move.
    Failed(String),
}

/// What one daemon pass did with one sensor.
#[derive(Debug)]
#[non_exhaustive]
pub enum SensorEvaluated {
    /// All automation is paused.
    Paused,
    /// The sensor is stopped.
    Stopped,
    /// Its interval has not passed since its last evaluation.
    NotDue {
        /// When it is due.
        next: Timestamp,
    },
    /// It was evaluated.
    Evaluated(SensorOutcome),
}

/// One sensor's evaluation in a pass.
#[derive(Debug)]
#[non_exhaustive]
pub struct SensorEvaluation {
    /// The sensor's name.
    pub sensor: &'static str,
    /// What happened.
    pub evaluated: SensorEvaluated,
}

impl SensorEvaluation {
    pub(crate) fn new(sensor: &'static str, evaluated: SensorEvaluated) -> SensorEvaluation {
        SensorEvaluation { sensor, evaluated }
    }
}

fn cursor_key(name: &str) -> String {
    format!("sensor:{name}")
}

/// Evaluates every running sensor whose interval has passed as of `now`, one after another,
/// in name order. (The long-running daemon evaluates each due sensor on a thread of its own
/// instead, so a slow one delays nothing else.)
pub fn evaluate_sensors(
    instance: &Instance,
    automation: &Automation,
    now: Timestamp,
) -> Result<Vec<SensorEvaluation>, TickError> {
    let mut done = Vec::with_capacity(automation.sensors().len());
    for (sensor, state) in sensor_states(instance, automation, now)? {
        let evaluated = match state {
            None => SensorEvaluated::Evaluated(run_sensor(instance, automation, sensor, now)?),
            Some(state) => state,
        };
        done.push(SensorEvaluation {
            sensor: sensor.name(),
            evaluated,
        });
    }
    Ok(done)
}

/// Each sensor with why it is not evaluated as of `now` (paused, stopped, not due), or `None`
/// when it is due.
pub(crate) fn sensor_states(
    instance: &Instance,
    automation: &Automation,
    now: Timestamp,
) -> Result<Vec<(&'static SensorDef, Option<SensorEvaluated>)>, TickError> {
    let store = instance.storage();
    let paused = store.automation_paused()?;
    let states = store.instigator_states()?;
    let mut found = Vec::with_capacity(automation.sensors().len());
    for &sensor in automation.sensors() {
        let running = match states.get(sensor.name()) {
            Some(state) => state.status == InstigatorStatus::Running,
            None => sensor.default_status() == DefaultStatus::Running,
        };
        let state = if paused {
            Some(SensorEvaluated::Paused)
        } else if !running {
            Some(SensorEvaluated::Stopped)
        } else {
            match next_due(instance, sensor)? {
                Some(next) if next > now => Some(SensorEvaluated::NotDue { next }),
                _ => None,
            }
        };
        found.push((sensor, state));
    }
    Ok(found)
}

/// When `sensor` is next due: its last evaluation plus its interval (`None`: never evaluated).
pub(crate) fn next_due(
    instance: &Instance,
    sensor: &SensorDef,
) -> Result<Option<Timestamp>, TickError> {
    let last = instance.storage().ticks(sensor.name(), 1)?;
    Ok(last.first().and_then(|tick| {
        let due = tick.scheduled + sensor.interval();
        Timestamp::try_from(due).ok()
    }))
}

/// Evaluates `sensor` once, as of `now`, whatever its interval and status (`sensor tick`).
pub fn run_sensor(
    instance: &Instance,
    automation: &Automation,
    sensor: &'static SensorDef,
    now: Timestamp,
) -> Result<SensorOutcome, TickError> {
    let store = instance.storage();
    let name = sensor.name();
    let previous = store.ticks(name, 1)?;
    // An evaluation its process never finished: recorded as such (it ran nothing).
    if let Some(tick) = previous.first()
        && tick.status == TickStatus::Started
    {
        store.end_tick(
            name,
            tick.scheduled,
            TickStatus::Failure,
            &[],
            Some("interrupted: the process evaluating it stopped"),
        )?;
    }
    let at = SystemTime::from(now);
    let (tick, created) = store.begin_tick(name, at)?;
    if !created {
        // Evaluated at this very instant already (by another process, or `--at` again).
        return Ok(SensorOutcome::Skipped(format!(
            "already evaluated at this instant ({}); nothing done again",
            tick.status.as_str()
        )));
    }
    let key = cursor_key(name);
    let ctx = SensorContext::new(
        name,
        store.cursor(&key)?,
        previous
            .first()
            .and_then(|t| Timestamp::try_from(t.scheduled).ok()),
        now,
    );
    let commit = |status, reason: Option<&str>, runs: &[RunRecord], cursor: Option<&str>| {
        store.commit_tick(&TickCommit {
            instigator: name,
            scheduled: at,
            status,
            reason,
            runs,
            cursor: cursor.map(|c| (key.as_str(), Some(c))),
        })
    };
    let called = evaluate(instance, sensor, ctx)?;
    let result = match called {
        Ok(result) => result,
        Err(cause) => {
            commit(TickStatus::Failure, Some(&cause), &[], None)?;
            return Ok(SensorOutcome::Failed(cause));
        }
    };
    if result.requested().is_empty() {
        let reason = result
            .skip_reason()
            .unwrap_or("no run requested")
            .to_owned();
        commit(TickStatus::Skipped, Some(&reason), &[], result.new_cursor())?;
        return Ok(SensorOutcome::Skipped(reason));
    }
    if sensor.skip_if_running()
        && let Some(run) = super::still_going(&**store, SENSOR_TAG, name, &[])?
    {
        // The cursor stays: the runs were not launched, so the next evaluation asks again.
        let reason = format!(
            "skip_if_running: run {} of this sensor is still {}",
            run.id.short(),
            run.status.as_str()
        );
        commit(TickStatus::Skipped, Some(&reason), &[], None)?;
        return Ok(SensorOutcome::Skipped(reason));
    }
    let mut runs = Vec::with_capacity(result.requested().len());
    for run in result.requested() {
        let Some(request) = automation.sensor_request(sensor, run) else {
            let cause = match sensor.target() {
                None => "it asked for a run, but it has no `job` or `select` to run".to_owned(),
                Some(_) => "its target does not resolve to a run".to_owned(),
            };
            commit(TickStatus::Failure, Some(&cause), &[], None)?;
            return Ok(SensorOutcome::Failed(cause));
        };
        runs.push(RunRecord::queued(RunId::new(), &request));
    }
    match commit(TickStatus::Success, None, &runs, result.new_cursor())? {
        Some(queued) => Ok(SensorOutcome::Requested {
            repeated: runs.len() - queued.len(),
            runs: queued,
        }),
        None => Ok(SensorOutcome::Skipped(
            "another process ended this evaluation first; nothing done".to_owned(),
        )),
    }
}

/// The sensors whose function is running in this process.
static IN_FLIGHT: std::sync::Mutex<std::collections::BTreeSet<&'static str>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Calls the sensor's function (for an asset sensor, once per new materialization) on a
/// thread of its own, waiting at most its time-out. A function that does not return in time
/// is left to finish on its thread; its result is dropped.
fn evaluate(
    instance: &Instance,
    sensor: &'static SensorDef,
    ctx: SensorContext,
) -> Result<Result<SensorResult, String>, TickError> {
    Ok(match sensor.kind() {
        SensorKind::Custom(function) => call_with(sensor, move || function(&ctx)),
        SensorKind::OnAsset { asset, function } => {
            match asset_work(instance, asset, function, ctx)? {
                AssetWork::Nothing(reason, cursor) => Ok(SensorResult::skip(reason).cursor(cursor)),
                AssetWork::Call(work) => call_with(sensor, work),
            }
        }
        SensorKind::OnRunFailure(function) => match run_failure_work(instance, function, ctx)? {
            AssetWork::Nothing(reason, cursor) => Ok(SensorResult::skip(reason).cursor(cursor)),
            AssetWork::Call(work) => call_with(sensor, work),
        },
        _ => Err("this kind of sensor is not known to this orch".to_owned()),
    })
}

/// Runs `work` (the user's code) on a thread of its own, at most one per sensor at a time,
/// waiting at most the sensor's time-out.
fn call_with(
    sensor: &'static SensorDef,
    work: impl FnOnce() -> Result<SensorResult, orch_core::BoxError> + Send + 'static,
) -> Result<SensorResult, String> {
    // One call per sensor at a time: one that timed out and still runs is not called again
    // (threads would pile up, and two copies of the user's code would race) until it returns.
    let name = sensor.name();
    if !IN_FLIGHT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name)
    {
        return Err(
            "its previous evaluation timed out and has not returned yet; it is not called again until it does"
                .to_owned(),
        );
    }
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("orch-sensor-{name}"))
        .spawn(move || {
            let answer = std::panic::catch_unwind(AssertUnwindSafe(work));
            IN_FLIGHT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
            let _ = tx.send(answer);
        });
    if let Err(e) = spawned {
        IN_FLIGHT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        return Err(format!("could not start a thread for it: {e}"));
    }
    let timeout = sensor.timeout();
    match rx.recv_timeout(timeout) {
        Ok(Ok(Ok(result))) => Ok(result),
        Ok(Ok(Err(error))) => Err(format!(
            "it returned an error: {}",
            orch_core::__private::error_chain(&*error).join(": ")
        )),
        Ok(Err(panic)) => Err(format!(
            "it panicked: {}",
            orch_core::__private::panic_text(&*panic)
        )),
        Err(_) => Err(format!(
            "it did not return within its time-out of {} (set `timeout` on the sensor); it is left to finish, and what it returns is ignored",
            humantime::format_duration(timeout)
        )),
    }
}

/// What `sensor` would decide now, with its stored cursor, committing nothing (`sensor
/// preview`): its result, or why it failed.
pub fn preview_sensor(
    instance: &Instance,
    sensor: &'static SensorDef,
    now: Timestamp,
) -> Result<Result<SensorResult, String>, TickError> {
    let store = instance.storage();
    let last = store
        .ticks(sensor.name(), 1)?
        .first()
        .and_then(|t| Timestamp::try_from(t.scheduled).ok());
    let ctx = SensorContext::new(
        sensor.name(),
        store.cursor(&cursor_key(sensor.name()))?,
        last,
        now,
    );
    evaluate(instance, sensor, ctx)
}

/// The key the store keeps `sensor`'s cursor under.
pub fn sensor_cursor_key(sensor: &str) -> String {
    cursor_key(sensor)
}

/// What an asset sensor's evaluation has to do.
enum AssetWork {
    /// Nothing to hand over: why, and the cursor to store.
    Nothing(String, String),
    /// Hand each new materialization to the function, on the sensor's thread.
    Call(Box<dyn FnOnce() -> Result<SensorResult, orch_core::BoxError> + Send>),
}

/// How many events an asset sensor reads per evaluation (it goes on from there next time).
const ASSET_EVENTS_PER_EVALUATION: usize = 10_000;

/// Reads the materializations of `asset` since the sensor's cursor (the store's event
/// sequence number) and prepares the calls of `function`, one per materialization. A run it
/// asks for without a run key is keyed by the materialization (`ASSET@SEQ`), so each is acted
/// on once. The cursor becomes the last event read; the function's own cursor is ignored.
fn asset_work(
    instance: &Instance,
    asset: orch_core::StaticKey,
    function: orch_core::automation::AssetSensorFn,
    ctx: SensorContext,
) -> Result<AssetWork, TickError> {
    let store = instance.storage();
    let key = asset.to_key();
    let key_text = key.to_string();
    let Some(since) = ctx.cursor().and_then(|c| c.parse::<u64>().ok()) else {
        // First evaluation: from now on, not the asset's history.
        let latest = store
            .materializations(&key_text, 1)?
            .first()
            .and_then(|e| e.seq)
            .unwrap_or(0);
        return Ok(AssetWork::Nothing(
            format!("watching `{key_text}` from now on (materializations after event {latest})"),
            latest.to_string(),
        ));
    };
    let events = store.events_since(since, ASSET_EVENTS_PER_EVALUATION)?;
    let Some(last) = events.last().and_then(|e| e.seq) else {
        return Ok(AssetWork::Nothing(
            format!("no new materialization of `{key_text}`"),
            since.to_string(),
        ));
    };
    let materializations: Vec<orch_core::AssetMaterialization> = events
        .into_iter()
        .filter(|e| e.kind == crate::storage::EventKind::Materialized)
        .filter(|e| e.asset.as_ref() == Some(&key))
        .map(|e| {
            orch_core::AssetMaterialization::new(
                key.clone(),
                e.partition,
                e.run_id,
                Timestamp::try_from(e.time).unwrap_or(Timestamp::UNIX_EPOCH),
                e.data_version,
                e.seq.unwrap_or(0),
            )
        })
        .collect();
    if materializations.is_empty() {
        return Ok(AssetWork::Nothing(
            format!("no new materialization of `{key_text}`"),
            last.to_string(),
        ));
    }
    Ok(AssetWork::Call(Box::new(move || {
        let mut all = SensorResult::new();
        for m in &materializations {
            let result = function(&ctx, m)?;
            all = keyed_by_event(&result, &m.key.to_string(), m.seq, all);
        }
        Ok(all.cursor(last.to_string()))
    })))
}

/// Keys a run the function asked for without a key by the event it answers (`PREFIX@SEQ`, and
/// `#N` after the first), so each event is acted on once even if an evaluation is retried.
fn keyed_by_event(
    result: &SensorResult,
    prefix: &str,
    seq: u64,
    into: SensorResult,
) -> SensorResult {
    let mut all = into;
    let mut unkeyed = 0;
    for run in result.requested() {
        let run = match run.run_key() {
            Some(_) => run.clone(),
            None => {
                unkeyed += 1;
                let suffix = match unkeyed {
                    1 => String::new(),
                    n => format!("#{n}"),
                };
                run.clone().with_key(format!("{prefix}@{seq}{suffix}"))
            }
        };
        all = all.run(run);
    }
    all
}

/// Reads the runs that failed or crashed since the sensor's cursor (the store's event
/// sequence number) and prepares the calls of `function`, one per run, with what failed and
/// why. The first evaluation starts from now (past failures are not alerted on).
fn run_failure_work(
    instance: &Instance,
    function: orch_core::automation::RunFailureSensorFn,
    ctx: SensorContext,
) -> Result<AssetWork, TickError> {
    use crate::storage::{EventKind, RunStatus};
    let store = instance.storage();
    let Some(since) = ctx.cursor().and_then(|c| c.parse::<u64>().ok()) else {
        let latest = store.latest_seq()?;
        return Ok(AssetWork::Nothing(
            format!("watching for failed runs from now on (after event {latest})"),
            latest.to_string(),
        ));
    };
    let events = store.events_since(since, ASSET_EVENTS_PER_EVALUATION)?;
    let Some(last) = events.last().and_then(|e| e.seq) else {
        return Ok(AssetWork::Nothing(
            "no run failed".to_owned(),
            since.to_string(),
        ));
    };
    let mut failures = Vec::new();
    for e in events {
        let status = match e.kind {
            EventKind::RunEnded(s @ (RunStatus::Failed | RunStatus::Crashed)) => s,
            _ => continue,
        };
        let mut failure = orch_core::RunFailure::new(
            e.run_id.clone(),
            status.as_str(),
            Timestamp::try_from(e.time).unwrap_or(Timestamp::UNIX_EPOCH),
            e.seq.unwrap_or(0),
        );
        if let Ok(run) = store.run(e.run_id.as_str()) {
            failure.target = run.describe();
            failure.tags = run.tags;
        }
        failure.failures = store
            .events(e.run_id.as_str())?
            .into_iter()
            .filter(|a| a.kind == EventKind::Failed)
            .filter_map(|a| Some((a.asset?.to_string(), a.message.unwrap_or_default())))
            .collect();
        if failure.failures.is_empty()
            && let Some(why) = e.message
        {
            failure.failures.push((String::new(), why));
        }
        failures.push(failure);
    }
    if failures.is_empty() {
        return Ok(AssetWork::Nothing(
            "no run failed".to_owned(),
            last.to_string(),
        ));
    }
    Ok(AssetWork::Call(Box::new(move || {
        let mut all = SensorResult::new();
        for failure in &failures {
            let result = function(&ctx, failure)?;
            all = keyed_by_event(
                &result,
                &format!("run-failure:{}", failure.run_id),
                failure.seq,
                all,
            );
        }
        Ok(all.cursor(last.to_string()))
    })))
}
