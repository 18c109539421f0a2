//! The orch runtime: discovery, planning, the parallel executor, the event stream and the
//! command line. Users reach it through the `orch` crate.

mod app;
pub mod automation;
mod capture;
pub mod checks;
mod cli;
pub mod daemon;
mod events;
mod executor;
mod instance;
pub mod io;
pub mod jobs;
mod logging;
mod materialize;
mod plan;
mod result;
mod run;
#[cfg(feature = "polars")]
pub mod sql;
mod staleness;
pub mod storage;
pub mod web;
pub mod worker;

pub use app::App;
pub use capture::CaptureLayer;
pub use cli::{EXIT_ASSET_FAILED, EXIT_CANCELED, EXIT_OK, EXIT_USAGE, main, run_cli};
pub use events::{AssetTimings, EventSink, RunEvent, RunTimings};
pub use instance::{
    CONFIG_FILE, Config, ConfigError, Executor, Instance, InstanceBuilder, InstanceError,
    LaunchMode, Source, StoreConfig,
};
pub use materialize::{Materialize, MaterializeError, default_jobs, definitions};
pub use plan::PlanError;
pub use result::{AssetFailure, AssetOutcome, AssetStatus, RunResult};
pub use run::{
    BACKFILL_TAG, Backfill, BackfillError, BackfillPlan, BackfillReport, BackfillStep,
    ConfigOnAssetRun, PartitionOutcome, PartitionScope, PartitionSpan, PartitionSpanState,
    PartitionStatus, PlannedAsset, PlannedLoad, Reexecution, RunHandle, RunPlan, RunRequest,
    RunTarget, Trigger, partition_spans, partition_states,
};
pub use staleness::{StaleInputs, StaleReason, Staleness, stale_assets, staleness};
/// Cancels a run (see [`RunHandle::cancel_token`] and [`Materialize::cancel_token`]).
pub use tokio_util::sync::CancellationToken;
