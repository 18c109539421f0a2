//! Everything the contract allows compiles: context in any position, `&T` and `T`, `Result`
//! with std errors, anyhow-style boxes and aliases, async, attributes, deps, cross-module `use`.
use orch::prelude::*;

mod upstream {
    use orch::prelude::*;

    /// Users fetched from the API.
    #[asset(group = "sources", key_prefix = "raw", tags(tier = "bronze"), owners = ["team:ingest"])]
    pub fn api_users_raw(ctx: &AssetContext) -> Vec<String> {
        ctx.log().info("fetching");
        vec!["ada".into()]
    }
}

use upstream::*;

#[asset(group = "transforms", code_version = "v2", metadata(docs = "https://example.com"), retries = 1)]
fn users_cleaned(api_users_raw: &Vec<String>) -> Result<Vec<String>, std::io::Error> {
    Ok(api_users_raw.clone())
}

#[asset]
fn boxed(users_cleaned: Vec<String>, ctx: &AssetContext) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let _ = ctx.run_id();
    Ok(users_cleaned.len())
}

#[asset]
fn io_alias() -> std::io::Result<u8> {
    Ok(1)
}

#[asset(deps = [io_alias, "external/table"], description = "Overrides the doc.")]
async fn report(boxed: &usize, api_users_raw: &Vec<String>) -> String {
    format!("{boxed} {}", api_users_raw.len())
}

#[asset]
fn unit(report: &String) {
    let _ = report;
}

fn main() {
    // Asset functions stay ordinary functions.
    let raw = upstream::api_users_raw(&AssetContext::for_test());
    assert_eq!(users_cleaned(&raw).unwrap(), raw);
}
