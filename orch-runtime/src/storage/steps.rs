//! The step queue: how a run's steps reach worker processes (`executor = "workers"`). A
//! store that has one ([`Storage::step_queue`](super::Storage::step_queue); the PostgreSQL
//! store does) keeps each step of a run as a row, hands ready steps to workers under a lease,
//! and commits each step's end with its materialization and the readiness of its children in
//! one transaction.
//!
//! The protocol:
//! - [`StepQueue::enqueue_steps`] records a run's steps; those with no upstream in the run
//!   are ready at once.
//! - [`StepQueue::claim_step`] gives a ready step (or one whose lease expired) to a worker
//!   whose compiled code version of it matches the run's plan, counting the delivery. The
//!   delivery count is the attempt and the fencing token: only that delivery can renew or
//!   complete it.
//! - [`StepQueue::renew_step`] extends the lease (the worker's heartbeat); `false` means the
//!   step was given to someone else (or canceled): stop and publish nothing.
//! - [`StepQueue::complete_step`] records the step's events and outcome, makes its children
//!   ready (or skips them if it failed), and ends the run when it was the last: one
//!   transaction, refused if the delivery is no longer the step's.
//! - A step whose lease expired after its last allowed delivery fails as "worker lost", and
//!   its downstream is skipped as for any failure ([`StepQueue::sweep`]).

use std::time::{Duration, SystemTime};

use orch_core::RunId;

use super::{EventRecord, LogRecord, StorageError};

/// One step of a run, as the coordinator plans it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpec {
    /// The asset it materializes.
    pub step: String,
    /// The code version the plan was made with: only a worker with the same one runs it.
    pub code_version: String,
    /// The steps of the same run it waits for.
    pub upstream: Vec<String>,
    /// The queue it goes to: only workers serving that queue claim it ([`QUEUE_TAG`]).
    pub queue: String,
}

/// The tag that sends steps to a queue other than [`DEFAULT_QUEUE`]: on an asset
/// (`#[asset(tags("orch/queue" = "gpu"))]`), for its steps; on a run
/// (`materialize --tag orch/queue=gpu`), for its steps whose asset has none. Workers serve
/// queues with `worker --queue NAME`.
pub const QUEUE_TAG: &str = "orch/queue";

/// The queue of steps with no [`QUEUE_TAG`], and what `worker` serves by default.
pub const DEFAULT_QUEUE: &str = "default";

/// How a run's steps are delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// How long a claimed step stays a worker's without a heartbeat.
    pub lease: Duration,
    /// Deliveries at most: a step whose worker is lost this many times fails.
    pub max_deliveries: u32,
}

impl Default for Delivery {
    /// A 30 s lease, 3 deliveries.
    fn default() -> Self {
        Delivery {
            lease: Duration::from_secs(30),
            max_deliveries: 3,
        }
    }
}

/// The code versions compiled into a worker, by asset, with an id for the whole set (a
/// build): a worker claims only steps whose planned code version is in its build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeVersions {
    id: String,
    versions: Vec<(String, String)>,
}

impl CodeVersions {
    /// The set of `(asset, code version)` pairs.
    pub fn new(mut versions: Vec<(String, String)>) -> CodeVersions {
        versions.sort_unstable();
        versions.dedup();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for (asset, version) in &versions {
            hasher.update(asset.as_bytes());
            hasher.update(&[0]);
            hasher.update(version.as_bytes());
            hasher.update(&[0]);
        }
        CodeVersions {
            id: format!("{:032x}", hasher.digest128()),
            versions,
        }
    }

    /// The set's id: equal sets, equal ids.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pairs, sorted.
    pub fn versions(&self) -> &[(String, String)] {
        &self.versions
    }
}

/// A step a worker holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedStep {
    /// Its run.
    pub run_id: RunId,
    /// The asset.
    pub step: String,
    /// Which delivery this is (1 for the first): the fencing token.
    pub attempt: u32,
    /// Who holds it.
    pub worker: String,
    /// When it became ready, and when this delivery claimed it (the server's clock).
    pub ready: SystemTime,
    /// When this delivery claimed it.
    pub claimed: SystemTime,
    /// Its lease.
    pub lease: Duration,
    /// The run's `max_deliveries`: the delivery after which a lost step fails.
    pub max_deliveries: u32,
}

