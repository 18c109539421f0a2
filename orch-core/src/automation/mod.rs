//! Automation definitions: asset jobs (named selections) and cron schedules on them, as the
//! `asset_job!` and `schedule!` macros register them, and [`CronSchedule`], the ticks of a
//! cron string in a time zone. The runtime discovers them beside the assets.

pub mod cron;
mod job;
mod schedule;

pub use cron::{CronError, CronSchedule, Ticks};
pub use job::{Job, JobDef, registered_jobs};
pub use schedule::{
    DefaultStatus, Schedule, ScheduleDef, ScheduleParts, ScheduleTarget, registered_schedules,
};
