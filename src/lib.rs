//! # orch: data assets as Rust functions, the graph checked by the compiler
//!
//! Declare *what* data you build; orch works out *how*. An asset is a plain function marked
//! `#[asset]`. A parameter's **name** is the upstream asset it consumes and its **type** is
//! checked against what that asset produces, so a missing dependency, a cycle or a type
//! mismatch is a compile error at the parameter. `cargo run` materializes the whole graph in
//! parallel, each asset once, sharing each output with every consumer.
//!
//! ```no_run
//! use orch::prelude::*;
//!
//! #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
//! pub struct User { pub name: String, pub active: bool }
//!
//! /// Users fetched from the API.
//! #[asset(group = "sources")]
//! fn api_users_raw(ctx: &AssetContext) -> Vec<User> {
//!     ctx.log().info("fetching users");
//!     vec![User { name: "ada".into(), active: true }, User { name: "bob".into(), active: false }]
//! }
//!
//! /// Only the active users.
//! #[asset(group = "transforms")]
//! fn users_cleaned(api_users_raw: &Vec<User>) -> Result<Vec<User>, std::io::Error> {
//!     Ok(api_users_raw.iter().filter(|u| u.active).cloned().collect())
//! }
//!
//! #[asset]
//! async fn report(users_cleaned: &Vec<User>, api_users_raw: &Vec<User>) -> String {
//!     format!("{} of {} users are active", users_cleaned.len(), api_users_raw.len())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     orch::main()
//! }
//! ```
//!
//! ## The contract
//! - Parameters: `name: &T` borrows the upstream `name`'s output; `name: T` gets a clone
//!   (`T: Clone`). A parameter of type `&AssetContext` (in any position, at most one) is the
//!   [`AssetContext`]: key, run id, partition, logger, output metadata.
//! - Names resolve like any Rust item: same module, or brought in with `use` (globs work).
//! - Outputs: `T`, or `Result<T, E>` with `E: std::error::Error + Send + Sync + 'static` or
//!   `anyhow::Error` (an alias of `Result` whose name ends in `Result` is fallible too:
//!   `anyhow::Result<T>`, `io::Result<T>`, `PolarsResult<T>`). `T: Send + Sync + 'static`,
//!   and serde's `Serialize + Deserialize` so the default I/O manager can store it between
//!   runs (or `io_manager = "memory"`).
//! - `async fn` and plain `fn` both work; plain functions run on a blocking pool, at most
//!   `--jobs` at a time.
//! - The function stays an ordinary function: unit tests call it directly.
//!
//! ## Attribute keys
//! | key | meaning |
//! |---|---|
//! | `group = "sources"` | the asset's group (default `default`) |
//! | `description = "..."` | overrides the doc comment |
//! | `key_prefix = "warehouse/raw"` | the key becomes `warehouse/raw/<name>` |
//! | `code_version = "v2"` | default: a hash of the function's tokens |
//! | `tags(k = "v", ...)` / `metadata(k = "v", ...)` | string key-values |
//! | `owners = ["team:data"]` | who owns it |
//! | `deps = [a, "external/key"]` | run after these, without loading their values |
//! | `retries = 3` | retry a failure (error or panic) up to 3 more times |
//! | `retry_delay = "500ms"` | wait before a retry, doubling after each failed attempt (≤ 32×) |
//! | `io_manager = "memory"` | where the output is stored: `fs` (default), `memory`, or a name registered with [`App::io_manager`] |
//! | `always_run = true` | never up to date: `materialize --stale` always includes it |
//!
//! ## Running
//! `orch::main()` gives the program a command line: `materialize [--select EXPR] [--jobs N]`
//! (the default), `list`, and `lineage [--format text|dot|mermaid]`. See [`AssetSelection`]
//! for the selection syntax. In code and tests, [`Materialize`] runs a selection and returns
//! a [`RunResult`] with typed outputs:
//!
//! ```ignore
//! let result = orch::Materialize::select("users_cleaned")
//!     .inject::<api_users_raw>(vec![/* pretend the API returned this */])
//!     .run()?;
//! assert_eq!(result.output::<users_cleaned>().len(), 0);
//! ```

#![warn(missing_docs, unreachable_pub)]

