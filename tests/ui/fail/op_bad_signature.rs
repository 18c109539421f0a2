use orch::prelude::*;

#[derive(serde::Deserialize)]
struct Config {
    limit: u32,
}

#[op]
fn generic<T: Clone>(x: &T) -> T {
    x.clone()
}

#[op]
fn asset_context(ctx: &AssetContext) -> u32 {
    ctx.attempt()
}

#[op]
fn two_configs(#[config] a: &Config, #[config] b: &Config) -> u32 {
    a.limit + b.limit
}

#[op]
fn mutable(data: &mut Vec<u32>) -> usize {
    data.len()
}

#[op(group = "sources")]
fn asset_attribute() -> u32 {
    1
}

#[asset]
fn configured_asset(#[config] cfg: &Config) -> u32 {
    cfg.limit
}

fn main() {}