/// A step waiting for a worker with its code version (a mixed deployment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitingStep {
    /// The asset.
    pub step: String,
    /// The code version the run's plan has for it.
    pub code_version: String,
    /// How long it has been ready.
    pub waiting: Duration,
}

/// A step as the queue keeps it: where it is, who ran it, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// The asset.
    pub step: String,
    /// `waiting`, `ready`, `running`, `succeeded`, `failed`, `skipped` or `canceled`.
    pub state: String,
    /// How many times it was claimed.
    pub deliveries: u32,
    /// The worker of its latest delivery.
    pub worker: Option<String>,
    /// When it became ready, was last claimed, and ended (the server's clock).
    pub ready: Option<SystemTime>,
    /// When its latest delivery claimed it.
    pub claimed: Option<SystemTime>,
    /// When it ended.
    pub ended: Option<SystemTime>,
}

/// How a step ended on its worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepEnd {
    /// It materialized.
    Succeeded,
    /// Its last attempt failed: its downstream is skipped.
    Failed,
    /// The run was canceled while it ran.
    Canceled,
}

impl StepEnd {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepEnd::Succeeded => "succeeded",
            StepEnd::Failed => "failed",
            StepEnd::Canceled => "canceled",
        }
    }
}

/// The queue of steps a store keeps for workers (see the [module docs](self)).
pub trait StepQueue: Send + Sync {
    /// Records run `run_id`'s steps (already begun with [`Storage::begin_run`](super::Storage::begin_run));
    /// the ones with no upstream among them are ready at once.
    fn enqueue_steps(
        &self,
        run_id: &str,
        steps: &[StepSpec],
        delivery: Delivery,
    ) -> Result<(), StorageError>;
    /// Claims the oldest ready step (or one whose lease expired) of one of `queues` that
    /// `build` (the code versions compiled into the worker) can run, recording its `started`
    /// event.
    fn claim_step(
        &self,
        worker: &str,
        build: &CodeVersions,
        queues: &[String],
    ) -> Result<Option<ClaimedStep>, StorageError>;
    /// Extends the lease of `step`; `false`: the delivery lost the step (its lease expired and
    /// another worker claimed it, it was failed as lost, or it was canceled once its lease
    /// had lapsed).
    fn renew_step(&self, step: &ClaimedStep) -> Result<bool, StorageError>;
    /// Ends `step` with its events (materialized or failed, checks, retries) and log lines,
    /// makes its children ready or skips them, and ends the run if it was the last step: one
    /// transaction. `false` (and nothing written): the delivery no longer holds the step.
    fn complete_step(
        &self,
        step: &ClaimedStep,
        end: StepEnd,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<bool, StorageError>;
    /// Gives `step` back to the queue for its next delivery after a short backoff (a second,
    /// doubling with each delivery, at most the lease), recording why in a `retried` event (a
    /// service it needs did not answer), rather than leave it until its lease lapses.
    /// `false` (and nothing written): the delivery no longer holds the step.
    fn release_step(&self, step: &ClaimedStep, why: &str) -> Result<bool, StorageError>;
    /// Fails the steps whose lease expired after their last delivery ("worker lost") and
    /// skips their downstream; returns how many.
    fn sweep(&self) -> Result<usize, StorageError>;
    /// Cancels run `run_id`'s steps that have not started (a step running goes on until its
    /// worker sees the cancellation); ends the run if nothing runs.
    fn cancel_steps(&self, run_id: &str) -> Result<(), StorageError>;
    /// Run `run_id`'s steps ready for longer than `older_than` with no worker to claim them.
    fn waiting_steps(
        &self,
        run_id: &str,
        older_than: Duration,
    ) -> Result<Vec<WaitingStep>, StorageError>;
    /// Run `run_id`'s steps, in the order they were planned.
    fn steps(&self, run_id: &str) -> Result<Vec<StepRecord>, StorageError>;
    /// Blocks until a step may have become ready (or `timeout` passed): the queue's
    /// notification, so idle workers do not poll. Spurious wakeups are allowed.
    fn wait_for_steps(&self, timeout: Duration) -> Result<(), StorageError>;
}
