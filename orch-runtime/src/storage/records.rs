//! What the run store keeps: runs, events and log lines, as owned values. [`EventRecord`] is
//! the one event vocabulary: the store writes it, the live feed of an
//! [`Instance`](crate::Instance) broadcasts it, the command line prints it, and (next) the UI
//! renders it. It is serde-serializable so a server can hand it out as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use orch_core::{AssetKey, LogLevel, MetadataValue, RunId};
use serde::{Deserialize, Serialize};

use crate::run::{PartitionScope, RunRequest, RunTarget, Trigger};

/// Where a run is in its life. Stored as its lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RunStatus {
    /// Accepted, waiting for a slot (a run queue; not used by in-process runs yet).
    Queued,
    /// Being planned and claimed.
    Starting,
    /// Running (or its process died and nobody has noticed yet).
    Running,
    /// Every planned asset succeeded.
    Succeeded,
    /// An asset failed.
    Failed,
    /// Someone asked it to stop, and it stopped.
    Canceled,
    /// The process died mid-run (found at the next start).
    Crashed,
}

impl RunStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Starting => "starting",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
            RunStatus::Crashed => "crashed",
        }
    }

    /// Reads a stored spelling (`started`, from stores written before run states, is
    /// `Running`); `None` for text no version of orch wrote.
    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "queued" => RunStatus::Queued,
            "starting" => RunStatus::Starting,
            "running" | "started" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "canceled" => RunStatus::Canceled,
            "crashed" => RunStatus::Crashed,
            _ => return None,
        })
    }

    /// Whether the run has ended (succeeded, failed, canceled or crashed).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled | RunStatus::Crashed
        )
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One run as stored: the request that started it, where it is, and how many assets ended
/// how.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run id.
    pub id: RunId,
    /// The target as stored (a selection in the CLI's syntax; `*` for everything).
    pub target: String,
    /// The partitions it materializes, in the definition's order.
    pub partitions: PartitionScope,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// What started it.
    pub trigger: Trigger,
    /// The run it re-executes, if any.
    pub parent: Option<RunId>,
    /// Whether its target was narrowed to the stale assets.
    pub only_stale: bool,
    /// The run config of an op job's run, as JSON (`None`: none given).
    pub config: Option<String>,
    /// Where its time went, phase by phase (runs a launch recorded, once ended).
    pub timings: Option<crate::events::RunTimings>,
    /// Where it is.
    pub status: RunStatus,
    /// When it started.
    pub started: SystemTime,
    /// When it ended, if it did.
    pub ended: Option<SystemTime>,
    /// How many assets (times partitions) were planned.
    pub planned: u32,
    /// Per status, how many asset events ended so (materialized, failed, skipped).
    pub counts: (u32, u32, u32),
    /// Who runs it: the process (`pid@host`) that holds it.
    pub owner: Option<String>,
    /// When its owner last said it is alive.
    pub heartbeat: Option<SystemTime>,
}

impl RunRecord {
    /// A run of `request` starting now, with `planned` planned assets.
    pub fn new(id: RunId, request: &RunRequest, planned: u32) -> RunRecord {
        RunRecord {
            id,
            target: request.target.to_string(),
            partitions: request.partitions.clone(),
            tags: request.tags.clone(),
            trigger: request.trigger.clone(),
            parent: request.parent.clone(),
            only_stale: request.only_stale,
            config: request.config.as_ref().map(|c| c.to_json()),
            status: RunStatus::Running,
            started: SystemTime::now(),
            ended: None,
            planned,
            counts: (0, 0, 0),
            owner: Some(owner()),
            heartbeat: Some(SystemTime::now()),
            timings: None,
        }
    }

    /// A run of `request` waiting in the queue since now: it has no owner and no planned
    /// assets until a launcher starts it ([`Storage::begin_run`](super::Storage::begin_run)
    /// with the same id).
    pub fn queued(id: RunId, request: &RunRequest) -> RunRecord {
        RunRecord {
            status: RunStatus::Queued,
            owner: None,
            heartbeat: None,
            ..RunRecord::new(id, request, 0)
        }
    }