/// The jiff crate orch computes time with (schedule ticks, partition windows):
/// `orch::jiff::Timestamp` is the type `CronSchedule::ticks_after` takes.
pub use jiff;
/// Declarative automation conditions (`#[asset(automation = eager())]`), with `&`, `|`, `!`.
pub use orch_core::automation::conditions;
/// Freshness policies (`#[asset(freshness = freshness::window("1h").warn("30m"))]`).
pub use orch_core::automation::freshness;
/// Ops and op jobs: the [`ops::OpContext`] ops receive, the [`ops::RunConfig`] their `#[config]`
/// parameters read, and the registrations.
pub use orch_core::op as ops;
pub use orch_core::partitions;
pub use orch_core::{
    Asset, AssetContext, AssetGraph, AssetKey, AssetLogger, AssetMaterialization, AssetNode,
    AssetSelection, AutomationCondition, BoxError, CheckDef, CheckResult, CheckSeverity, CronError,
    CronSchedule, DefaultStatus, DefinitionError, DefinitionErrors, FileAsset, FileChanged,
    FreshnessPolicy, FreshnessState, JobDef, KeyError, LogLevel, LogLine, MetadataValue,
    MissingResource, Resources, RunConfig, RunFailure, RunId, ScheduleContext, ScheduleDecision,
    ScheduleDef, ScheduleTarget, SelectionError, SensorContext, SensorDef, SensorKind,
    SensorResult, SensorRun,
};
pub use orch_macros::{asset, asset_check, asset_job, graph, job, op, schedule, sensor};
/// SQL databases as resources: [`sql::Database`] (SQLite, PostgreSQL), results as DataFrames.
#[cfg(feature = "polars")]
pub use orch_runtime::sql;
pub use orch_runtime::{
    App, AssetFailure, AssetOutcome, AssetStatus, BACKFILL_TAG, Backfill, BackfillError,
    BackfillPlan, BackfillReport, BackfillStep, CONFIG_FILE, CancellationToken, CaptureLayer,
    Config, ConfigError, EXIT_ASSET_FAILED, EXIT_CANCELED, EXIT_OK, EXIT_USAGE, EventSink,
    Executor, Instance, InstanceBuilder, InstanceError, LaunchMode, Materialize, MaterializeError,
    PartitionOutcome, PartitionScope, PartitionSpan, PartitionSpanState, PartitionStatus,
    PlanError, PlannedAsset, PlannedLoad, Reexecution, RunEvent, RunHandle, RunPlan, RunRequest,
    RunResult, RunTarget, Source, StaleInputs, StaleReason, Staleness, StoreConfig, Trigger,
    default_jobs, definitions, main, partition_spans, partition_states, run_cli, stale_assets,
    staleness,
};
pub use orch_runtime::{automation, checks, daemon, io, jobs, storage, web};
/// The polars crate orch stores frames with: `use orch::polars::prelude::*;` keeps a user's
/// frames the same types as orch's.
#[cfg(feature = "polars")]
pub use polars;

/// The few names an asset module needs: `use orch::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "polars")]
    pub use crate::sql::{Database, SqlParam};
    pub use crate::{
        AssetContext, AssetMaterialization, AssetSelection, AutomationCondition, BoxError,
        CheckResult, CheckSeverity, FileAsset, Instance, Materialize, MetadataValue, RunFailure,
        RunRequest, ScheduleContext, ScheduleDecision, SensorContext, SensorResult, SensorRun,
        asset, asset_check, asset_job, graph, job, op, schedule, sensor,
    };
    pub use orch_core::RunConfig;
    pub use orch_core::op::{Dynamic, OpContext};
}

/// Testing helpers: Dagster's `build_asset_context` and `materialize_to_memory`, typed.
pub mod testing {
    pub use orch_core::op::{OpContext, OpTestContext};
    pub use orch_core::{AssetContext, TestContext};
    pub use orch_runtime::jobs::{ExecuteJob, JobResult};

    /// Runs op job `J` in this process (nothing recorded unless
    /// [`ExecuteJob::instance`] is given): Dagster's `execute_in_process`, with config,
    /// resources, injected op outputs and outputs read by op.
    ///
    /// ```ignore
    /// let result = orch::testing::execute_job::<my_pipeline>()
    ///     .config(RunConfig::parse("[ops.fetch_data]\nlimit = 3")?)
    ///     .inject::<fetch_data>(vec![])
    ///     .run()?;
    /// assert!(result.success());
    /// let summary = result.output::<process_data>();
    /// ```
    pub fn execute_job<J: orch_core::op::OpJob>() -> ExecuteJob {
        ExecuteJob::new::<J>()
    }

    /// Materializes `selection` in memory (nothing recorded, nothing stored) and returns
    /// every output: Dagster's `materialize_to_memory`. To inject upstream values or set
    /// resources first, use [`Materialize::select`](crate::Materialize::select).
    ///
    /// ```no_run
    /// let result = orch::testing::materialize_to_memory("+report")?;
    /// assert!(result.success());
    /// # Ok::<(), orch::MaterializeError>(())
    /// ```
    pub fn materialize_to_memory(
        selection: &str,
    ) -> Result<crate::RunResult, crate::MaterializeError> {
        crate::Materialize::select(selection).run()
    }

    /// An ephemeral instance (run store and outputs in memory) for tests that need a
    /// recorded run: `--stale`, history, re-execution.
    pub fn ephemeral_instance() -> crate::Instance {
        crate::Instance::ephemeral()
    }
}

#[doc(hidden)]
pub mod __private {
    //! Not public API: what `#[asset]`'s generated code uses. May change in any release.
    pub use orch_core::__private::*;
}
