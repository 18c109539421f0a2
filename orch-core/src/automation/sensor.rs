//! Sensors: functions the daemon polls at an interval, which decide from the outside world
//! (files, an API, a table) whether to run their job, with a cursor kept between evaluations
//! and run keys that make each run happen once. `#[sensor]` registers a [`SensorDef`]; an
//! asset sensor (`#[sensor(on_asset = ..)]`) is built in: one run per new materialization of
//! its asset.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::schedule::{DefaultStatus, ScheduleTarget};
use crate::asset::{BoxError, SourceLocation};
use crate::key::StaticKey;

/// What a sensor's function sees: its cursor as the last successful evaluation left it, when
/// it last ran, and now.
#[derive(Clone, Debug)]
pub struct SensorContext {
    name: &'static str,
    cursor: Option<String>,
    last_evaluation: Option<Timestamp>,
    now: Timestamp,
}

impl SensorContext {
    /// The context of one evaluation (the daemon makes it; tests too, with
    /// [`SensorContext::for_test`]).
    pub fn new(
        name: &'static str,
        cursor: Option<String>,
        last_evaluation: Option<Timestamp>,
        now: Timestamp,
    ) -> SensorContext {
        SensorContext {
            name,
            cursor,
            last_evaluation,
            now,
        }
    }

    /// A context for calling a sensor function in a test: its cursor, evaluated now.
    pub fn for_test(cursor: Option<&str>) -> SensorContext {
        SensorContext::new("test", cursor.map(str::to_owned), None, Timestamp::now())
    }

    /// The sensor's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cursor the last successful evaluation stored (`None` at first, or after `sensor
    /// cursor NAME --set ''`).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// When the sensor was last evaluated (successfully or not), if ever.
    pub fn last_evaluation(&self) -> Option<Timestamp> {
        self.last_evaluation
    }

    /// The instant of this evaluation.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

/// One run a sensor asks for: its run key (a run with a key already launched by this sensor is
/// never launched again), the partition, and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorRun {
    run_key: Option<String>,
    partition: Option<String>,
    tags: BTreeMap<String, String>,
    config: Option<crate::op::RunConfig>,
}

impl SensorRun {
    /// A run without a key: launched each time it is asked for.
    pub fn new() -> SensorRun {
        SensorRun::default()
    }

    /// A run with the key `key` (a file name, an event id): launched at most once per sensor,
    /// ever, however often it is asked for.
    pub fn keyed(key: impl Into<String>) -> SensorRun {
        SensorRun {
            run_key: Some(key.into()),
            ..SensorRun::default()
        }
    }

    /// Sets the run key (see [`SensorRun::keyed`]).
    pub fn with_key(mut self, key: impl Into<String>) -> SensorRun {
        self.run_key = Some(key.into());
        self
    }

    /// Runs partition `key` of the target's partitioned assets.
    pub fn partition(mut self, key: impl Into<String>) -> SensorRun {
        self.partition = Some(key.into());
        self
    }

    /// Adds a tag to the run.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> SensorRun {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// The run config of the run, for a target that is an op job (checked against its ops
    /// before the run is queued; a tick whose config does not fit fails, naming the field).
    pub fn config(mut self, config: crate::op::RunConfig) -> SensorRun {
        self.config = Some(config);
        self
    }

    /// The run config it asked for (an op job's), if any.
    pub fn run_config(&self) -> Option<&crate::op::RunConfig> {
        self.config.as_ref()
    }

    /// The run key, if it has one.
    pub fn run_key(&self) -> Option<&str> {
        self.run_key.as_deref()
    }

    /// Its partition.
    pub fn partition_key(&self) -> Option<&str> {
        self.partition.as_deref()
    }

    /// Its tags.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
}

/// What one evaluation of a sensor decided: runs to launch and the next cursor, or a reason
/// to launch nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SensorResult {
    runs: Vec<SensorRun>,
    cursor: Option<String>,
    skip: Option<String>,
}

impl SensorResult {
    /// Nothing to run (the cursor stays as it was).
    pub fn new() -> SensorResult {
        SensorResult::default()
    }

    /// Nothing to run, and why (shown in `sensor history`).
    pub fn skip(reason: impl Into<String>) -> SensorResult {
        SensorResult {
            skip: Some(reason.into()),
            ..SensorResult::default()
        }
    }

    /// Asks for `run`.
    pub fn run(mut self, run: SensorRun) -> SensorResult {
        self.runs.push(run);
        self
    }

    /// Asks for each of `runs`.
    pub fn runs(mut self, runs: impl IntoIterator<Item = SensorRun>) -> SensorResult {
        self.runs.extend(runs);
        self
    }

    /// Stores `cursor` for the next evaluation (only if this evaluation succeeds, with its
    /// runs, in one transaction).
    pub fn cursor(mut self, cursor: impl Into<String>) -> SensorResult {
        self.cursor = Some(cursor.into());
        self
    }

    /// The runs asked for.
    pub fn requested(&self) -> &[SensorRun] {
        &self.runs
    }

    /// The new cursor, if any.
    pub fn new_cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }

    /// Why it asked for nothing, if it said.
    pub fn skip_reason(&self) -> Option<&str> {
        self.skip.as_deref()
    }
}

/// A sensor's evaluation function.
pub type SensorFn = fn(&SensorContext) -> Result<SensorResult, BoxError>;

/// An asset sensor's function: called once per new materialization of its asset.
pub type AssetSensorFn =
    fn(&SensorContext, &AssetMaterialization) -> Result<SensorResult, BoxError>;

