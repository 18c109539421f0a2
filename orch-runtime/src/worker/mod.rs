//! `orch worker`: a process that executes the steps of runs whose `[run] executor` is
//! `"workers"`, claimed from the store's step queue. It is the user's own program (every
//! asset, resource and I/O manager compiled in), so any number of them, on any number of
//! machines sharing the store and the outputs' storage, split a run's steps between them.
//!
//! Each of `concurrency` slots claims a step, runs it ([`crate::run::step`]) while a
//! heartbeat renews its lease, and commits its end ([`StepQueue::complete_step`]). A slot
//! that loses its step (the lease passed to another worker, or could not be renewed for a
//! lease's length) stops it and publishes nothing. Idle slots sleep until the queue says a
//! step is ready (PostgreSQL's NOTIFY), polling once a second as a fallback.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::instance::Instance;
use crate::storage::{
    ClaimedStep, CodeVersions, EventKind, EventRecord, StepEnd, StepQueue, StorageError,
};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Steps at once.
    pub concurrency: usize,
    /// Who this worker is, in the store's events (default: `pid@host`).
    pub name: Option<String>,
    /// The queues it serves (default: [`DEFAULT_QUEUE`](crate::storage::DEFAULT_QUEUE)).
    pub queues: Vec<String>,
}

impl Default for WorkerOptions {
    /// One step at a time.
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            name: None,
            queues: vec![crate::storage::DEFAULT_QUEUE.to_owned()],
        }
    }
}

/// Why a worker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The store has no step queue.
    #[error(
        "this run store has no step queue; workers share a PostgreSQL store: set [store] url (ORCH_STORE_URL) to postgres://..."
    )]
    NoQueue,
    /// The assets could not be discovered.
    #[error(transparent)]
    Definitions(#[from] crate::MaterializeError),
    /// The async runtime could not start.
    #[error("could not start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// What a worker did, by the time it stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerReport {
    /// Steps it ran and committed.
    pub completed: u64,
    /// Steps it ran but whose end it could not commit (lost, or refused).
    pub abandoned: u64,
}

