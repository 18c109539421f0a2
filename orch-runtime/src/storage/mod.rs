//! The run store: every run, every asset event and every captured log line, kept between
//! processes so `runs`, `run show` and `history` can answer.
//!
//! [`Storage`] is the seam: the embedded default is [`SqliteStorage`] (one SQLite database in
//! WAL mode under the state directory); a server-backed store can implement the same trait
//! without touching callers. Writes go through [`StoreSink`], which batches them on a
//! background thread, so recording a run adds a few microseconds per asset to the run itself.

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod conformance_automation;
mod locks;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
mod schema;
mod sqlite;
mod sqlite_assets;
mod sqlite_automation;
mod sqlite_lease;
mod sqlite_maintenance;
mod sqlite_queue;
mod sqlite_rows;
mod steps;
mod values;
mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use orch_core::RunId;

pub use locks::RunLock;
#[cfg(feature = "postgres")]
pub use postgres::{AliveGuard, PgStorage};
pub(crate) use records::owner;
pub use records::{AUTOMATION_TICKS, RUN_KEY_TAG};
pub use records::{
    AssetState, AutomationAssetRecord, AutomationCommit, CANCEL_POLL, CancelOutcome, CheckRecord,
    EventKind, EventRecord, FreshnessChange, InstigatorState, InstigatorStatus, LeaseHolder,
    LeaseOutcome, LogPage, LogRecord, PartitionStatus, RunCursor, RunFilter, RunRecord, RunStatus,
    TickCommit, TickRecord, TickStatus,
};
pub use sqlite::SqliteStorage;
pub use steps::{
    ClaimedStep, CodeVersions, DEFAULT_QUEUE, Delivery, QUEUE_TAG, StepEnd, StepQueue, StepRecord,
    StepSpec, WaitingStep,
};
pub use writer::StoreSink;

pub(crate) use writer::{NOT_REQUIRED, not_required_reason, skip_reason};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database failed (corrupt file, disk full, locked for too long, connection lost).
    #[error("the run store at {location} failed: {source}")]
    Database {
        /// The database: a file path or a server URL without its password.
        location: String,
        /// What the backend said (a `rusqlite::Error` for the embedded store).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file of the state directory could not be read or written.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer orch.
    #[error(
        "the run store at {path} has schema version {found}, newer than this orch understands ({supported}); upgrade orch or point ORCH_HOME elsewhere"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A queued run was asked to start, but it is not queued (another launcher started it,
    /// or it was canceled).
    #[error("run {run_id} is {status}, not queued; it was started or ended by someone else")]
    NotQueued {
        /// The run.
        run_id: String,
        /// Its status.
        status: String,
    },
    /// Another run is materializing some of the same assets right now.
    #[error(
        "asset `{asset}` is being materialized by run {holder} right now; wait for it to finish or select other assets"
    )]
    AssetBusy {
        /// The contested asset.
        asset: String,
        /// The run that holds it (as written in its lock file).
        holder: String,
    },
    /// No run has this id (or id prefix), or the prefix is ambiguous.
    #[error("{0}")]
    NoSuchRun(String),
}

impl StorageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A store URL with any password in it cut out (for messages and `orch config`).
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// How long history is kept. The latest materialization of each asset is always kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Log lines older than this are deleted.
    pub logs: Duration,
    /// Runs and events older than this are deleted.
    pub runs: Duration,
}

impl Default for Retention {
    /// 30 days of logs, 90 days of runs (`retention_days` in the configuration sets both).
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Retention {
            logs: day * 30,
            runs: day * 90,
        }
    }
}

impl Retention {
    /// Keeps logs and runs for `days` days.
    pub fn days(days: u32) -> Retention {
        let day = Duration::from_secs(86_400);
        Retention {
            logs: day * days,
            runs: day * days,
        }
    }
}

