//! Runs as values: the [`RunRequest`] that asks for one, the [`RunHandle`] that follows one
//! submitted to an [`Instance`](crate::Instance), and the launch that turns a request into a
//! planned, claimed, executed and recorded run.

mod backfill;
mod distributed;
mod handle;
pub(crate) mod launch;
pub(crate) mod partitions;
mod plan;
mod reexecute;
mod request;
pub(crate) mod step;

pub use backfill::{
    BACKFILL_TAG, Backfill, BackfillError, BackfillPlan, BackfillReport, BackfillStep,
    PartitionOutcome, PartitionStatus,
};
pub use handle::RunHandle;
pub use partitions::{PartitionSpan, PartitionSpanState, partition_spans, partition_states};
pub(crate) use plan::prepare;
pub use plan::{PlannedAsset, PlannedLoad, RunPlan};
pub use reexecute::{ConfigOnAssetRun, Reexecution};
pub use request::{PartitionScope, RunRequest, RunTarget, Trigger};
