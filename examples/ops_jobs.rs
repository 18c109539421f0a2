//! Ops and jobs, the traditional way: steps wired by hand in a job body that the compiler
//! type-checks. The seed's `fetch_data -> process_data`, with run config, a fan-out and a
//! fan-in, an optional output and a step that fails on demand; and `regional`, a dynamic
//! fan-out (one call of an op per region found at run time) and a tuple output.
//!
//! ```text
//! cargo run --example ops_jobs -- job run regional
//! cargo run --example ops_jobs -- job show my_pipeline
//! cargo run --example ops_jobs -- job run my_pipeline --config examples/ops_jobs.toml
//! cargo run --example ops_jobs -- job run my_pipeline --config examples/ops_jobs_failing.toml
//! cargo run --example ops_jobs -- reexecute <RUN> --from-failure
//! ```

use std::collections::BTreeMap;

use orch::prelude::*;

/// One order, as the source returns it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    id: u32,
    region: String,
    amount: u64,
}

/// What `process_data` makes of the rows.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    orders: usize,
    total: u64,
}

/// `[ops.fetch_data]` in the run config.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchConfig {
    /// How many rows to fetch.
    limit: u32,
    /// Only orders at least this large.
    #[serde(default)]
    min_amount: u64,
}

/// `[ops.publish]` in the run config.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Where the report goes.
    #[serde(default = "default_channel")]
    channel: String,
    /// Fail, to try `reexecute RUN --from-failure`.
    #[serde(default)]
    fail: bool,
}

fn default_channel() -> String {
    "#reports".to_owned()
}

/// Fetches the raw rows (from a stand-in for an API).
#[op(retries = 2, retry_delay = "100ms")]
pub fn fetch_data(ctx: &OpContext, #[config] cfg: &FetchConfig) -> Result<Vec<Row>, BoxError> {
    let regions = ["eu", "us", "apac"];
    let rows: Vec<Row> = (0..cfg.limit)
        .map(|id| Row {
            id,
            region: regions[id as usize % regions.len()].to_owned(),
            amount: u64::from(id * 37 % 101),
        })
        .filter(|r| r.amount >= cfg.min_amount)
        .collect();
    ctx.log().info(format!("fetched {} rows", rows.len()));
    Ok(rows)
}

/// Totals the orders.
#[op]
pub fn process_data(data: &Vec<Row>) -> Summary {
    Summary {
        orders: data.len(),
        total: data.iter().map(|r| r.amount).sum(),
    }
}

/// Counts the orders per region (a second branch over the same rows: fetched once).
#[op]
pub fn count_by_region(data: &Vec<Row>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for row in data {
        *counts.entry(row.region.clone()).or_insert(0) += 1;
    }
    counts
}

/// The largest order, if there is one over 90: `None` skips the alert, and the run still
/// succeeds.
#[op]
pub fn large_order(data: &Vec<Row>) -> Option<Row> {
    data.iter()
        .filter(|r| r.amount > 90)
        .max_by_key(|r| r.amount)
        .cloned()
}

/// Alerts about a large order.
#[op]
pub fn alert(ctx: &OpContext, order: &Row) -> String {
    let message = format!("order {} is {}", order.id, order.amount);
    ctx.log().warn(&message);
    message
}

/// Joins the branches into one report.
#[op]
pub fn report(summary: &Summary, regions: &BTreeMap<String, usize>) -> String {
    let regions: Vec<String> = regions.iter().map(|(r, n)| format!("{r}: {n}")).collect();
    format!(
        "{} orders, {} in total ({})",
        summary.orders,
        summary.total,
        regions.join(", ")
    )
}

/// Publishes the report; fails when the config says so.
#[op]
pub fn publish(
    ctx: &OpContext,
    #[config] cfg: &PublishConfig,
    report: &String,
) -> Result<(), BoxError> {
    if cfg.fail {
        return Err(format!("{} is not reachable", cfg.channel).into());
    }
    ctx.log().info(format!("to {}: {report}", cfg.channel));
    Ok(())
}

/// The seed's pipeline: fetch, then process and count in parallel, report, publish; alert
/// on a large order.
#[job]
fn my_pipeline() {
    let data = fetch_data();
    let summary = process_data(data);
    let regions = count_by_region(data);
    let text = report(summary, regions);
    publish(text);
    alert(large_order(data));
}

/// The regions to report on, found when the job runs (a stand-in for a lookup): each is an
/// element of the `Dynamic`, under its own key.
#[op]
pub fn list_regions() -> Result<Dynamic<String>, BoxError> {
    let mut regions = Dynamic::new();
    for region in ["eu", "us", "apac"] {
        regions.push(region, region.to_owned())?;
    }
    Ok(regions)
}

/// One region's orders (mapped: one call per region, up to `--jobs` at once, each retried on
/// its own).
#[op(retries = 1, retry_delay = "100ms")]
pub fn fetch_region(ctx: &OpContext, region: &String) -> Vec<Row> {
    let seed = region.bytes().map(u32::from).sum::<u32>();
    let rows: Vec<Row> = (0..20)
        .map(|i| Row {
            id: seed * 100 + i,
            region: region.clone(),
            amount: u64::from((seed + i * 37) % 101),
        })
        .collect();
    ctx.log().info(format!("fetched {} rows", rows.len()));
    rows
}

/// Every region's orders, split into small and large ones (a tuple: one handle per part).
#[op]
pub fn split_sizes(regions: &Vec<Vec<Row>>) -> (Vec<Row>, Vec<Row>) {
    regions
        .iter()
        .flatten()
        .cloned()
        .partition(|r| r.amount < 90)
}

/// How many orders.
#[op]
pub fn count_orders(rows: &Vec<Row>) -> usize {
    rows.len()
}

/// The regional report.
#[op]
pub fn regional_report(ctx: &OpContext, small: &usize, large: &Vec<Row>) -> String {
    let text = format!("{small} small orders, {} large", large.len());
    ctx.log().info(&text);
    text
}

/// Per region, found at run time: fetch each region's orders, then split and report.
#[job]
fn regional() {
    let regions = list_regions();
    let orders = regions.map(fetch_region);
    let (small, large) = split_sizes(orders.collect());
    regional_report(count_orders(small), large);
}

fn main() -> std::process::ExitCode {
    orch::main()
}
