//! The daemon: one process per store that evaluates schedules on time and starts the runs
//! they queue, within the queue's limits. The command line's `daemon` and `daemon --once` are
//! thin shells over [`Daemon`]; a program embedding orch runs one the same way.
//!
//! - **One at a time.** The daemon holds a lease in the store, renewed by a heartbeat thread
//!   that nothing else blocks (a slow evaluation or a busy run never lets it lapse). A second
//!   daemon is refused with the holder's name; when the holder dies, the next one takes over
//!   once the lease lapses.
//! - **On time.** It sleeps until the next tick of any schedule (or the poll interval, to
//!   notice runs queued by others and schedules started or stopped), evaluates, and starts
//!   what the ticks queued in the same pass: a tick's run starts milliseconds after its
//!   instant.
//! - **Exactly once.** Ticks commit their runs as queued with the tick and its cursor
//!   ([`request_tick`](crate::automation::request_tick)); starting a queued run is itself
//!   once. A daemon killed anywhere leaves work the next one finishes, never repeats.

mod launcher;
mod lease;
mod queue;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use orch_core::RunId;
use tokio_util::sync::CancellationToken;

pub(crate) use launcher::retry_later;
pub use launcher::{EXIT_RETRY_LATER, Launcher};
use queue::runs_to_start;
pub use queue::{QueueLimits, TagLimit};

use crate::automation::{
    Automation, AutomationEvaluation, AutomationEvaluator, FreshnessMonitor, ScheduleEvaluation,
    SensorEvaluated, SensorEvaluation, SensorOutcome, TickError, evaluate_schedules,
    evaluate_sensors, run_sensor, sensor_states,
};
use crate::instance::Instance;
use crate::storage::{FreshnessChange, LeaseHolder, RunFilter, RunRecord, RunStatus, StorageError};
use launcher::{Ended, Exit, Launches};

/// How often the daemon looks for new events in the store when assets have automation
/// conditions: an eager downstream starts this soon after its upstream is materialized, by
/// whichever process.
const AUTOMATION_POLL: Duration = Duration::from_millis(50);

/// The name of the daemon's lease in the store.
pub const DAEMON_LEASE: &str = "daemon";

/// How a daemon runs. Build it with `..DaemonOptions::default()`: fields may be added.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// How long the lease lasts without a heartbeat (default 30 s; renewed every third of
    /// it). A daemon that dies is replaced at most this long after.
    pub lease: Duration,
    /// The longest sleep between two passes (default 1 s): how soon it notices runs queued
    /// by others, schedules started or stopped, and `automation pause`.
    pub poll: Duration,
    /// How queued runs start.
    pub launcher: Launcher,
    /// The queue's limits.
    pub limits: QueueLimits,
    /// How often the outputs' object storage (`[storage] url`) is swept of objects no
    /// committed materialization refers to, in the background (default every hour, first at
    /// start); `None`: never (`orch storage sweep` still does).
    pub sweep_every: Option<Duration>,
    /// What the sweep deletes: objects at least this old (default an hour; see
    /// [`SweepOptions::older_than`](crate::io::SweepOptions)).
    pub sweep_older_than: Duration,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            launcher: Launcher::InProcess,
            limits: QueueLimits::default(),
            sweep_every: Some(Duration::from_secs(3600)),
            sweep_older_than: Duration::from_secs(3600),
        }
    }
}

/// Why the daemon stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// Another daemon holds the store.
    #[error(
        "another daemon holds this store: {}, last heartbeat {}s ago; stop it first (its lease lapses {}s after its last heartbeat, then the next daemon takes over)",
        .0.description,
        secs_since(.0.heartbeat),
        secs_between(.0.heartbeat, .0.expires)
    )]
    Held(LeaseHolder),
    /// This daemon's lease lapsed (it was frozen longer than the lease) and another took it.
    #[error(
        "this daemon lost its lease on the store (it could not renew it in time) and stopped; {0}"
    )]
    LeaseLost(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A tick could not be evaluated.
    #[error(transparent)]
    Tick(#[from] TickError),
}

fn secs_since(t: SystemTime) -> u64 {
    SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs())
}

fn secs_between(a: SystemTime, b: SystemTime) -> u64 {
    b.duration_since(a).map_or(0, |d| d.as_secs())
}