    /// The request this run was made from, to make it again. Fails only if the stored
    /// target no longer parses (runs recorded before targets were stored apart from their
    /// `--stale` flag and partitions).
    pub fn request(&self) -> Result<RunRequest, orch_core::SelectionError> {
        let config = self
            .config
            .as_deref()
            .and_then(|c| orch_core::RunConfig::from_json(c).ok())
            .map(std::sync::Arc::new);
        Ok(RunRequest {
            target: RunTarget::parse_stored(&self.target)?,
            config,
            partitions: self.partitions.clone(),
            tags: self.tags.clone(),
            trigger: self.trigger.clone(),
            parent: self.parent.clone(),
            only_stale: self.only_stale,
        })
    }

    /// The target, the stale flag and the partitions, as one line (`stale in (+b) partition
    /// 2024-01-05`).
    pub fn describe(&self) -> String {
        let mut text = match self.only_stale {
            true => format!("stale in ({})", self.target),
            false => self.target.clone(),
        };
        if self.partitions != PartitionScope::None {
            text.push(' ');
            text.push_str(&self.partitions.to_string());
        }
        text
    }
}

/// This process, as a run's owner: `pid@host`.
pub(crate) fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("{}@{}", std::process::id(), host)
}

/// What happened: to an asset, or to the run as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run was planned and began (no asset).
    RunStarted,
    /// The run ended with this status (no asset).
    RunEnded(RunStatus),
    /// An asset's function was called.
    Started,
    /// An attempt failed and it will be retried.
    Retried,
    /// It produced its output.
    Materialized,
    /// Its last attempt failed (or its process died).
    Failed,
    /// An upstream failed, so it did not run.
    Skipped,
    /// The run was canceled before it ran.
    Canceled,
    /// One of its checks ran (the result is [`EventRecord::check`]).
    CheckEvaluated,
}

impl EventKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "run_started",
            EventKind::RunEnded(status) => match status {
                RunStatus::Succeeded => "run_succeeded",
                RunStatus::Failed => "run_failed",
                RunStatus::Canceled => "run_canceled",
                RunStatus::Crashed => "run_crashed",
                _ => "run_ended",
            },
            EventKind::Started => "started",
            EventKind::Retried => "retried",
            EventKind::Materialized => "materialized",
            EventKind::Failed => "failed",
            EventKind::Skipped => "skipped",
            EventKind::Canceled => "canceled",
            EventKind::CheckEvaluated => "check",
        }
    }

    /// Reads a stored spelling.
    pub fn parse(text: &str) -> Option<EventKind> {
        Some(match text {
            "run_started" => EventKind::RunStarted,
            "run_succeeded" => EventKind::RunEnded(RunStatus::Succeeded),
            "run_failed" => EventKind::RunEnded(RunStatus::Failed),
            "run_canceled" => EventKind::RunEnded(RunStatus::Canceled),
            "run_crashed" => EventKind::RunEnded(RunStatus::Crashed),
            "started" => EventKind::Started,
            "retried" => EventKind::Retried,
            "materialized" => EventKind::Materialized,
            "failed" => EventKind::Failed,
            "skipped" => EventKind::Skipped,
            "canceled" => EventKind::Canceled,
            "check" => EventKind::CheckEvaluated,
            _ => return None,
        })
    }

    /// Whether it is about the whole run rather than one asset.
    pub fn is_run_event(self) -> bool {
        matches!(self, EventKind::RunStarted | EventKind::RunEnded(_))
    }
}

/// One event: what the executor emitted, what the store keeps, what subscribers receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EventRecord {
    /// The store-wide sequence number, increasing in the order the store recorded the
    /// events; `None` on the live feed, where an event arrives before its batch is committed.
    /// Read the store from `seq` onwards ([`Storage::events_since`](super::Storage::events_since))
    /// to follow runs from another process.
    pub seq: Option<u64>,
    /// The run.
    pub run_id: RunId,
    /// The asset; `None` for run events.
    pub asset: Option<AssetKey>,
    /// The partition, for partitioned assets.
    pub partition: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub time: SystemTime,
    /// Which attempt (from 1), where it applies.
    pub attempt: Option<u32>,
    /// Wall time of the attempt (materialized, failed) or of the run (run ended).
    pub duration: Option<Duration>,
    /// The error (failed, retried), the failed upstream (skipped) or the run's target (run
    /// started).
    pub message: Option<String>,
    /// The asset's code version when it ran.
    pub code_version: Option<String>,
    /// Metadata attached by the asset (materialized).
    pub metadata: Vec<(String, MetadataValue)>,
    /// The stored output's data version (materialized, when an I/O manager stored it).
    pub data_version: Option<String>,
    /// The data versions of the upstream values consumed (materialized), by upstream key.
    pub inputs: Vec<(String, Option<String>)>,
    /// A check's result (check evaluated); its description is `message`, its metadata
    /// `metadata`, its duration `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<CheckRecord>>,
    /// Where the attempt's time went (materialized, failed): loading mapped inputs, the
    /// function, storing the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<crate::events::AssetTimings>,
}

