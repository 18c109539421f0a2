//! [`ScheduleDef`]: a cron schedule on an asset job or a selection (Dagster's
//! `ScheduleDefinition`).

use super::cron::{CronError, CronSchedule};
use crate::asset::SourceLocation;

/// Implemented by the marker type `schedule!` emits.
pub trait Schedule: 'static {
    /// The schedule's name.
    const NAME: &'static str;
}

/// Whether a schedule runs before anyone starts or stops it (as Dagster's
/// `default_status`): stopped unless declared `default_status = running`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultStatus {
    /// Runs from the start.
    Running,
    /// Waits for `schedule start NAME`.
    #[default]
    Stopped,
}

/// What a schedule's ticks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScheduleTarget {
    /// An asset job, by name.
    Job(&'static str),
    /// A selection in the CLI's syntax (`select = ".."`).
    Selection(&'static str),
}

/// Everything `schedule!` declares. Not public API: read a schedule through [`ScheduleDef`].
#[doc(hidden)]
#[derive(Debug)]
pub struct ScheduleParts {
    /// The name.
    pub name: &'static str,
    /// What ticks run.
    pub target: ScheduleTarget,
    /// The cron string.
    pub cron: &'static str,
    /// The IANA time zone.
    pub timezone: &'static str,
    /// Running or stopped by default.
    pub default_status: DefaultStatus,
    /// `description = ".."` or the doc comment.
    pub description: Option<&'static str>,
    /// Missed ticks a partitioned schedule catches up.
    pub catchup: u32,
    /// Skip a tick while a run it launched is going.
    pub skip_if_running: bool,
    /// Where it is declared.
    pub location: SourceLocation,
    /// `decide = FN`: decides per tick what runs (or why nothing does).
    pub decide: Option<ScheduleFn>,
    /// `timeout = "10s"`: how long `decide` may take (default 60 s).
    pub decide_timeout_ms: u64,
}

/// A schedule's `decide` function, as the macro wraps it.
pub type ScheduleFn = fn(&ScheduleContext) -> Result<ScheduleDecision, crate::asset::BoxError>;

/// What a schedule's `decide` function knows of its tick.
#[derive(Clone, Debug)]
pub struct ScheduleContext {
    schedule: String,
    scheduled: jiff::Zoned,
    partition: Option<String>,
}

impl ScheduleContext {
    /// The tick of `schedule` scheduled at `scheduled` (in the schedule's time zone); for a
    /// partitioned target, `partition` is the partition it runs by default.
    pub fn new(
        schedule: impl Into<String>,
        scheduled: jiff::Zoned,
        partition: Option<String>,
    ) -> Self {
        ScheduleContext {
            schedule: schedule.into(),
            scheduled,
            partition,
        }
    }

    /// A context for calling a `decide` function in a unit test.
    pub fn for_test(scheduled: jiff::Zoned) -> Self {
        Self::new("test", scheduled, None)
    }

    /// The schedule's name.
    pub fn schedule_name(&self) -> &str {
        &self.schedule
    }

    /// The tick's instant, in the schedule's time zone.
    pub fn scheduled(&self) -> &jiff::Zoned {
        &self.scheduled
    }

    /// For a partitioned target: the partition whose window ended last by the tick (what the
    /// tick runs unless it says otherwise).
    pub fn partition_key(&self) -> Option<&str> {
        self.partition.as_deref()
    }
}

/// What a tick runs: runs of the schedule's target (each with its own tags, partition or run
/// key, as a sensor's), or nothing, with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct ScheduleDecision {
    runs: Vec<super::SensorRun>,
    skip: Option<String>,
}

impl ScheduleDecision {
    /// One run of the schedule's target, as a plain schedule's tick would make.
    pub fn run() -> Self {
        Self::runs([super::SensorRun::new()])
    }

    /// These runs of the schedule's target (a run key is launched once per schedule, ever).
    pub fn runs(runs: impl IntoIterator<Item = super::SensorRun>) -> Self {
        ScheduleDecision {
            runs: runs.into_iter().collect(),
            skip: None,
        }
    }

