//! The configuration of an [`Instance`](super::Instance): built-in defaults, overridden by an
//! `orch.toml` at the project root, overridden by environment variables, overridden by the
//! builder. Only the command line reads the file and the environment ([`Config::discover`]);
//! a library user passes values explicitly. Every value remembers where it came from, for
//! `orch config`.
//!
//! ```toml
//! # orch.toml (every key optional)
//! home = ".orch"                 # the state directory: run store, outputs   (ORCH_HOME)
//!
//! [store]                        # the run store (default: SQLite under home)
//! url = "postgres://orch@db/orch" # a PostgreSQL server shared by every process (ORCH_STORE_URL)
//! schema = "orch"                # its tables in this schema (default: the    (ORCH_STORE_SCHEMA)
//!                                #   connection's, usually public)
//!
//! [storage]                      # where outputs are (default: files under home)
//! url = "s3://bucket/orch"       # object storage every worker reads           (ORCH_STORAGE_URL)
//!                                #   (AWS_* variables), or file:///mnt/shared
//!
//! [retention]
//! logs = "30d"                   # captured log lines                        (ORCH_RETENTION_DAYS
//! runs = "90d"                   # runs and their events                      sets both, in days)
//!
//! [run]
//! jobs = 4                       # sync assets at once (default: cores)      (ORCH_JOBS)
//! executor = "in_process"        # or "workers": steps go to `orch worker`   (ORCH_EXECUTOR)
//!                                #   processes through the store's queue
//!
//! [workers]                      # how steps are delivered to workers
//! lease = "30s"                  # a claimed step is given again after this without a heartbeat
//! heartbeat = "10s"              # how often a worker renews its steps' leases
//! max_deliveries = 3             # a step lost this many times fails ("worker lost")
//!
//! [io]
//! frame_format = "arrow"         # frames as Arrow IPC files, or "parquet"   (ORCH_FRAME_FORMAT)
//! parquet_compression = "none"   # none, lz4, zstd, zstd:LEVEL, snappy       (ORCH_PARQUET_COMPRESSION)
//! write_behind = 2               # large frames written in the background    (ORCH_WRITE_BEHIND)
//!                                #   while their consumers run; 0: before
//! write_behind_memory = "2GiB"   # what the frames being written may hold
//!
//! [daemon]
//! launcher = "child_process"     # each run in a child process, or "in_process"
//! lease = "30s"                  # a dead daemon is replaced at most this long after
//!
//! [queue]                        # runs the daemon starts: queued until these allow
//! max_concurrent_runs = 10
//! tag_limits = [{ key = "db", value = "warehouse", limit = 1 },
//!               { key = "team", per_value = true, limit = 2 }]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::{QueueLimits, TagLimit};
use crate::io::{FrameFormat, ParquetCompression, WriteBehind};
use crate::storage::Retention;

use super::config_values::{format_age, format_compression, format_size};

/// The file [`Config::discover`] reads at the project root.
pub const CONFIG_FILE: &str = "orch.toml";

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// orch's built-in default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(&'static str),
    /// Set in code (`Instance::builder()`, `App`).
    Builder,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Env(var) => write!(f, "${var}"),
            Source::Builder => f.write_str("set in code"),
        }
    }
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has an unknown key or a value of the wrong type.
    #[error("the configuration file {path} is invalid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value (in the file or the environment) is out of range or malformed.
    #[error("{source_name}: invalid {key} `{value}`: {why}")]
    Value {
        /// Where the value came from.
        source_name: String,
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong and what is accepted.
        why: String,
    },
}

/// An instance's configuration (see the [module docs](self) for the file format).
#[derive(Clone, Debug)]
pub struct Config {
    home: PathBuf,
    store: StoreConfig,
    storage_url: Option<String>,
    retention: Retention,
    jobs: usize,
    frame_format: FrameFormat,
    parquet_compression: ParquetCompression,
    write_behind: WriteBehind,
    launch_mode: LaunchMode,
    executor: Executor,
    delivery: crate::storage::Delivery,
    worker_heartbeat: Duration,
    daemon_lease: Duration,
    queue: QueueLimits,
    sources: BTreeMap<&'static str, Source>,
}

/// Where a run's steps execute (`[run] executor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Executor {
    /// In the process that starts the run (the default).
    #[default]
    InProcess,
    /// In `orch worker` processes, on any number of machines, that claim the run's steps
    /// from the store's queue (a PostgreSQL store).
    Workers,
}

/// How the command line's daemon starts queued runs (`[daemon] launcher`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchMode {
    /// Each run in a child process of the same binary (the default): a run that crashes,
    /// aborts or runs out of memory does not take the daemon down.
    #[default]
    ChildProcess,
    /// In the daemon's process.
    InProcess,
}