/// An asset check's result, as an event records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The severity of a failure.
    pub severity: orch_core::CheckSeverity,
    /// Whether the check is blocking.
    pub blocking: bool,
}

impl CheckRecord {
    /// `passed`, `warned` (failed with warn severity) or `failed`.
    pub fn label(&self) -> &'static str {
        match (self.passed, self.severity) {
            (true, _) => "passed",
            (false, orch_core::CheckSeverity::Warn) => "warned",
            (false, _) => "failed",
        }
    }
}

impl EventRecord {
    /// What the event says, for people, on one line: a materialization's metadata
    /// (`rows=3 path=...`, multi-line values such as a frame's preview left out), a check's
    /// name, result and description, otherwise its message. What `run show`, `runs --follow`
    /// and the web UI's run page print.
    pub fn detail(&self) -> String {
        match self.kind {
            EventKind::Materialized => self
                .metadata
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .filter(|t| !t.contains('\n'))
                .collect::<Vec<_>>()
                .join(" "),
            EventKind::CheckEvaluated => {
                let (name, label) = self
                    .check
                    .as_ref()
                    .map_or(("?", "-"), |c| (c.name.as_str(), c.label()));
                match &self.message {
                    Some(message) => format!("{name} {label}: {message}"),
                    None => format!("{name} {label}"),
                }
            }
            _ => self.message.clone().unwrap_or_default(),
        }
    }

    /// An event of `kind` in run `run_id`, now, with nothing else filled in.
    pub fn new(run_id: RunId, asset: Option<AssetKey>, kind: EventKind) -> EventRecord {
        EventRecord {
            seq: None,
            run_id,
            asset,
            partition: None,
            kind,
            time: SystemTime::now(),
            attempt: None,
            duration: None,
            message: None,
            code_version: None,
            metadata: Vec::new(),
            data_version: None,
            inputs: Vec::new(),
            check: None,
            timings: None,
        }
    }

    /// Whether this is an event of `asset` (by key as written, `prefix/name`).
    pub fn is_of(&self, asset: &str) -> bool {
        self.asset.as_ref().is_some_and(|a| a == asset)
    }
}

/// The last outcome of one partition (see [`Storage::partition_statuses`](super::Storage::partition_statuses)).
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionStatus {
    /// The partition key.
    pub partition: String,
    /// `Materialized` or `Failed`.
    pub kind: EventKind,
    /// The run that decided it.
    pub run_id: String,
    /// When.
    pub time: SystemTime,
    /// The stored output's data version (materialized).
    pub data_version: Option<String>,
}

/// One captured log line as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The asset that wrote it.
    pub asset: String,
    /// When.
    pub time: SystemTime,
    /// Severity.
    pub level: LogLevel,
    /// Text.
    pub message: String,
}

/// Which page of a run's log lines [`Storage::logs_page`](super::Storage::logs_page) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPage {
    /// The first `limit` lines (0: all) with an id above `id` (0: from the start), in order.
    After {
        /// The last id already seen.
        id: u64,
        /// At most this many (0: all).
        limit: usize,
    },
    /// The last `limit` lines (0: all) with an id below `id` (`u64::MAX`: the end), in order.
    Before {
        /// The first id already seen.
        id: u64,
        /// At most this many (0: all).
        limit: usize,
    },
}

/// What [`Storage::request_cancel`](super::Storage::request_cancel) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued: it is now canceled and will not start.
    Canceled,
    /// The run is starting or running: its process was asked to stop.
    Requested,
    /// The run had already ended, with this status: nothing changed.
    AlreadyEnded(RunStatus),
}

/// How often a running run looks in the store for a cancellation request.
pub const CANCEL_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// The latest thing that happened to one asset, for `list`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetState {
    /// When it last materialized, if ever.
    pub last_materialized: Option<SystemTime>,
    /// Its latest final event: materialized, failed or skipped.
    pub last_status: Option<EventKind>,
}