/// One materialization of an asset, as an asset sensor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssetMaterialization {
    /// The asset.
    pub key: crate::AssetKey,
    /// Its partition, for partitioned assets.
    pub partition: Option<String>,
    /// The run that materialized it.
    pub run_id: crate::RunId,
    /// When.
    pub time: Timestamp,
    /// The stored output's data version, when an I/O manager stored it.
    pub data_version: Option<String>,
    /// The store's sequence number of the event (increasing; the sensor's cursor).
    pub seq: u64,
}

impl AssetMaterialization {
    /// A materialization (the daemon builds them from the store; tests too).
    pub fn new(
        key: crate::AssetKey,
        partition: Option<String>,
        run_id: crate::RunId,
        time: Timestamp,
        data_version: Option<String>,
        seq: u64,
    ) -> AssetMaterialization {
        AssetMaterialization {
            key,
            partition,
            run_id,
            time,
            data_version,
            seq,
        }
    }
}

/// A run-status sensor's function: called once per run that failed or crashed.
pub type RunFailureSensorFn = fn(&SensorContext, &RunFailure) -> Result<SensorResult, BoxError>;

/// A run that ended badly, as a run-status sensor sees it (for an alert: what ran, what
/// failed and why).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunFailure {
    /// The run.
    pub run_id: crate::RunId,
    /// `failed` (an asset failed) or `crashed` (its process died).
    pub status: String,
    /// What it targeted, as stored (`group:sources or group:transforms`).
    pub target: String,
    /// Its tags (`orch/job`, `orch/schedule`, ...).
    pub tags: BTreeMap<String, String>,
    /// Each asset that failed, with its error.
    pub failures: Vec<(String, String)>,
    /// When it ended.
    pub ended: Timestamp,
    /// The store's sequence number of its end event (the sensor's cursor).
    pub seq: u64,
}

impl RunFailure {
    /// A failed run (the daemon builds them from the store; tests too).
    pub fn new(
        run_id: crate::RunId,
        status: impl Into<String>,
        ended: Timestamp,
        seq: u64,
    ) -> RunFailure {
        RunFailure {
            run_id,
            status: status.into(),
            target: String::new(),
            tags: BTreeMap::new(),
            failures: Vec::new(),
            ended,
            seq,
        }
    }
}

/// What a sensor watches.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SensorKind {
    /// Its own function decides.
    Custom(SensorFn),
    /// Each new materialization of `asset` is handed to `function`, once: the runs it asks
    /// for are keyed by the materialization unless it keys them itself.
    OnAsset {
        /// The watched asset.
        asset: StaticKey,
        /// What to do about one materialization.
        function: AssetSensorFn,
    },
    /// Each run that fails or crashes is handed to the function, once (for alerts).
    OnRunFailure(RunFailureSensorFn),
}

/// Everything `#[sensor]` declares. Not public API: read a sensor through [`SensorDef`].
#[doc(hidden)]
#[derive(Debug)]
pub struct SensorParts {
    /// The name (the function's).
    pub name: &'static str,
    /// What its runs run (`None`: it asks for no runs, as an alert).
    pub target: Option<ScheduleTarget>,
    /// What decides.
    pub kind: SensorKind,
    /// The least time between two evaluations, in milliseconds.
    pub interval_ms: u64,
    /// How long one evaluation may take, in milliseconds.
    pub timeout_ms: u64,
    /// Running or stopped by default.
    pub default_status: DefaultStatus,
    /// Its doc comment or `description = ".."`.
    pub description: Option<&'static str>,
    /// Skip an evaluation's runs while a run it launched is going.
    pub skip_if_running: bool,
    /// Where it is declared.
    pub location: SourceLocation,
}

/// One registered sensor.
#[derive(Debug)]
#[non_exhaustive]
pub struct SensorDef {
    parts: SensorParts,
}

impl SensorDef {
    /// What `#[sensor]` generates.
    #[doc(hidden)]
    pub const fn from_parts(parts: SensorParts) -> SensorDef {
        SensorDef { parts }
    }

    /// The sensor's name.
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// What its runs run (`None` for a run-status sensor that only alerts).
    pub fn target(&self) -> Option<ScheduleTarget> {
        self.parts.target
    }

    /// What decides.
    pub fn kind(&self) -> SensorKind {
        self.parts.kind
    }

    /// The least time between two evaluations (default 30 s, as Dagster's).
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.parts.interval_ms)
    }

    /// How long one evaluation may take before it is recorded as failed (default 60 s).
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.parts.timeout_ms)
    }

    /// Whether it runs before anyone starts or stops it.
    pub fn default_status(&self) -> DefaultStatus {
        self.parts.default_status
    }

    /// Its description.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// Whether its runs are skipped while a run it launched is still going.
    pub fn skip_if_running(&self) -> bool {
        self.parts.skip_if_running
    }

    /// Where it is declared.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }
}

inventory::collect!(SensorDef);

/// Every sensor registered in this binary, in link order.
pub fn registered_sensors() -> impl Iterator<Item = &'static SensorDef> {
    inventory::iter::<SensorDef>.into_iter()
}

/// Reads a duration as `#[sensor]` takes it: `30s`, `5m`, `1h`, `250ms` (humantime's syntax),
/// at least one millisecond.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. \"30s\", \"5m\" or \"250ms\"")
    })?;
    if d < Duration::from_millis(1) {
        return Err(format!("`{text}` is shorter than a millisecond"));
    }
    Ok(d)
}