/// A rows-in, rows-out store of runs, events and logs, shared by every process of a
/// deployment: the command line, a daemon, the UI and (later) remote workers. The embedded
/// default is [`SqliteStorage`]; another backend implements this trait and passes the same
/// conformance tests (`storage/conformance.rs`).
pub trait Storage: Send + Sync {
    /// Records a new run (with a [`EventKind::RunStarted`] event) and claims its planned
    /// assets, atomically: if a live run holds any of them, nothing is recorded and the answer
    /// is [`StorageError::AssetBusy`]. Claims of a run whose owner died are taken over.
    ///
    /// A run already recorded as queued ([`Storage::enqueue_run`], [`Storage::commit_tick`])
    /// is started instead: its status, start time, plan size and owner are updated, and its
    /// request is kept as queued. Only one caller can start it; the others get
    /// [`StorageError::NotQueued`].
    fn begin_run(&self, run: &RunRecord, assets: &[String]) -> Result<(), StorageError>;
    /// Records a run as queued ([`RunRecord::queued`]): it waits for a launcher.
    fn enqueue_run(&self, run: &RunRecord) -> Result<(), StorageError>;
    /// Ends a run that is still queued (canceled, or unable to start), with the reason as
    /// its end event's message. Returns `false` (and changes nothing) if it is not queued.
    fn end_queued_run(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, StorageError>;
    /// Appends events and log lines, atomically.
    fn append(
        &self,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<(), StorageError>;
    /// Records how a run ended (with a [`EventKind::RunEnded`] event) and releases its
    /// assets.
    fn end_run(
        &self,
        run_id: &str,
        status: RunStatus,
        ended: SystemTime,
    ) -> Result<(), StorageError> {
        self.end_run_timed(run_id, status, ended, None)
    }
    /// [`Storage::end_run`], keeping where the run's time went with it (a launch's own runs;
    /// read back as [`RunRecord::timings`]).
    fn end_run_timed(
        &self,
        run_id: &str,
        status: RunStatus,
        ended: SystemTime,
        timings: Option<&crate::events::RunTimings>,
    ) -> Result<(), StorageError>;
    /// Says that the owner of `run_id` is alive now.
    fn heartbeat(&self, run_id: &str) -> Result<(), StorageError>;
    /// Runs, newest first, as the filter says (one page of them).
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StorageError>;
    /// One run by id or unique id prefix.
    fn run(&self, id_or_prefix: &str) -> Result<RunRecord, StorageError>;
    /// A run's events in order.
    fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StorageError> {
        self.events_after(run_id, 0, 0)
    }
    /// A run's events with a sequence number above `after_seq`, in order, at most `limit`
    /// (0: all). Following a run: call again with the last `seq` seen.
    fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError>;
    /// Every run's events with a sequence number above `seq`, in order, at most `limit` (0:
    /// all): how another process follows everything that happens.
    fn events_since(&self, seq: u64, limit: usize) -> Result<Vec<EventRecord>, StorageError>;
    /// The sequence number of the latest event (0 when there is none): where a follower that
    /// wants only what happens from now on starts.
    fn latest_seq(&self) -> Result<u64, StorageError>;
    /// A run's log lines in order.
    fn logs(&self, run_id: &str) -> Result<Vec<LogRecord>, StorageError> {
        Ok(self
            .logs_page(run_id, LogPage::After { id: 0, limit: 0 })?
            .into_iter()
            .map(|(_, line)| line)
            .collect())
    }
    /// One page of a run's log lines, in order, each with its id (increasing within a run):
    /// the lines after a cursor (following a run), or the ones just before it (paging back
    /// from the end of a long log).
    fn logs_page(&self, run_id: &str, page: LogPage)
    -> Result<Vec<(u64, LogRecord)>, StorageError>;
    /// Asks run `id_or_prefix` to stop: a queued run ends canceled at once; a starting or
    /// running one is asked (its process, wherever it runs, sees the request within
    /// [`CANCEL_POLL`] and cancels as Ctrl-C would); an ended one is left as it is.
    fn request_cancel(&self, id_or_prefix: &str) -> Result<CancelOutcome, StorageError>;
    /// Whether someone asked run `run_id` to stop ([`Storage::request_cancel`]).
    fn cancel_requested(&self, run_id: &str) -> Result<bool, StorageError>;
    /// The latest materialization of every asset that has one (with its consumed input
    /// versions), by asset key.
    fn latest_materializations(
        &self,
    ) -> Result<std::collections::HashMap<String, EventRecord>, StorageError>;
    /// The latest materialization of each of `assets` that has one: what a run that loads
    /// them reads (a backend reads just those; the default filters every asset's).
    fn latest_materializations_of(
        &self,
        assets: &[String],
    ) -> Result<std::collections::HashMap<String, EventRecord>, StorageError> {
        let mut all = self.latest_materializations()?;
        all.retain(|asset, _| assets.contains(asset));
        Ok(all)
    }
    /// An asset's materializations, newest first.
    fn materializations(&self, asset: &str, limit: usize)
    -> Result<Vec<EventRecord>, StorageError>;
    /// The latest state of every asset that has any.
    fn asset_states(&self) -> Result<std::collections::HashMap<String, AssetState>, StorageError>;
    /// Adds keys to the dynamic partitions `name` (keys already there are kept as they are);
    /// returns how many were new.
    fn add_dynamic_partitions(&self, name: &str, keys: &[String]) -> Result<usize, StorageError>;
    /// The keys of the dynamic partitions `name`, in the order they were added.
    fn dynamic_partitions(&self, name: &str) -> Result<Vec<String>, StorageError>;
    /// The last outcome of every partition of `asset` that ever ran (materialized or failed),
    /// in no particular order.
    fn partition_statuses(&self, asset: &str) -> Result<Vec<PartitionStatus>, StorageError>;
    /// The latest materialization of every partition of `asset` whose last outcome is a
    /// materialization (with its code version and consumed input versions), by partition key.
    fn partition_materializations(
        &self,
        asset: &str,
    ) -> Result<std::collections::HashMap<String, EventRecord>, StorageError>;
    /// Each schedule's (or sensor's) status as last set by `schedule start|stop`, by name.
    /// A name that is not here has its declared default status.
    fn instigator_states(
        &self,
    ) -> Result<std::collections::HashMap<String, InstigatorState>, StorageError>;
    /// Sets the status of schedule (or sensor) `name`; `kind` is `schedule` or `sensor`.
    fn set_instigator_status(
        &self,
        name: &str,
        kind: &str,
        status: InstigatorStatus,
    ) -> Result<(), StorageError>;
    /// Whether every schedule, sensor and automation condition is paused (`automation pause`).
    fn automation_paused(&self) -> Result<bool, StorageError>;
    /// Pauses or resumes all automation, store-wide and persisted.
    fn set_automation_paused(&self, paused: bool) -> Result<(), StorageError>;
    /// Starts the tick of `instigator` scheduled at `scheduled`, or returns the one already
    /// stored for that instant (a tick is stored once, ever): `(tick, created)`.
    fn begin_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
    ) -> Result<(TickRecord, bool), StorageError>;
    /// Records how a tick ended: its status, the runs it launched, why (skipped or failed).
    /// Only a tick still `started` is changed: a tick ends once.
    fn end_tick(
        &self,
        instigator: &str,
        scheduled: SystemTime,
        status: TickStatus,
        run_ids: &[orch_core::RunId],
        reason: Option<&str>,
    ) -> Result<(), StorageError>;
    /// Commits a tick's evaluation atomically: its runs recorded as queued, the tick ended
    /// with their ids, and the cursor set. A process killed before this call leaves the tick
    /// started, to be evaluated again; after it, everything is there, once.
    ///
    /// A run tagged [`RUN_KEY_TAG`] whose key this instigator has launched before, ever, is
    /// dropped (run keys outlive retention). Returns the ids of the runs queued, or `None`
    /// (changing nothing) if the tick is not `started` (another process committed it).
    fn commit_tick(&self, commit: &TickCommit<'_>) -> Result<Option<Vec<RunId>>, StorageError>;
    /// Commits one evaluation of declarative automation atomically: its runs recorded as
    /// queued, the assets' states and evaluations stored, and (if it requested runs) a tick
    /// of [`AUTOMATION_TICKS`] with their ids. A process killed before this call evaluates
    /// again; after it, every request is there once.
    fn commit_automation(&self, commit: &AutomationCommit<'_>) -> Result<(), StorageError>;
    /// Every asset's stored automation state and latest evaluation.
    fn automation_assets(&self) -> Result<Vec<AutomationAssetRecord>, StorageError>;
    /// One asset's.
    fn automation_asset(&self, asset: &str) -> Result<Option<AutomationAssetRecord>, StorageError>;
    /// Asset check results (events of kind [`EventKind::CheckEvaluated`]) of `asset` (of every
    /// asset with `None`): with `latest`, only the latest of each check, by asset and check
    /// name; otherwise every result, newest first, at most `limit` (0: all).
    fn check_results(
        &self,
        asset: Option<&str>,
        latest: bool,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StorageError>;
    /// Records changes of assets' freshness states, atomically.
    fn record_freshness(&self, changes: &[FreshnessChange]) -> Result<(), StorageError>;
    /// The latest recorded change of each asset's freshness state (its current state as the
    /// daemon last saw it), by asset key.
    fn freshness(&self)
    -> Result<std::collections::HashMap<String, FreshnessChange>, StorageError>;
    /// The recorded changes of `asset`'s freshness state (of every asset with `None`), newest
    /// first, at most `limit`.
    fn freshness_changes(
        &self,
        asset: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FreshnessChange>, StorageError>;
    /// Takes the lease `name` for `holder` (its id and a description for people) for `ttl`,
    /// if it is free, has lapsed, or is the holder's already; otherwise says who holds it.
    fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        description: &str,
        ttl: Duration,
    ) -> Result<LeaseOutcome, StorageError>;
    /// Extends `holder`'s lease `name` by `ttl` from now. `false`: the holder lost it (it
    /// lapsed and someone else took it).
    fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StorageError>;
    /// Lets go of `holder`'s lease `name` (nothing if it is not the holder's).
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StorageError>;
    /// Who holds the lease `name`, if anyone (lapsed or not).
    fn lease(&self, name: &str) -> Result<Option<LeaseHolder>, StorageError>;
    /// The `limit` latest ticks of `instigator` (by scheduled instant, newest first).
    fn ticks(&self, instigator: &str, limit: usize) -> Result<Vec<TickRecord>, StorageError>;
    /// The cursor stored under `name` (a schedule's last evaluated instant, a sensor's cursor).
    fn cursor(&self, name: &str) -> Result<Option<String>, StorageError>;
    /// Stores (or, with `None`, removes) the cursor under `name`.
    fn set_cursor(&self, name: &str, value: Option<&str>) -> Result<(), StorageError>;
    /// Marks runs whose process died as crashed; returns their ids.
    fn recover_crashed(&self) -> Result<Vec<String>, StorageError>;
    /// Deletes what `retention` no longer keeps; returns the number of rows deleted.
    fn apply_retention(&self, retention: Retention) -> Result<usize, StorageError>;
    /// Keeps `id` (a run, a daemon) alive in the eyes of every process sharing this store
    /// for as long as the returned value lives, and for no longer than this process: how
    /// [`Storage::recover_crashed`], [`Storage::begin_run`]'s claims and a daemon's takeover
    /// tell a dead owner from a live one. A file store holds a lock file; a server store a
    /// lock its server lets go of when the connection ends.
    fn hold_alive(&self, id: &str) -> Result<AliveHold, StorageError>;
    /// Whether some process holds `id` alive ([`Storage::hold_alive`]). A store in memory
    /// belongs to this process alone: everything in it is alive.
    fn is_alive(&self, id: &str) -> Result<bool, StorageError>;
    /// The queue that hands this store's runs' steps to worker processes, if the store has
    /// one (the PostgreSQL store does; the embedded SQLite store does not).
    fn step_queue(&self) -> Option<&dyn StepQueue> {
        None
    }
}

/// What [`Storage::hold_alive`] returns: the id is alive until this is dropped.
pub type AliveHold = Box<dyn std::any::Any + Send + Sync>;
