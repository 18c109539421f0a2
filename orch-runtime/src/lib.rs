//! The orch runtime: discovery, planning, the parallel executor, the event stream and the
//! command line. Users reach it through the `orch` crate.

mod capture;
mod cli;
mod events;
mod executor;
pub mod io;
mod logging;
mod materialize;
mod plan;
mod result;
#[cfg(feature = "polars")]
pub mod sql;
mod staleness;
pub mod storage;

pub use capture::CaptureLayer;
pub use cli::{App, EXIT_ASSET_FAILED, EXIT_OK, EXIT_USAGE, main, run_cli};
pub use events::{EventSink, RunEvent};
pub use materialize::{Materialize, MaterializeError, Recording, default_jobs, definitions};
pub use plan::PlanError;
pub use result::{AssetFailure, AssetOutcome, AssetStatus, RunResult};
pub use staleness::{StaleReason, stale_assets};