    /// Nothing this tick, with the reason (recorded with the tick).
    pub fn skip(reason: impl Into<String>) -> Self {
        ScheduleDecision {
            runs: Vec::new(),
            skip: Some(reason.into()),
        }
    }

    /// The runs asked for.
    pub fn requested_runs(&self) -> &[super::SensorRun] {
        &self.runs
    }

    /// Why it runs nothing, if it skips (asking for no run is a skip too).
    pub fn skip_reason(&self) -> Option<&str> {
        match (&self.skip, self.runs.is_empty()) {
            (Some(reason), _) => Some(reason),
            (None, true) => Some("its decide function asked for no run"),
            (None, false) => None,
        }
    }
}

/// What a `decide` function may return: a decision, or a `Result` of one.
#[diagnostic::on_unimplemented(
    message = "a schedule's `decide` function returns `ScheduleDecision` or `Result<ScheduleDecision, E>`, not `{Self}`",
    label = "this function returns `{Self}`",
    note = "write it `fn name(ctx: &ScheduleContext) -> ScheduleDecision`"
)]
pub trait IntoScheduleDecision {
    /// The decision, or the error.
    fn into_decision(self) -> Result<ScheduleDecision, crate::asset::BoxError>;
}

impl IntoScheduleDecision for ScheduleDecision {
    fn into_decision(self) -> Result<ScheduleDecision, crate::asset::BoxError> {
        Ok(self)
    }
}

impl<E: Into<crate::asset::BoxError>> IntoScheduleDecision for Result<ScheduleDecision, E> {
    fn into_decision(self) -> Result<ScheduleDecision, crate::asset::BoxError> {
        self.map_err(Into::into)
    }
}

/// One registered schedule: a cron string in a time zone, on a job or a selection.
#[derive(Debug)]
#[non_exhaustive]
pub struct ScheduleDef {
    parts: ScheduleParts,
}

impl ScheduleDef {
    /// What `schedule!` generates.
    #[doc(hidden)]
    pub const fn from_parts(parts: ScheduleParts) -> ScheduleDef {
        ScheduleDef { parts }
    }

    /// The schedule's name.
    pub fn name(&self) -> &'static str {
        self.parts.name
    }

    /// What each tick runs.
    pub fn target(&self) -> ScheduleTarget {
        self.parts.target
    }

    /// The cron string (checked at compile time).
    pub fn cron(&self) -> &'static str {
        self.parts.cron
    }

    /// The IANA time zone its cron string is read in (default `UTC`).
    pub fn timezone(&self) -> &'static str {
        self.parts.timezone
    }

    /// Whether it runs before anyone starts or stops it.
    pub fn default_status(&self) -> DefaultStatus {
        self.parts.default_status
    }

    /// Its description.
    pub fn description(&self) -> Option<&'static str> {
        self.parts.description
    }

    /// How many missed ticks a partitioned schedule catches up after downtime (default 5).
    pub fn catchup(&self) -> u32 {
        self.parts.catchup
    }

    /// Whether a tick is skipped while a run it launched is still going.
    pub fn skip_if_running(&self) -> bool {
        self.parts.skip_if_running
    }

    /// Where it is declared.
    pub fn location(&self) -> SourceLocation {
        self.parts.location
    }

    /// Its `decide` function, if it has one.
    pub fn decide(&self) -> Option<ScheduleFn> {
        self.parts.decide
    }

    /// How long its `decide` function may take before the tick fails.
    pub fn decide_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.parts.decide_timeout_ms)
    }

    /// Its cron string in its time zone, to compute ticks.
    pub fn cron_schedule(&self) -> Result<CronSchedule, CronError> {
        CronSchedule::new(self.parts.cron, self.parts.timezone)
    }
}

inventory::collect!(ScheduleDef);

/// Every schedule registered in this binary, in link order.
pub fn registered_schedules() -> impl Iterator<Item = &'static ScheduleDef> {
    inventory::iter::<ScheduleDef>.into_iter()
}