/// What a worker tells its caller as it goes.
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerEvent<'a> {
    /// A step was claimed.
    Claimed(&'a ClaimedStep),
    /// A step ended and its end was committed.
    Completed(&'a ClaimedStep, StepEnd, Duration),
    /// A step's end was not committed: why.
    Abandoned(&'a ClaimedStep, String),
    /// The store could not be reached; the worker tries again.
    StoreError(&'a StorageError),
}

/// A worker over an instance's store (see the [module docs](self)).
pub struct Worker {
    instance: Instance,
    /// The runs whose steps this worker ran, as recorded (what a step needs of its run does
    /// not change).
    runs: Mutex<std::collections::HashMap<orch_core::RunId, crate::storage::RunRecord>>,
    options: WorkerOptions,
    name: String,
    build: CodeVersions,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("concurrency", &self.options.concurrency)
            .finish_non_exhaustive()
    }
}

/// Wakes idle slots when the queue may have a step for them.
struct Wake {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Worker {
    /// A worker for `instance`'s store, running the assets compiled into this program.
    pub fn new(instance: Instance, options: WorkerOptions) -> Result<Worker, WorkerError> {
        if instance.storage().step_queue().is_none() {
            return Err(WorkerError::NoQueue);
        }
        let graph = crate::definitions().map_err(crate::MaterializeError::Definitions)?;
        // Every asset, and every step of every op job.
        let jobs = crate::jobs::op_jobs().map_err(|e| crate::MaterializeError::from(e.clone()))?;
        let build = std::iter::once(graph)
            .chain(jobs.iter().map(|job| job.graph()))
            .flat_map(|graph| {
                (0..graph.len()).map(move |id| {
                    let node = graph.node(id);
                    (node.key.to_string(), node.def.code_version().to_owned())
                })
            })
            .collect();
        let build = CodeVersions::new(build);
        let name = options.name.clone().unwrap_or_else(crate::storage::owner);
        Ok(Worker {
            instance,
            runs: Mutex::default(),
            options,
            name,
            build,
        })
    }

    /// The queues this worker serves.
    pub fn queues(&self) -> &[String] {
        &self.options.queues
    }

    /// The name this worker records its steps under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Claims and runs steps until `stop` is cancelled; then lets its running steps end.
    pub fn run(
        &self,
        stop: &CancellationToken,
        on_event: &(dyn Fn(WorkerEvent<'_>) + Sync),
    ) -> Result<WorkerReport, WorkerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.options.concurrency.clamp(1, 4))
            .enable_all()
            .build()
            .map_err(WorkerError::Runtime)?;
        let wake = Wake {
            generation: Mutex::new(0),
            changed: Condvar::new(),
        };
        let completed = AtomicU64::new(0);
        let abandoned = AtomicU64::new(0);
        let queue = self.queue();
        std::thread::scope(|scope| {
            // The listener: one connection that waits for the queue's notifications.
            scope.spawn(|| {
                let mut last_sweep = Instant::now();
                while !stop.is_cancelled() {
                    if queue.wait_for_steps(Duration::from_secs(1)).is_err() {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    *wake.generation.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    wake.changed.notify_all();
                    if last_sweep.elapsed() >= Duration::from_secs(1) {
                        last_sweep = Instant::now();
                        let _ = queue.sweep();
                    }
                }
                wake.changed.notify_all();
            });
            for _ in 0..self.options.concurrency.max(1) {
                scope.spawn(|| {
                    self.slot(stop, &wake, &runtime, on_event, &completed, &abandoned);
                });
            }
        });
        Ok(WorkerReport {
            completed: completed.load(Ordering::Relaxed),
            abandoned: abandoned.load(Ordering::Relaxed),
        })
    }

    fn queue(&self) -> &dyn StepQueue {
        self.instance
            .storage()
            .step_queue()
            .expect("checked in Worker::new")
    }

    /// One slot: claim, run, commit, until stopped.
    fn slot(
        &self,
        stop: &CancellationToken,
        wake: &Wake,
        runtime: &tokio::runtime::Runtime,
        on_event: &(dyn Fn(WorkerEvent<'_>) + Sync),
        completed: &AtomicU64,
        abandoned: &AtomicU64,
    ) {
        let queue = self.queue();
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let seen = *wake.generation.lock().unwrap_or_else(|p| p.into_inner());
            match queue.claim_step(&self.name, &self.build, &self.options.queues) {
                Ok(Some(step)) => {
                    backoff = Duration::from_millis(100);
                    on_event(WorkerEvent::Claimed(&step));
                    match self.execute(&step, runtime) {
                        Ok((end, took)) => {
                            completed.fetch_add(1, Ordering::Relaxed);
                            on_event(WorkerEvent::Completed(&step, end, took));
                        }
                        Err(why) => {
                            abandoned.fetch_add(1, Ordering::Relaxed);
                            on_event(WorkerEvent::Abandoned(&step, why));
                        }
                    }
                }
                Ok(None) => {
                    let generation = wake.generation.lock().unwrap_or_else(|p| p.into_inner());
                    if *generation == seen && !stop.is_cancelled() {
                        let _ = wake
                            .changed
                            .wait_timeout(generation, Duration::from_secs(1));
                    }
                }
                Err(e) => {
                    // The store is unreachable: try again, less and less often.
                    on_event(WorkerEvent::StoreError(&e));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The run `step` belongs to, read once.
    fn run_of(&self, step: &ClaimedStep) -> Result<crate::storage::RunRecord, StorageError> {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(run) = runs.get(&step.run_id) {
            return Ok(run.clone());
        }
        let run = self.instance.storage().run(step.run_id.as_str())?;
        // A long-lived worker sees many runs: keep the latest few.
        if runs.len() >= 64 {
            runs.clear();
        }
        runs.insert(step.run_id.clone(), run.clone());
        Ok(run)
    }

    /// Runs a claimed step with its lease renewed, and commits its end. `Err`: why nothing
    /// was committed.
    fn execute(
        &self,
        step: &ClaimedStep,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<(StepEnd, Duration), String> {
        let started = Instant::now();
        let storage = self.instance.storage();
        let queue = self.queue();
        let cancel = CancellationToken::new();
        let lost = AtomicBool::new(false);
        let done = (Mutex::new(false), Condvar::new());
        // The lease is the run's (its coordinator's configuration), the heartbeat this
        // worker's: renew at least three times a lease whatever each says.
        let every = self
            .instance
            .config()
            .worker_heartbeat()
            .min(step.lease / 3)
            .max(Duration::from_millis(10));
        let outcome = std::thread::scope(|scope| {
            // The heartbeat: renews the lease, and watches for a cancel request.
            scope.spawn(|| {
                // Counted from the claim: a lease's length without a renewal and the step
                // may be someone else's.
                let mut renewed = Instant::now() - started.elapsed().min(step.lease);
                let mut first = true;
                loop {
                    if !first {
                        let finished = done.0.lock().unwrap_or_else(|p| p.into_inner());
                        let (finished, _) = done
                            .1
                            .wait_timeout_while(finished, every, |f| !*f)
                            .unwrap_or_else(|p| p.into_inner());
                        if *finished {
                            return;
                        }
                    }
                    first = false;
                    match queue.renew_step(step) {
                        Ok(true) => renewed = Instant::now(),
                        Ok(false) => {
                            // The step is no longer this delivery's.
                            lost.store(true, Ordering::Release);
                            cancel.cancel();
                            return;
                        }
                        Err(_) => {}
                    }
                    if renewed.elapsed() >= step.lease {
                        // Another worker may hold it by now: stop, publish nothing.
                        lost.store(true, Ordering::Release);
                        cancel.cancel();
                        return;
                    }
                    if storage
                        .cancel_requested(step.run_id.as_str())
                        .unwrap_or(false)
                    {
                        cancel.cancel();
                    }
                }
            });
            // Whatever happens below (a panic in an I/O manager too), the heartbeat ends.
            let _done = Done(&done);
            let outcome = self.run_of(step).map_err(Outcome::StoreDown);
            outcome.and_then(|run| {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    runtime.block_on(crate::run::step::run_step(
                        &self.instance,
                        &run,
                        &step.step,
                        cancel.clone(),
                    ))
                }));
                // A storage service that is down (object storage) is worth another delivery,
                // unless this is the last.
                let last = step.attempt >= step.max_deliveries;
                match ran {
                    Ok(Ok(run)) => match run.unavailable {
                        Some(why) if !last => Err(Outcome::Unavailable(why)),
                        _ => Ok(run),
                    },
                    Ok(Err(crate::MaterializeError::Load(
                        e @ crate::io::LoadError::Unavailable { .. },
                    ))) if !last => Err(Outcome::Unavailable(e.to_string())),
                    // The store could not be read to start it: give it up, to be delivered
                    // again, rather than fail it.
                    Ok(Err(crate::MaterializeError::Storage(e))) => Err(Outcome::StoreDown(e)),
                    Ok(Err(e)) => Err(Outcome::Failed(e.to_string())),
                    Err(panic) => Err(Outcome::Failed(format!(
                        "the worker panicked running it: {}",
                        orch_core::error::panic_text(&*panic)
                    ))),
                }
            })
        });
        if lost.load(Ordering::Acquire) {
            return Err(format!(
                "lost step `{}` of run {} (its lease could not be renewed, or the step is no longer this delivery's); nothing published",
                step.step, step.run_id
            ));
        }
        let (end, events, logs) = match outcome {
            Ok(run) => (run.end, run.events, run.logs),
            Err(Outcome::StoreDown(e)) => {
                return Err(format!(
                    "could not start step `{}` of run {}: {e}; it will be delivered again",
                    step.step, step.run_id
                ));
            }
            Err(Outcome::Unavailable(why)) => {
                // Back to the queue now; if even that fails, its lease lapses.
                let released = queue.release_step(step, &why).unwrap_or(false);
                return Err(format!(
                    "step `{}` of run {} (delivery {}): {why}; given up, to be delivered again{}",
                    step.step,
                    step.run_id,
                    step.attempt,
                    if released {
                        " after a backoff"
                    } else {
                        " after its lease"
                    }
                ));
            }
            // It could not even start (its inputs could not be loaded, ...): a failure.
            Err(Outcome::Failed(why)) => (
                StepEnd::Failed,
                vec![EventRecord {
                    attempt: Some(step.attempt),
                    duration: Some(started.elapsed()),
                    message: Some(why),
                    ..EventRecord::new(
                        step.run_id.clone(),
                        step.step.parse().ok(),
                        EventKind::Failed,
                    )
                }],
                Vec::new(),
            ),
        };
        // Committing is safe to try again (the delivery is the fencing token): a store that
        // blinked does not cost the step a redelivery.
        let mut tries = 0;
        let mut pause = Duration::from_millis(100);
        loop {
            tries += 1;
            match queue.complete_step(step, end, &events, &logs) {
                Ok(true) => return Ok((end, started.elapsed())),
                Ok(false) if tries == 1 => {
                    return Err(format!(
                        "the end of step `{}` of run {} was refused: the step is no longer this delivery's (its lease passed to another worker, it was failed as lost, or the run was canceled)",
                        step.step, step.run_id
                    ));
                }
                Ok(false) => {
                    return Err(format!(
                        "the end of step `{}` of run {} may have been committed before the store's answer was lost; it is no longer this delivery's",
                        step.step, step.run_id
                    ));
                }
                Err(e) if tries >= 4 || started.elapsed() + pause >= step.lease => {
                    return Err(format!(
                        "could not commit the end of step `{}` of run {}: {e}",
                        step.step, step.run_id
                    ));
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause *= 4;
                }
            }
        }
    }
}

/// Why a step did not run to an end worth committing.
enum Outcome {
    /// The store could not be read: give the step up.
    StoreDown(StorageError),
    /// A service it needs is down (its inputs or its output could not be loaded or stored):
    /// give it up, to be delivered again.
    Unavailable(String),
    /// It failed before its asset ran (its inputs, its planning) or the worker panicked.
    Failed(String),
}

/// Tells the heartbeat that the step is over, when dropped.
struct Done<'a>(&'a (Mutex<bool>, Condvar));

impl Drop for Done<'_> {
    fn drop(&mut self) {
        *self.0.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.0.1.notify_all();
    }
}
