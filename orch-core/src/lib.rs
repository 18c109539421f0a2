//! The orch model: the [`Asset`] trait and registrations, [`AssetKey`]s, the
//! validated [`AssetGraph`], [`AssetSelection`], the
//! [`AssetContext`] handed to asset functions, and the errors of the definition phase.
//!
//! Users depend on the `orch` crate, which re-exports what they need; this crate is the part
//! that has no runtime (no tokio, no I/O).

pub mod asset;
pub mod automation;
pub mod check;
pub mod context;
pub mod error;
pub mod file;
#[doc(hidden)]
pub mod frame;
pub mod graph;
pub mod key;
pub mod op;
pub mod partitions;
pub mod resources;
pub mod selection;
mod suggest;
mod test_context;

#[doc(hidden)]
pub mod __private {
    //! Not public API.
    pub use crate::private::*;
}
mod private;

#[cfg(test)]
pub(crate) mod test_support;

pub use asset::{Asset, AssetDef, BoxError};
pub use automation::{
    AssetMaterialization, AutomationCondition, CronError, CronSchedule, DefaultStatus,
    FreshnessPolicy, FreshnessState, Job, JobDef, RunFailure, Schedule, ScheduleContext,
    ScheduleDecision, ScheduleDef, ScheduleTarget, SensorContext, SensorDef, SensorKind,
    SensorResult, SensorRun,
};
pub use check::{CheckDef, CheckResult, CheckSeverity};
pub use context::{
    AssetContext, AssetLogger, Cancellation, DynamicPartitionsStore, LiveLog, LogLevel, LogLine,
    MetadataValue, RunId, RunScope, StepThreads,
};
pub use error::{DefinitionError, DefinitionErrors};
pub use file::{FileAsset, FileChanged};
pub use graph::{AssetGraph, AssetId, AssetNode};
pub use key::{AssetKey, KeyError, StaticKey};
pub use op::{OpContext, OpDef, OpJobDef, RunConfig};
pub use partitions::{
    PartitionKeyRange, PartitionMapping, Partitions, PartitionsDefinition, PartitionsError,
    TimeWindow,
};
pub use resources::{MissingResource, ResourceKey, Resources};
pub use selection::{AssetSelection, SelectionError};
pub use test_context::TestContext;
