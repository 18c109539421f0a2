//! Automation definitions: asset jobs (named selections), cron schedules and sensors on them,
//! as the `asset_job!`, `schedule!` and `#[sensor]` macros register them, and [`CronSchedule`], the ticks of a
//! cron string in a time zone. The runtime discovers them beside the assets.

pub mod condition;
pub mod cron;
pub mod freshness;
mod job;
mod schedule;
mod sensor;

pub use condition::{AutomationCondition, Cron, conditions};
pub use cron::{CronError, CronSchedule, Ticks};
pub use freshness::{FreshnessPolicy, FreshnessState, ResolvedFreshness};
pub use job::{Job, JobDef, registered_jobs};
pub use schedule::{
    DefaultStatus, IntoScheduleDecision, Schedule, ScheduleContext, ScheduleDecision, ScheduleDef,
    ScheduleFn, ScheduleParts, ScheduleTarget, registered_schedules,
};
pub use sensor::{
    AssetMaterialization, AssetSensorFn, RunFailure, RunFailureSensorFn, SensorContext, SensorDef,
    SensorFn, SensorKind, SensorParts, SensorResult, SensorRun, parse_interval, registered_sensors,
};
