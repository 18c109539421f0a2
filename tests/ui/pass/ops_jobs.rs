//! The whole op contract compiles: context, config, resources, optional and fallible
//! outputs, async ops, nested calls, `.named`, `.after`, an op in another module.
use orch::prelude::*;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    id: u32,
}

#[derive(serde::Deserialize)]
pub struct FetchConfig {
    limit: u32,
}

pub struct Api;

mod ops {
    use super::*;

    /// Fetches.
    #[op(retries = 2, retry_delay = "10ms", tags(team = "data"))]
    pub fn fetch_data(
        ctx: &OpContext,
        #[config] cfg: &FetchConfig,
        #[resource] _api: &Api,
    ) -> Result<Vec<Row>, BoxError> {
        ctx.log().info("fetching");
        Ok((0..cfg.limit).map(|id| Row { id }).collect())
    }
}

#[op]
fn first(rows: Vec<Row>) -> Option<Row> {
    rows.into_iter().next()
}

#[op]
async fn count(rows: &Vec<Row>) -> usize {
    rows.len()
}

#[op]
fn id_of(row: &Row) -> anyhow_like::Result<u32> {
    Ok(row.id)
}

#[op(io_manager = "memory")]
fn handle() -> std::sync::Arc<std::sync::Mutex<u32>> {
    Default::default()
}

#[op]
fn done() {}

mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

/// Counts the first row's id, as a graph.
#[graph]
fn first_id(rows: &Vec<Row>) -> u32 {
    id_of(first(rows))
}

#[job(description = "Everything at once.", tags(kind = "test"))]
fn everything() {
    let rows = ops::fetch_data();
    first_id(rows).named("first_again");
    let finished = done();
    count(rows).named("counted").after(finished);
    id_of(first(rows));
    handle();
}

fn main() {
    let _ = orch::testing::execute_job::<everything>();
    let ctx = OpContext::for_test().resource(Api).build();
    let _ = ops::fetch_data(&ctx, &FetchConfig { limit: 1 }, &Api);
}
