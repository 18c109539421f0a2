//! The `#[asset]` attribute of orch. Use it through the `orch` crate (`use orch::prelude::*;`);
//! see the `orch` crate's documentation for the contract.
//!
//! The crate is split the way thiserror's is: [`attr`] parses the attribute's arguments,
//! [`ast`] parses the function signature into a typed form that keeps the original tokens for
//! spans, [`valid`] checks it, and [`expand`] generates code without re-validating.

mod ast;
mod attr;
mod automation;
mod check;
mod expand;
mod graph;
mod hash;
mod job;
mod op;
mod sensor;
mod valid;

use proc_macro::TokenStream;

/// Declares an asset: a function whose parameters name the upstream assets it consumes.
///
/// See the `orch` crate for the full contract and the attribute keys.
#[proc_macro_attribute]
pub fn asset(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::asset(args.into(), item.into()).into()
}

/// Declares an asset job: a named selection of assets (Dagster's `define_asset_job`), which
/// `materialize --job NAME` and schedules run. The selection is checked at compile time.
///
/// ```ignore
/// /// Sources and their transforms, every night.
/// asset_job!(daily_refresh, "group:sources | group:transforms");
/// ```
#[proc_macro]
pub fn asset_job(input: TokenStream) -> TokenStream {
    automation::asset_job(input.into()).into()
}

/// Declares a schedule: a cron string in a time zone, on an asset job (`job = NAME`, checked
/// by the compiler) or a selection (`select = ".."`). The cron string and the time zone are
/// checked at compile time.
///
/// ```ignore
/// schedule!(nightly, job = daily_refresh, cron = "0 2 * * *", timezone = "Europe/Paris");
/// ```
#[proc_macro]
pub fn schedule(input: TokenStream) -> TokenStream {
    automation::schedule(input.into()).into()
}

/// Declares a sensor: a function the daemon calls at most every `interval` (default 30 s),
/// which decides from the outside world whether to run its job (`job = NAME`, checked by the
/// compiler) or selection (`select = ".."`). Its cursor is kept between evaluations when one
/// succeeds; a run with a run key is launched at most once per sensor, ever. An error, a
/// panic or a time-out (`timeout`, default 60 s) records a failed tick and keeps the cursor.
///
/// ```ignore
/// #[sensor(job = daily_refresh, interval = "30s")]
/// fn new_files(ctx: &SensorContext) -> Result<SensorResult, BoxError> {
///     Ok(SensorResult::new().run(SensorRun::keyed("orders-2024-01-05.csv")).cursor("42"))
/// }
/// ```
#[proc_macro_attribute]
pub fn sensor(args: TokenStream, item: TokenStream) -> TokenStream {
    sensor::sensor(args.into(), item.into()).into()
}

/// Declares an asset check: a function over an asset's output (`asset = ASSET`, checked by the
/// compiler) that returns a `CheckResult`. It runs after the asset in every run that
/// materializes it, and alone with `check run ASSET`. A failure of a `blocking = true` check
/// with `error` severity (the default; `severity = warn` never blocks) skips the asset's
/// downstream in that run.
///
/// ```ignore
/// #[asset_check(asset = orders_cleaned, blocking = true)]
/// fn amounts_positive(orders_cleaned: &Vec<i64>) -> CheckResult {
///     CheckResult::new(orders_cleaned.iter().all(|&a| a > 0))
/// }
/// ```
#[proc_macro_attribute]
pub fn asset_check(args: TokenStream, item: TokenStream) -> TokenStream {
    check::asset_check(args.into(), item.into()).into()
}

/// Declares an op: a step of an op job, whose parameters are inputs wired in a `#[job]` body
/// (plus the optional `&OpContext`, one `#[config]` and `#[resource]` parameters).
///
/// ```ignore
/// #[op(retries = 2)]
/// fn fetch_data(ctx: &OpContext, #[config] cfg: &FetchConfig) -> Result<Vec<Row>, BoxError> { .. }
/// ```
#[proc_macro_attribute]
pub fn op(args: TokenStream, item: TokenStream) -> TokenStream {
    op::op(args.into(), item.into()).into()
}

/// Declares an op job: a body of op calls whose wiring the compiler type-checks.
///
/// ```ignore
/// #[job]
/// fn my_pipeline() {
///     let data = fetch_data();
///     process_data(data);
/// }
/// ```
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::job(args.into(), item.into()).into()
}

/// Declares a graph: reusable wiring of ops with inputs and an output, called in job bodies
/// (and other graphs) like an op. Its steps are named `<call>.<step>`.
///
/// ```ignore
/// #[graph]
/// fn clean(raw: Vec<Row>) -> Vec<Row> {
///     dedupe(validate(raw))
/// }
/// ```
#[proc_macro_attribute]
pub fn graph(args: TokenStream, item: TokenStream) -> TokenStream {
    graph::graph(args.into(), item.into()).into()
}