/// Which runs [`Storage::runs`](super::Storage::runs) returns: newest first, filtered, one
/// page at a time.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RunFilter {
    /// Only runs in one of these states (any state when empty).
    pub status: Vec<RunStatus>,
    /// Only runs with this trigger kind (`manual`, `backfill`, `reexecution`).
    pub trigger: Option<String>,
    /// Only runs with this tag and value.
    pub tag: Option<(String, String)>,
    /// Only runs that started at or after this time.
    pub since: Option<SystemTime>,
    /// Only runs that started before this time.
    pub before: Option<SystemTime>,
    /// At most this many (0: no limit).
    pub limit: usize,
    /// Only runs after this point in the order (newest first): where the previous page ended.
    pub cursor: Option<RunCursor>,
}

/// Where a page of runs ended: the last run's start time and id. The next page is the runs
/// after it in the order (newest first, ties by id), which does not need that run to still
/// exist: a cursor stays valid when retention deletes its run.
///
/// Written as text (`<start in µs>-<run id>`) for URLs and command lines; see [`FromStr`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    started_us: i64,
    id: RunId,
}

impl RunCursor {
    /// The cursor just after `run`.
    pub fn of(run: &RunRecord) -> RunCursor {
        let started_us = run
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        RunCursor {
            started_us,
            id: run.id.clone(),
        }
    }

    /// The last run's start, in microseconds since the epoch.
    pub fn started_us(&self) -> i64 {
        self.started_us
    }

    /// The last run's id.
    pub fn id(&self) -> &RunId {
        &self.id
    }
}

impl std::fmt::Display for RunCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.started_us, self.id)
    }
}

impl std::str::FromStr for RunCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<RunCursor, String> {
        let bad = || {
            format!(
                "`{s}` is not a runs cursor: use the `next` cursor of the previous page (`<start in µs>-<run id>`)"
            )
        };
        let (started, id) = s.split_once('-').ok_or_else(bad)?;
        let started_us = started.parse::<i64>().map_err(|_| bad())?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(RunCursor {
            started_us,
            id: RunId::from(id),
        })
    }
}

impl RunFilter {
    /// The `limit` most recent runs.
    pub fn recent(limit: usize) -> RunFilter {
        RunFilter {
            limit,
            ..RunFilter::default()
        }
    }

    /// Only runs in `status`.
    pub fn status(mut self, status: RunStatus) -> RunFilter {
        self.status.push(status);
        self
    }

    /// Only runs tagged `key=value`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> RunFilter {
        self.tag = Some((key.into(), value.into()));
        self
    }

    /// Only runs started by this kind of trigger.
    pub fn trigger(mut self, kind: impl Into<String>) -> RunFilter {
        self.trigger = Some(kind.into());
        self
    }

    /// The page after `cursor` (where the previous page ended; [`RunCursor::of`] its last run).
    pub fn after(mut self, cursor: RunCursor) -> RunFilter {
        self.cursor = Some(cursor);
        self
    }
}

/// Whether a schedule (or sensor) runs, as someone set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstigatorStatus {
    /// Its ticks run.
    Running,
    /// Its ticks do not run.
    Stopped,
}

impl InstigatorStatus {
    /// `running` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstigatorStatus::Running => "running",
            InstigatorStatus::Stopped => "stopped",
        }
    }
}

/// A schedule's (or sensor's) stored status.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InstigatorState {
    /// Its name.
    pub name: String,
    /// `schedule` or `sensor`.
    pub kind: String,
    /// Running or stopped.
    pub status: InstigatorStatus,
    /// When it was last set.
    pub updated: std::time::SystemTime,
}

/// How a schedule's tick ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TickStatus {
    /// Begun and not finished (in progress, or its process died: resumed by the next one).
    Started,
    /// Its runs were launched.
    Success,
    /// It launched nothing, on purpose (the reason says why).
    Skipped,
    /// It could not launch its runs (the reason says why).
    Failure,
}

impl TickStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TickStatus::Started => "started",
            TickStatus::Success => "success",
            TickStatus::Skipped => "skipped",
            TickStatus::Failure => "failure",
        }
    }

    pub(crate) fn parse(text: &str) -> TickStatus {
        match text {
            "success" => TickStatus::Success,
            "skipped" => TickStatus::Skipped,
            "failure" => TickStatus::Failure,
            _ => TickStatus::Started,
        }
    }
}

