//! The run store: every run, every asset event and every captured log line, kept between
//! processes so `runs`, `run show` and `history` can answer.
//!
//! [`Storage`] is the seam: the embedded default is [`SqliteStorage`] (one SQLite database in
//! WAL mode under the state directory); a server-backed store can implement the same trait
//! without touching callers. Writes go through [`StoreSink`], which batches them on a
//! background thread, so recording a run adds a few microseconds per asset to the run itself.

mod locks;
mod schema;
mod sqlite;
mod writer;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use orch_core::{LogLevel, MetadataValue};

pub use locks::RunLock;
pub use sqlite::SqliteStorage;
pub use writer::StoreSink;

/// The state directory: `$ORCH_HOME`, else `.orch` in the current directory.
pub fn state_dir() -> PathBuf {
    match std::env::var_os("ORCH_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(".orch"),
    }
}

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database failed (corrupt file, disk full, locked for too long).
    #[error("the run store at {path} failed: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
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

/// How a run ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running (or its process died and nobody has noticed yet).
    Started,
    /// Every asset succeeded.
    Succeeded,
    /// An asset failed.
    Failed,
    /// The process died mid-run (found at the next start).
    Crashed,
}

impl RunStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Started => "started",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Crashed => "crashed",
        }
    }

    pub(crate) fn parse(text: &str) -> RunStatus {
        match text {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "crashed" => RunStatus::Crashed,
            _ => RunStatus::Started,
        }
    }
}

/// One run as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The selection as typed (`*` for everything).
    pub selection: String,
    /// How it ended.
    pub status: RunStatus,
    /// What started it: `cli`, `api`, ...
    pub trigger: String,
    /// When it started.
    pub started: SystemTime,
    /// When it ended, if it did.
    pub ended: Option<SystemTime>,
    /// How many assets were planned.
    pub planned: u32,
    /// Per status, how many assets ended so (materialized, failed, skipped).
    pub counts: (u32, u32, u32),
}

/// What happened to an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Its function was called.
    Started,
    /// An attempt failed and it will be retried.
    Retried,
    /// It produced its output.
    Materialized,
    /// Its last attempt failed (or its process died).
    Failed,
    /// An upstream failed, so it did not run.
    Skipped,
}

impl EventKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::Retried => "retried",
            EventKind::Materialized => "materialized",
            EventKind::Failed => "failed",
            EventKind::Skipped => "skipped",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<EventKind> {
        Some(match text {
            "started" => EventKind::Started,
            "retried" => EventKind::Retried,
            "materialized" => EventKind::Materialized,
            "failed" => EventKind::Failed,
            "skipped" => EventKind::Skipped,
            _ => return None,
        })
    }
}

/// One asset event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// The run.
    pub run_id: String,
    /// The asset key.
    pub asset: String,
    /// The partition, for partitioned assets.
    pub partition: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// When.
    pub time: SystemTime,
    /// Which attempt (from 1), where it applies.
    pub attempt: Option<u32>,
    /// Wall time of the attempt, for materialized and failed.
    pub duration: Option<Duration>,
    /// The error (failed, retried) or the failed upstream (skipped).
    pub message: Option<String>,
    /// The asset's code version when it ran.
    pub code_version: Option<String>,
    /// Metadata attached by the asset (materialized).
    pub metadata: Vec<(String, MetadataValue)>,
    /// The stored output's data version (materialized, when an I/O manager stored it).
    pub data_version: Option<String>,
    /// The data versions of the upstream values consumed (materialized), by upstream key.
    pub inputs: Vec<(String, Option<String>)>,
}

/// The last outcome of one partition (see [`Storage::partition_statuses`]).
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
#[derive(Clone, Debug, PartialEq)]
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

/// The latest thing that happened to one asset, for `list`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssetState {
    /// When it last materialized, if ever.
    pub last_materialized: Option<SystemTime>,
    /// Its latest final event: materialized, failed or skipped.
    pub last_status: Option<EventKind>,
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
    /// 30 days of logs, 90 days of runs; `ORCH_RETENTION_DAYS` sets both.
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        match std::env::var("ORCH_RETENTION_DAYS")
            .ok()
            .and_then(|d| d.parse::<u64>().ok())
        {
            Some(days) => Retention {
                logs: day * days as u32,
                runs: day * days as u32,
            },
            None => Retention {
                logs: day * 30,
                runs: day * 90,
            },
        }
    }
}

/// A rows-in, rows-out store of runs, events and logs.
pub trait Storage: Send + Sync {
    /// Records a new run and claims its planned assets, atomically: if a live run holds any of
    /// them, nothing is recorded and the answer is [`StorageError::AssetBusy`]. Claims of a run
    /// whose process died are taken over.
    fn begin_run(&self, run: &RunRecord, assets: &[String]) -> Result<(), StorageError>;
    /// Appends events and log lines, atomically.
    fn append(
        &self,
        events: &[EventRecord],
        logs: &[(String, LogRecord)],
    ) -> Result<(), StorageError>;
    /// Records how a run ended and releases its assets.
    fn end_run(
        &self,
        run_id: &str,
        status: RunStatus,
        ended: SystemTime,
    ) -> Result<(), StorageError>;
    /// The most recent runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StorageError>;
    /// One run by id or unique id prefix.
    fn run(&self, id_or_prefix: &str) -> Result<RunRecord, StorageError>;
    /// A run's events in order.
    fn events(&self, run_id: &str) -> Result<Vec<EventRecord>, StorageError>;
    /// A run's log lines in order.
    fn logs(&self, run_id: &str) -> Result<Vec<LogRecord>, StorageError>;
    /// The latest materialization of every asset that has one (with its consumed input
    /// versions), by asset key.
    fn latest_materializations(
        &self,
    ) -> Result<std::collections::HashMap<String, EventRecord>, StorageError>;
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
    /// Marks runs whose process died as crashed; returns their ids.
    fn recover_crashed(&self) -> Result<Vec<String>, StorageError>;
    /// Deletes what `retention` no longer keeps; returns the number of rows deleted.
    fn apply_retention(&self, retention: Retention) -> Result<usize, StorageError>;
}