impl Default for Config {
    /// `.orch` in the current directory, 30 days of logs and 90 of runs, one job per core,
    /// frames as Arrow IPC (uncompressed Parquet when set to Parquet), write-behind of 2 frames
    /// and 2 GiB.
    fn default() -> Self {
        Config {
            home: PathBuf::from(".orch"),
            store: StoreConfig::default(),
            storage_url: None,
            retention: Retention::default(),
            jobs: crate::default_jobs(),
            frame_format: FrameFormat::default(),
            parquet_compression: ParquetCompression::default(),
            write_behind: WriteBehind::default(),
            launch_mode: LaunchMode::default(),
            executor: Executor::default(),
            delivery: crate::storage::Delivery::default(),
            worker_heartbeat: Duration::from_secs(10),
            daemon_lease: Duration::from_secs(30),
            queue: QueueLimits::default(),
            sources: BTreeMap::new(),
        }
    }
}

/// Where the run store is (`[store]`): `None` for the embedded SQLite store under `home`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A PostgreSQL server's URL (`postgres://user:password@host:port/database`).
    pub url: Option<String>,
    /// The schema its tables live in (created if missing).
    pub schema: Option<String>,
}

impl Config {
    /// The state directory: the run store and the default I/O manager's files.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Where runs' steps execute (`[run] executor`).
    pub fn executor(&self) -> Executor {
        self.executor
    }

    /// Sets where runs' steps execute.
    pub fn set_executor(&mut self, executor: Executor) {
        self.executor = executor;
        self.sources.insert("run.executor", Source::Builder);
    }

    /// How steps are delivered to workers (`[workers] lease`, `max_deliveries`).
    pub fn delivery(&self) -> crate::storage::Delivery {
        self.delivery
    }

    /// How often a worker renews its steps' leases (`[workers] heartbeat`).
    pub fn worker_heartbeat(&self) -> Duration {
        self.worker_heartbeat
    }

    /// Sets how steps are delivered to workers and how often workers renew their leases.
    pub fn set_delivery(&mut self, delivery: crate::storage::Delivery, heartbeat: Duration) {
        self.delivery = delivery;
        self.worker_heartbeat = heartbeat;
        for key in [
            "workers.lease",
            "workers.heartbeat",
            "workers.max_deliveries",
        ] {
            self.sources.insert(key, Source::Builder);
        }
    }

    /// Where the run store is (`[store]`).
    pub fn store(&self) -> &StoreConfig {
        &self.store
    }

    /// Records runs on the PostgreSQL server at `url` (in `schema`, if given).
    pub fn set_store(&mut self, store: StoreConfig) {
        self.store = store;
        self.sources.insert("store.url", Source::Builder);
        self.sources.insert("store.schema", Source::Builder);
    }

    /// Where outputs are stored (`[storage] url`): `None` for files under `home`.
    pub fn storage_url(&self) -> Option<&str> {
        self.storage_url.as_deref()
    }

    /// Stores outputs on object storage at `url` (`s3://bucket/prefix`, `file:///path`).
    pub fn set_storage_url(&mut self, url: Option<String>) {
        self.storage_url = url;
        self.sources.insert("storage.url", Source::Builder);
    }

    /// Sets the state directory.
    pub fn set_home(&mut self, home: impl Into<PathBuf>) {
        self.home = home.into();
        self.sources.insert("home", Source::Builder);
    }

