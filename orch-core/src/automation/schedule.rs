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