/// One tick of a schedule, as stored.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TickRecord {
    /// The schedule.
    pub instigator: String,
    /// The instant it was scheduled for.
    pub scheduled: std::time::SystemTime,
    /// How it ended (or `Started`).
    pub status: TickStatus,
    /// The runs it launched.
    pub run_ids: Vec<RunId>,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// When it was begun.
    pub started: std::time::SystemTime,
    /// When it ended.
    pub ended: Option<std::time::SystemTime>,
}

/// The tag of a run's run key (a sensor's `SensorRun::keyed`): with the instigator, launched
/// once ever.
pub const RUN_KEY_TAG: &str = "orch/run_key";

/// What one evaluation of a tick commits, in one transaction
/// ([`Storage::commit_tick`](super::Storage::commit_tick)): the runs it requests (recorded
/// as queued), how the tick ended, and the instigator's cursor.
#[derive(Clone, Debug)]
pub struct TickCommit<'a> {
    /// The schedule or sensor.
    pub instigator: &'a str,
    /// The tick's scheduled instant (its key with `instigator`).
    pub scheduled: std::time::SystemTime,
    /// How it ended: success (with runs), skipped or failure (with a reason).
    pub status: TickStatus,
    /// Why it was skipped or failed.
    pub reason: Option<&'a str>,
    /// The runs it requests, each [`RunRecord::queued`].
    pub runs: &'a [RunRecord],
    /// The cursor to store with it: `(name, value)`, `None` value to remove it.
    pub cursor: Option<(&'a str, Option<&'a str>)>,
}

/// The instigator name of declarative automation's ticks (one per evaluation that requested
/// runs): not a Rust identifier, so no schedule or sensor can have it.
pub const AUTOMATION_TICKS: &str = "orch/automation";

/// One asset's declarative automation state and latest evaluation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutomationAssetRecord {
    /// The asset's key.
    pub asset: String,
    /// Its condition as written (`eager()`): a different one starts afresh.
    pub condition: String,
    /// The store's latest event sequence number when the condition was first evaluated:
    /// updates before it do not count.
    pub since_seq: u64,
    /// When the condition was first evaluated: cron ticks before it do not count.
    pub since: SystemTime,
    /// The latest event sequence number seen by the evaluation that last requested it.
    pub requested_seq: Option<u64>,
    /// When it was last requested.
    pub requested: Option<SystemTime>,
    /// The run that request queued.
    pub requested_run: Option<RunId>,
    /// When it was last evaluated with this result and tree.
    pub evaluated: SystemTime,
    /// Whether that evaluation requested it.
    pub result: bool,
    /// Why: the evaluated condition tree, as JSON.
    pub tree: String,
}

/// A change of an asset's freshness state, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FreshnessChange {
    /// The asset's key.
    pub asset: String,
    /// Its new state.
    pub state: orch_core::FreshnessState,
    /// Its state before (`None`: first seen).
    pub previous: Option<orch_core::FreshnessState>,
    /// Why (`last materialized 2h ago, more than 1h`).
    pub detail: String,
    /// When it changed (the instant evaluated).
    pub at: SystemTime,
}

/// What one evaluation of declarative automation changes, written atomically: the runs it
/// requests (each [`RunRecord::queued`]) and the assets whose state or evaluation changed.
#[derive(Clone, Debug)]
pub struct AutomationCommit<'a> {
    /// When it evaluated (the tick recorded for it, if it requested runs).
    pub evaluated: SystemTime,
    /// The runs it requests.
    pub runs: &'a [RunRecord],
    /// The assets to store.
    pub assets: &'a [AutomationAssetRecord],
}

/// Who holds a lease (the daemon's hold on a store), as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseHolder {
    /// The holder's id (unique per process start).
    pub id: String,
    /// Who it is, for people: `daemon pid 4242 on host`.
    pub description: String,
    /// When it took the lease.
    pub acquired: std::time::SystemTime,
    /// When it last said it is alive.
    pub heartbeat: std::time::SystemTime,
    /// When the lease lapses unless renewed.
    pub expires: std::time::SystemTime,
}

/// The answer to [`Storage::acquire_lease`](super::Storage::acquire_lease).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseOutcome {
    /// The caller holds the lease now (it was free, had lapsed, or was the caller's already).
    Acquired,
    /// Someone else holds it and has not let it lapse.
    Held(LeaseHolder),
}