    /// How long history is kept.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Sets how long history is kept.
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
        self.sources.insert("retention.logs", Source::Builder);
        self.sources.insert("retention.runs", Source::Builder);
    }

    /// How many sync assets a run runs at once, unless the run says otherwise.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// Sets the default parallelism.
    pub fn set_jobs(&mut self, jobs: usize) {
        self.jobs = jobs.max(1);
        self.sources.insert("run.jobs", Source::Builder);
    }

    /// The file format the default I/O manager writes frames in.
    pub fn frame_format(&self) -> FrameFormat {
        self.frame_format
    }

    /// Sets the file format the default I/O manager writes frames in.
    pub fn set_frame_format(&mut self, format: FrameFormat) {
        self.frame_format = format;
        self.sources.insert("io.frame_format", Source::Builder);
    }

    /// How the default I/O manager compresses Parquet files.
    pub fn parquet_compression(&self) -> ParquetCompression {
        self.parquet_compression
    }

    /// Sets the Parquet compression of the default I/O manager.
    pub fn set_parquet_compression(&mut self, compression: ParquetCompression) {
        self.parquet_compression = compression;
        self.sources
            .insert("io.parquet_compression", Source::Builder);
    }

    /// How much a run writes in the background while the consumers of what it writes run.
    pub fn write_behind(&self) -> WriteBehind {
        self.write_behind
    }

    /// Sets how much a run writes in the background ([`WriteBehind::OFF`]: nothing).
    pub fn set_write_behind(&mut self, write_behind: WriteBehind) {
        self.write_behind = write_behind;
        self.sources.insert("io.write_behind", Source::Builder);
        self.sources
            .insert("io.write_behind_memory", Source::Builder);
    }

    /// How the command line's daemon starts runs.
    pub fn launch_mode(&self) -> LaunchMode {
        self.launch_mode
    }

    /// Sets how the command line's daemon starts runs.
    pub fn set_launch_mode(&mut self, mode: LaunchMode) {
        self.launch_mode = mode;
        self.sources.insert("daemon.launcher", Source::Builder);
    }

    /// How long the daemon's lease lasts without a heartbeat.
    pub fn daemon_lease(&self) -> Duration {
        self.daemon_lease
    }

    /// The run queue's limits.
    pub fn queue_limits(&self) -> &QueueLimits {
        &self.queue
    }

    /// Sets the run queue's limits.
    pub fn set_queue_limits(&mut self, limits: QueueLimits) {
        self.queue = limits;
        self.sources
            .insert("queue.max_concurrent_runs", Source::Builder);
        self.sources.insert("queue.tag_limits", Source::Builder);
    }

    /// Every value, as written in the file, with where it came from: what `orch config`
    /// prints.
    pub fn entries(&self) -> Vec<(&'static str, String, Source)> {
        let source = |key: &'static str| self.sources.get(key).cloned().unwrap_or(Source::Default);
        vec![
            ("home", self.home.display().to_string(), source("home")),
            (
                "store.url",
                match &self.store.url {
                    Some(url) => crate::storage::redact(url),
                    None => format!("sqlite:{}", self.home.join("orch.db").display()),
                },
                source("store.url"),
            ),
            (
                "store.schema",
                self.store.schema.clone().unwrap_or_default(),
                source("store.schema"),
            ),
            (
                "storage.url",
                match &self.storage_url {
                    Some(url) => url.clone(),
                    None => crate::io::IoManagers::storage_dir(&self.home)
                        .display()
                        .to_string(),
                },
                source("storage.url"),
            ),
            (
                "retention.logs",
                format_age(self.retention.logs),
                source("retention.logs"),
            ),
            (
                "retention.runs",
                format_age(self.retention.runs),
                source("retention.runs"),
            ),
            ("run.jobs", self.jobs.to_string(), source("run.jobs")),
            (
                "run.executor",
                match self.executor {
                    Executor::InProcess => "in_process",
                    Executor::Workers => "workers",
                }
                .to_owned(),
                source("run.executor"),
            ),
            (
                "workers.lease",
                humantime::format_duration(self.delivery.lease).to_string(),
                source("workers.lease"),
            ),
            (
                "workers.heartbeat",
                humantime::format_duration(self.worker_heartbeat).to_string(),
                source("workers.heartbeat"),
            ),
            (
                "workers.max_deliveries",
                self.delivery.max_deliveries.to_string(),
                source("workers.max_deliveries"),
            ),
            (
                "io.frame_format",
                self.frame_format.extension().to_owned(),
                source("io.frame_format"),
            ),
            (
                "io.parquet_compression",
                format_compression(self.parquet_compression),
                source("io.parquet_compression"),
            ),
            (
                "io.write_behind",
                self.write_behind.writes.to_string(),
                source("io.write_behind"),
            ),
            (
                "io.write_behind_memory",
                format_size(self.write_behind.memory),
                source("io.write_behind_memory"),
            ),
            (
                "daemon.launcher",
                match self.launch_mode {
                    LaunchMode::ChildProcess => "child_process",
                    LaunchMode::InProcess => "in_process",
                }
                .to_owned(),
                source("daemon.launcher"),
            ),
            (
                "daemon.lease",
                humantime::format_duration(self.daemon_lease).to_string(),
                source("daemon.lease"),
            ),
            (
                "queue.max_concurrent_runs",
                self.queue.max_concurrent_runs.to_string(),
                source("queue.max_concurrent_runs"),
            ),
            (
                "queue.tag_limits",
                self.queue
                    .tag_limits
                    .iter()
                    .map(|l| {
                        let value = match (&l.value, l.per_value) {
                            (Some(v), _) => format!("={v}"),
                            (None, true) => "=each".to_owned(),
                            (None, false) => String::new(),
                        };
                        format!("{}{value}:{}", l.key, l.limit)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                source("queue.tag_limits"),
            ),
        ]
    }
}

#[path = "config_read.rs"]
mod read;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