/// What the daemon did, as it does it (for a log or a console).
#[derive(Debug)]
#[non_exhaustive]
pub enum DaemonEvent<'a> {
    /// It holds the store's lease and is evaluating.
    Started {
        /// Its description in the lease (`daemon pid 42 on host`).
        holder: &'a str,
    },
    /// A schedule was evaluated (only evaluations that did something, in the long-running
    /// daemon: a tick, or a schedule first seen running).
    Schedule(&'a ScheduleEvaluation),
    /// A sensor was evaluated (only evaluations that ran it, in the long-running daemon).
    Sensor(&'a SensorEvaluation),
    /// Declarative automation requested assets (only evaluations that did, in the
    /// long-running daemon).
    Automation(&'a AutomationEvaluation),
    /// An asset's freshness state changed (recorded in the store).
    Freshness(&'a FreshnessChange),
    /// A queued run was started.
    Launched(&'a RunId),
    /// A run it started ended (its stored status).
    Ended(&'a RunId, RunStatus),
    /// A run could not start now and stays queued (why).
    StillQueued(&'a RunId, &'a str),
    /// A run could never start and is recorded as failed (why).
    GaveUp(&'a RunId, &'a str),
    /// Something went wrong that the daemon survives (a store error in one pass).
    Warning(&'a str),
    /// It is stopping (asked to), and waits for this many runs it started.
    Stopping(usize),
}

/// What `once` launched and how each run ended.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct OnceReport {
    /// The schedules' evaluations, in name order.
    pub evaluations: Vec<ScheduleEvaluation>,
    /// The sensors' evaluations, in name order.
    pub sensors: Vec<SensorEvaluation>,
    /// The evaluation of the assets' automation conditions.
    pub automation: AutomationEvaluation,
    /// The changes of freshness states it recorded.
    pub freshness: Vec<FreshnessChange>,
    /// The runs it started, with how each ended, in the order they started.
    pub runs: Vec<(RunId, RunStatus)>,
    /// Runs it gave up on (recorded as failed), with why.
    pub gave_up: Vec<(RunId, String)>,
}

impl OnceReport {
    /// Whether every run it started succeeded.
    pub fn success(&self) -> bool {
        self.gave_up.is_empty() && self.runs.iter().all(|(_, s)| *s == RunStatus::Succeeded)
    }
}

/// Something that wakes the daemon's loop.
#[derive(Debug)]
enum Wake {
    /// A launch ended.
    Launch(RunId, Exit),
    /// Stop (asked to, or the lease was lost).
    Stop,
    /// A run was queued in this process.
    Queued,
    /// A sensor's evaluation (on its own thread) ended.
    Sensor(&'static str, Result<SensorOutcome, TickError>),
}

/// The long-running daemon's sensors being evaluated, each on its own thread.
struct Sensors {
    evaluating: std::collections::HashSet<&'static str>,
    wake: mpsc::Sender<Wake>,
}

/// A daemon over one instance: see the [module docs](self).
pub struct Daemon {
    instance: Instance,
    automation: &'static Automation,
    options: DaemonOptions,
    holder: String,
    description: String,
    /// What declarative automation read of the store, between evaluations.
    evaluator: std::sync::Mutex<AutomationEvaluator>,
    /// The freshness states it recorded.
    freshness: std::sync::Mutex<FreshnessMonitor>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("holder", &self.description)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Daemon {
    /// A daemon for `instance`'s store, evaluating `automation`.
    pub fn new(
        instance: Instance,
        automation: &'static Automation,
        options: DaemonOptions,
    ) -> Self {
        let owner = crate::storage::owner();
        Daemon {
            holder: format!("daemon-{}", RunId::new()),
            description: format!("daemon pid {}", owner.replacen('@', " on ", 1)),
            instance,
            automation,
            options,
            evaluator: std::sync::Mutex::new(AutomationEvaluator::new()),
            freshness: std::sync::Mutex::new(FreshnessMonitor::new()),
        }
    }

    /// This daemon's description, as another daemon is told it.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Evaluates every schedule as of `at` once, starts every queued run (within the limits),
    /// waits for them, and lets go of the store: what `daemon --once` does, for system cron,
    /// CI and tests. Successive calls behave as one long-running daemon.
    pub fn once(
        &self,
        at: Timestamp,
        report: &mut dyn FnMut(DaemonEvent<'_>),
    ) -> Result<OnceReport, DaemonError> {
        let (tx, rx) = mpsc::channel();
        let lease = self.lease(tx.clone())?;
        report(DaemonEvent::Started {
            holder: &self.description,
        });
        let store = self.instance.storage();
        store.recover_crashed()?;
        let mut done = OnceReport {
            evaluations: evaluate_schedules(&self.instance, self.automation, at)?,
            ..OnceReport::default()
        };
        for e in &done.evaluations {
            report(DaemonEvent::Schedule(e));
        }
        done.sensors = evaluate_sensors(&self.instance, self.automation, at)?;
        for e in &done.sensors {
            report(DaemonEvent::Sensor(e));
        }
        done.automation = self.evaluate_automation(at)?;
        report(DaemonEvent::Automation(&done.automation));
        done.freshness = self.watch_freshness(at)?;
        for change in &done.freshness {
            report(DaemonEvent::Freshness(change));
        }
        let mut launches = Launches::new(tx);
        // Runs it launched that another launcher started first (a killed daemon's child):
        // waited for by polling the store.
        let mut elsewhere: Vec<RunId> = Vec::new();
        loop {
            let (started, gave_up) = self.start_queued(&mut launches, report)?;
            done.gave_up.extend(gave_up);
            elsewhere.retain(|id| match store.run(id.as_str()).map(|r| r.status) {
                Ok(RunStatus::Starting | RunStatus::Running) | Err(_) => true,
                Ok(status) => {
                    report(DaemonEvent::Ended(id, status));
                    done.runs.push((id.clone(), status));
                    false
                }
            });
            if launches.in_flight.is_empty()
                && started == 0
                && elsewhere.is_empty()
                && !self.has_queued()?
            {
                break;
            }
            let wake = rx.recv_timeout(self.options.poll.min(Duration::from_millis(100)));
            if lease.lost.load(Ordering::Acquire) {
                return Err(DaemonError::LeaseLost(self.lost_lease_note()));
            }
            if let Ok(Wake::Launch(id, exit)) = wake
                && self.settle(&mut launches, &id, exit, report, Some(&mut done))?
            {
                elsewhere.push(id);
            }
            let _ = store.recover_crashed();
        }
        drop(lease);
        Ok(done)
    }

    /// Runs until `shutdown` is cancelled: evaluates schedules on time, starts queued runs,
    /// keeps the lease. When asked to stop, it starts nothing more, waits for the runs it
    /// started, and lets go of the store.
    pub fn run(
        &self,
        shutdown: &CancellationToken,
        report: &mut dyn FnMut(DaemonEvent<'_>),
    ) -> Result<(), DaemonError> {
        let (tx, rx) = mpsc::channel();
        let lease = self.lease(tx.clone())?;
        report(DaemonEvent::Started {
            holder: &self.description,
        });
        // Cancelled when `run` returns, however it returns, so the thread that turns the
        // token into a wake-up ends with it.
        let stop = shutdown.child_token();
        let _stop_on_return = stop.clone().drop_guard();
        {
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::Builder::new()
                .name("orch-daemon-stop".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().build();
                    if let Ok(rt) = rt {
                        rt.block_on(stop.cancelled());
                    }
                    let _ = tx.send(Wake::Stop);
                })
                .map_err(|e| StorageError::Io {
                    path: self.instance.config().home().to_owned(),
                    source: e,
                })?;
        }
        {
            // Runs queued in this process (the web UI, a program) start at once.
            let tx = tx.clone();
            self.instance
                .on_enqueue(Box::new(move || tx.send(Wake::Queued).is_ok()));
        }
        let mut sensors = Sensors {
            evaluating: std::collections::HashSet::new(),
            wake: tx.clone(),
        };
        let mut launches = Launches::new(tx);
        let store = Arc::clone(self.instance.storage());
        let mut sensor_due: Option<Timestamp> = None;
        let mut next_tick: Option<Timestamp> = None;
        let mut evaluated_at: Option<Instant> = None;
        let (mut swept_at, sweeping) = (None, Arc::new(std::sync::atomic::AtomicBool::new(false)));
        // Whether something (a run ending or queued, a sensor) woke the loop last time.
        let mut woken = true;
        let settle = |launches: &mut Launches,
                      sensors: &mut Sensors,
                      wake: Wake,
                      report: &mut dyn FnMut(DaemonEvent<'_>)| {
            match wake {
                Wake::Launch(id, exit) => {
                    if let Err(e) = self.settle(launches, &id, exit, report, None) {
                        // The store failed while reading how it ended: the next pass sees it.
                        report(DaemonEvent::Warning(&e.to_string()));
                    }
                }
                Wake::Sensor(name, outcome) => {
                    sensors.evaluating.remove(name);
                    match outcome {
                        Ok(outcome) => report(DaemonEvent::Sensor(&SensorEvaluation::new(
                            name,
                            SensorEvaluated::Evaluated(outcome),
                        ))),
                        Err(e) => report(DaemonEvent::Warning(&format!(
                            "sensor `{name}` could not be evaluated: {e}"
                        ))),
                    }
                }
                Wake::Stop | Wake::Queued => {}
            }
        };
        while !shutdown.is_cancelled() {
            if lease.lost.load(Ordering::Acquire) {
                return Err(DaemonError::LeaseLost(self.lost_lease_note()));
            }
            // Schedules and sensors are evaluated when one is due, and every poll interval (to
            // notice `schedule start`, `automation pause`); a wake-up for a queued or ended
            // run only starts what the queue allows, at once.
            let now = Timestamp::now();
            let evaluate = evaluated_at.is_none_or(|t: Instant| t.elapsed() >= self.options.poll)
                || next_tick.is_some_and(|t| t <= now)
                || sensor_due.is_some_and(|t| t <= now);
            let passed = match evaluate {
                true => self.pass(&mut launches, &mut sensors, report).map(|due| {
                    sensor_due = due;
                    evaluated_at = Some(Instant::now());
                    next_tick = self.next_tick(now);
                }),
                // Something new in the store (a materialization, a run that ended) is what
                // automation conditions wait for; the queue is looked at when something woke
                // the daemon or automation queued a run, not at every 50 ms look at the store.
                false => {
                    let queued = match self.automation_if_changed(report) {
                        Ok(queued) => queued,
                        Err(e) => {
                            // Not a failed pass: the sensors' and schedules' timing stays.
                            report(DaemonEvent::Warning(&e.to_string()));
                            false
                        }
                    };
                    match woken || queued {
                        true => self.start_queued(&mut launches, report).map(drop),
                        false => Ok(()),
                    }
                }
            };
            if let Err(e) = passed {
                // One failed pass (the store busy or down) is not the end: try again, at the
                // poll interval rather than at an overdue sensor's pace.
                sensor_due = None;
                evaluated_at = Some(Instant::now());
                report(DaemonEvent::Warning(&e.to_string()));
            }
            if evaluate {
                let _ = store.recover_crashed();
                self.sweep_if_due(&mut swept_at, &sweeping);
            }
            // Everything that woke it is handled before the next pass: many runs ending or
            // queued at once make one pass, not one each.
            woken = false;
            match rx.recv_timeout(self.sleep(sensor_due, next_tick, evaluated_at)) {
                Ok(first) => {
                    woken = true;
                    settle(&mut launches, &mut sensors, first, report);
                    while let Ok(more) = rx.try_recv() {
                        settle(&mut launches, &mut sensors, more, report);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let in_process = self.options.launcher == Launcher::InProcess;
        report(DaemonEvent::Stopping(launches.in_flight.len()));
        // Children were sent the same signal by the terminal, or go on by themselves; runs in
        // this process end before it does.
        while in_process && !launches.in_flight.is_empty() {
            if let Ok(wake) = rx.recv_timeout(self.options.poll) {
                settle(&mut launches, &mut sensors, wake, report);
            }
        }
        drop(lease);
        Ok(())
    }

    /// Sweeps the outputs' object storage on a thread of its own (a large bucket takes a while
    /// to list) when `sweep_every` has passed since the last sweep began, and none is running.
    fn sweep_if_due(
        &self,
        last: &mut Option<Instant>,
        sweeping: &Arc<std::sync::atomic::AtomicBool>,
    ) {
        let Some(every) = self.options.sweep_every else {
            return;
        };
        if self.instance.io_managers().objects().is_none()
            || last.is_some_and(|t: Instant| t.elapsed() < every)
            || sweeping.swap(true, Ordering::AcqRel)
        {
            return;
        }
        *last = Some(Instant::now());
        let (instance, flag) = (self.instance.clone(), Arc::clone(sweeping));
        let options = crate::io::SweepOptions::older_than(self.options.sweep_older_than);
        let spawned = std::thread::Builder::new()
            .name("orch-sweep".to_owned())
            .spawn(move || {
                // Let go of even if the sweep panics, so that the next one runs.
                struct Done(Arc<std::sync::atomic::AtomicBool>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _done = Done(flag);
                match instance.sweep_outputs(options) {
                    Some(Ok(report)) if !report.deleted.is_empty() => tracing::info!(
                        "swept {} unreferenced objects ({} bytes) of {} listed",
                        report.deleted.len(),
                        report.deleted_bytes,
                        report.listed
                    ),
                    Some(Err(e)) => tracing::warn!("could not sweep the outputs' storage: {e}"),
                    _ => {}
                }
            });
        if spawned.is_err() {
            sweeping.store(false, Ordering::Release);
        }
    }

    /// What happens to the runs of a daemon that lost its lease.
    fn lost_lease_note(&self) -> String {
        match self.options.launcher {
            Launcher::InProcess => {
                "runs in this process stop with it and are marked crashed at the next start"
                    .to_owned()
            }
            _ => "the runs it started in child processes go on and are recorded".to_owned(),
        }
    }

    /// One pass of the long-running daemon: schedules and sensors as of now, then the queue.
    /// Returns when the next running sensor is due.
    fn pass(
        &self,
        launches: &mut Launches,
        sensors: &mut Sensors,
        report: &mut dyn FnMut(DaemonEvent<'_>),
    ) -> Result<Option<Timestamp>, DaemonError> {
        use crate::automation::Evaluated;
        let now = Timestamp::now();
        for e in evaluate_schedules(&self.instance, self.automation, now)? {
            if matches!(
                e.evaluated,
                Evaluated::Ticked { .. } | Evaluated::Started { .. }
            ) {
                report(DaemonEvent::Schedule(&e));
            }
        }
        // Each due sensor on a thread of its own: a slow one delays no tick and no run. Its
        // end wakes the loop, whose next pass starts what it queued.
        let mut due: Option<Timestamp> = None;
        for (sensor, state) in sensor_states(&self.instance, self.automation, now)? {
            match state {
                Some(SensorEvaluated::NotDue { next }) => {
                    due = Some(due.map_or(next, |d| d.min(next)));
                }
                Some(_) => {}
                None if sensors.evaluating.insert(sensor.name()) => {
                    let (instance, automation) = (self.instance.clone(), self.automation);
                    let tx = sensors.wake.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("orch-sensor-tick-{}", sensor.name()))
                        .spawn(move || {
                            let outcome =
                                run_sensor(&instance, automation, sensor, Timestamp::now());
                            let _ = tx.send(Wake::Sensor(sensor.name(), outcome));
                        });
                    if let Err(e) = spawned {
                        sensors.evaluating.remove(sensor.name());
                        report(DaemonEvent::Warning(&format!(
                            "sensor `{}` could not be evaluated: no thread ({e})",
                            sensor.name()
                        )));
                    }
                }
                None => {} // still being evaluated
            }
        }
        // Automation and freshness failing (the store busy) hold up no queued run.
        match self.evaluate_automation(now) {
            Ok(evaluated) if evaluated.run.is_some() => {
                report(DaemonEvent::Automation(&evaluated));
            }
            Ok(_) => {}
            Err(e) => report(DaemonEvent::Warning(&format!(
                "automation conditions could not be evaluated: {e}"
            ))),
        }
        match self.watch_freshness(now) {
            Ok(changes) => {
                for change in &changes {
                    report(DaemonEvent::Freshness(change));
                }
            }
            Err(e) => report(DaemonEvent::Warning(&format!(
                "freshness could not be evaluated: {e}"
            ))),
        }
        self.start_queued(launches, report)?;
        Ok(due)
    }

    /// Evaluates the assets' freshness policies as of `at`; records and returns the changes.
    fn watch_freshness(&self, at: Timestamp) -> Result<Vec<FreshnessChange>, DaemonError> {
        let mut monitor = self.freshness.lock().unwrap_or_else(|p| p.into_inner());
        Ok(monitor.evaluate(&self.instance, self.automation, at)?)
    }

    /// Evaluates the assets' automation conditions as of `at`.
    fn evaluate_automation(&self, at: Timestamp) -> Result<AutomationEvaluation, DaemonError> {
        let mut evaluator = self.evaluator.lock().unwrap_or_else(|p| p.into_inner());
        Ok(evaluator.evaluate(&self.instance, self.automation, at)?)
    }

    /// Evaluates the assets' automation conditions if the store recorded an event since the
    /// last evaluation; `true` if that queued a run.
    fn automation_if_changed(
        &self,
        report: &mut dyn FnMut(DaemonEvent<'_>),
    ) -> Result<bool, DaemonError> {
        if self.automation.conditions().is_empty() {
            return Ok(false);
        }
        let seen = self
            .evaluator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seq();
        if self.instance.storage().latest_seq()? > seen {
            let evaluated = self.evaluate_automation(Timestamp::now())?;
            if evaluated.run.is_some() {
                report(DaemonEvent::Automation(&evaluated));
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// How long to sleep: until the next tick of any schedule, the next due sensor, or the
    /// next poll, whichever comes first.
    fn sleep(
        &self,
        sensor_due: Option<Timestamp>,
        next_tick: Option<Timestamp>,
        evaluated_at: Option<Instant>,
    ) -> Duration {
        let now = Timestamp::now();
        let until =
            |t: Timestamp| Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO);
        let mut sleep = evaluated_at.map_or(Duration::ZERO, |t| {
            self.options.poll.saturating_sub(t.elapsed())
        });
        if let Some(due) = sensor_due {
            // At least a few milliseconds, so a store that keeps failing is not spun on.
            sleep = sleep.min(until(due).max(Duration::from_millis(5)));
        }
        if let Some(tick) = next_tick {
            sleep = sleep.min(until(tick));
        }
        if !self.automation.conditions().is_empty() {
            sleep = sleep.min(AUTOMATION_POLL);
        }
        sleep
    }

    /// The next tick of any schedule after `now`.
    fn next_tick(&self, now: Timestamp) -> Option<Timestamp> {
        self.automation
            .schedules()
            .iter()
            .filter_map(|(_, cron)| cron.next_after(now))
            .map(|t| t.timestamp())
            .min()
    }

    fn has_queued(&self) -> Result<bool, StorageError> {
        let queued = RunFilter::default().status(RunStatus::Queued);
        Ok(!self
            .instance
            .storage()
            .runs(&RunFilter { limit: 1, ..queued })?
            .is_empty())
    }

    /// Starts the queued runs the limits allow; returns how many started, and the runs it
    /// gave up on (recorded as failed).
    fn start_queued(
        &self,
        launches: &mut Launches,
        report: &mut dyn FnMut(DaemonEvent<'_>),
    ) -> Result<(usize, Vec<(RunId, String)>), DaemonError> {
        let store = self.instance.storage();
        let mut queued = store.runs(&RunFilter::default().status(RunStatus::Queued))?;
        launches.forget_except(&queued);
        let mut gave_up = Vec::new();
        if queued.is_empty() {
            return Ok((0, gave_up));
        }
        queued.reverse(); // oldest first
        let now = Instant::now();
        let in_progress = store.runs(
            &RunFilter::default()
                .status(RunStatus::Starting)
                .status(RunStatus::Running),
        )?;
        // Launches whose run has not recorded its start yet count too.
        let mut counted: Vec<&RunRecord> = in_progress.iter().collect();
        counted.extend(
            queued
                .iter()
                .filter(|r| launches.in_flight.contains_key(&r.id)),
        );
        let ready: Vec<RunRecord> = queued
            .iter()
            .filter(|r| launches.ready(&r.id, now))
            .cloned()
            .collect();
        let mut started = 0;
        for id in runs_to_start(&self.options.limits, &ready, &counted) {
            match launches.launch(&self.instance, &self.options.launcher, &id) {
                Ok(()) => {
                    started += 1;
                    report(DaemonEvent::Launched(&id));
                }
                Err(why) => {
                    let why = format!("it could not be launched: {why}");
                    match launches.failed_to_launch(&self.instance, &id, why, self.options.poll)? {
                        Ended::GaveUp(why) => {
                            report(DaemonEvent::GaveUp(&id, &why));
                            gave_up.push((id.clone(), why));
                        }
                        Ended::StillQueued(why) => report(DaemonEvent::StillQueued(&id, &why)),
                        _ => {}
                    }
                }
            }
        }
        Ok((started, gave_up))
    }

    /// Handles the end of a launch; `true` if the run goes on under another launcher.
    fn settle(
        &self,
        launches: &mut Launches,
        id: &RunId,
        exit: Exit,
        report: &mut dyn FnMut(DaemonEvent<'_>),
        once: Option<&mut OnceReport>,
    ) -> Result<bool, DaemonError> {
        match launches.ended(&self.instance, id, exit, self.options.poll)? {
            Ended::Elsewhere => return Ok(true),
            Ended::Ran(status) | Ended::LauncherDied(status) => {
                report(DaemonEvent::Ended(id, status));
                if let Some(once) = once {
                    once.runs.push((id.clone(), status));
                }
            }
            Ended::StillQueued(why) => report(DaemonEvent::StillQueued(id, &why)),
            Ended::GaveUp(why) => {
                report(DaemonEvent::GaveUp(id, &why));
                if let Some(once) = once {
                    once.gave_up.push((id.clone(), why));
                }
            }
        }
        Ok(false)
    }
}
